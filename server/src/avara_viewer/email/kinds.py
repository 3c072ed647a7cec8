"""Kinds of email the outbox carries, registered by the packages that send them.

The delivery loop knows no domain: for each claimed message it asks the registered kind of
that name to load and render it, and tells the kind the outcomes once they are recorded.
Registration happens in the composition root (context.email_kinds), so this package never
imports a domain. To add a kind: write a class with `name`, `render` and `delivered` in the
domain that sends it (next to its templates' caller), queue rows with `outbox.enqueue(kind=
name, ...)`, and register an instance in context.email_kinds.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from .outbox import Claimed
from .render import RenderedEmail


class Superseded(Exception):
    """The message no longer applies (e.g. the invitation was resent or revoked): it is
    cancelled instead of sent."""


def render_each(
    messages: list[Claimed],
    found: Mapping[str, Any],
    missing: str,
    render_one: Callable[[Claimed, Any], RenderedEmail],
) -> dict[int, RenderedEmail | Exception]:
    """For a kind whose messages are about one row each (`found`, by the message's
    subject_id): each message rendered by render_one(message, row), Superseded(`missing`)
    when its row is gone, or the exception rendering raised."""
    out: dict[int, RenderedEmail | Exception] = {}
    for message in messages:
        row = found.get(message.subject_id)
        if row is None:
            out[message.id] = Superseded(missing)
            continue
        try:
            out[message.id] = render_one(message, row)
        except Exception as exc:
            out[message.id] = exc
    return out


class EmailKind(Protocol):
    name: str

    async def render(
        self, conn: AsyncConnection, messages: list[Claimed]
    ) -> dict[int, RenderedEmail | Exception]:
        """Each message (by id) rendered, or the exception saying why not (Superseded to
        cancel it); a read operation: the await rule of db.base applies."""
        ...

    async def delivered(
        self, conn: AsyncConnection, outcomes: list[tuple[Claimed, str]], now: datetime
    ) -> None:
        """React to final outcomes (`sent`, `failed`) inside the transaction recording them."""
        ...


class EmailKinds:
    """The registry the delivery loop looks kinds up in."""

    def __init__(self, kinds: Iterable[EmailKind] = ()) -> None:
        self._kinds: dict[str, EmailKind] = {}
        for kind in kinds:
            self.register(kind)

    def register(self, kind: EmailKind) -> None:
        if kind.name in self._kinds:
            raise ValueError(f"email kind {kind.name!r} is registered twice")
        self._kinds[kind.name] = kind

    def get(self, name: str) -> EmailKind | None:
        return self._kinds.get(name)
