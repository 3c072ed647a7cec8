"""Who is acting: an API key, a dashboard user or an operator at the command line."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Actor:
    clinic_id: str
    kind: Literal["api_key", "user", "cli"]
    id: str | None
    request_id: str | None = None

    @property
    def invited_source(self) -> Literal["api", "dashboard"]:
        return "api" if self.kind == "api_key" else "dashboard"
