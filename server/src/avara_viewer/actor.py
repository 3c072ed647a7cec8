"""Who is acting: an API key, a SCIM token, a dashboard user or an operator at the command line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Actor:
    clinic_id: str
    kind: Literal["api_key", "scim_token", "user", "cli"]
    id: str | None
    request_id: str | None = None

    @property
    def invited_source(self) -> Literal["api", "dashboard"]:
        # SCIM provisions through the API; the SCIM identity records the token (docs/scim.md).
        return "api" if self.kind in ("api_key", "scim_token") else "dashboard"
