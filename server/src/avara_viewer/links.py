"""The error of a single-use emailed link (an invitation or a password reset) that can no
longer be used; the public pages turn its reason into the page they show."""

from __future__ import annotations


class LinkUnusable(Exception):
    """The invitation or reset link can no longer be used; `reason` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
