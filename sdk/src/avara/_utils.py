"""Small helpers the resources share to build requests."""

from __future__ import annotations

from typing import Mapping
from urllib.parse import quote

from ._types import NotGiven

__all__ = ["path_param", "strip_not_given"]


def strip_not_given(values: Mapping[str, object]) -> dict[str, object]:
    """Drop the entries the caller did not give, keeping explicit ``None`` values (sent as null)."""
    return {key: value for key, value in values.items() if not isinstance(value, NotGiven)}


def path_param(name: str, value: str) -> str:
    """``value`` escaped for use as one path segment; an empty id would address another route."""
    if not value:
        raise ValueError(f"Expected a non-empty value for `{name}` but received {value!r}")
    return quote(value, safe="")
