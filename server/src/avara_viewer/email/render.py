"""Render transactional emails (subject, plain text, HTML) from Jinja2 templates.

Every interpolated value is normalised first (:func:`clean_inline`): whitespace runs,
including CR/LF and Unicode line separators, become one space and other control or
bidi-override characters are dropped. A name can therefore never add a line to the plain
text body or a header, and the HTML templates are autoescaped on top of that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import jinja2

__all__ = [
    "RenderedEmail",
    "clean_inline",
    "format_expiry",
    "render_invitation",
    "render_password_reset",
    "render_webhook_disabled",
]

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"
PRODUCT_NAME = "Avara Viewer"

# A long name must not blow up a subject line or a layout; the API limits lengths anyway.
_MAX_INLINE_CHARS = 200

# C0/C1 controls and DEL (whitespace controls were already collapsed by str.split),
# bidi embeddings/overrides/isolates and zero-width / BOM characters used for spoofing.
_STRIP_RE = re.compile("[\x00-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff]")

_LEVEL_LABELS = {
    "owner": "Owner",
    "admin": "Administrator",
    "member": "Member",
}

_WEEKDAYS = (
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
)
_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


@dataclass(frozen=True, slots=True)
class RenderedEmail:
    subject: str
    text: str
    html: str


def clean_inline(value: object) -> str:
    """One line of display text: whitespace collapsed, controls removed, length capped."""
    text = " ".join(
        str(value).split()
    )  # str.split() also splits on \r \n \x0b \x0c \x1c-\x1f \x85 \u2028 \u2029
    text = _STRIP_RE.sub("", text)
    text = " ".join(text.split())  # stripping may have left double spaces
    if len(text) > _MAX_INLINE_CHARS:
        text = text[: _MAX_INLINE_CHARS - 1].rstrip() + "\u2026"
    return text


def format_expiry(expires_at: datetime) -> str:
    """'Tuesday, 3 December 2024 at 14:05 UTC' (naive datetimes are taken as UTC).

    English names are spelled out here rather than with strftime('%A'), which follows the
    process locale.
    """
    if expires_at.tzinfo is None:
        utc = expires_at.replace(tzinfo=UTC)
    else:
        utc = expires_at.astimezone(UTC)
    return (
        f"{_WEEKDAYS[utc.weekday()]}, {utc.day} {_MONTHS[utc.month - 1]} {utc.year} "
        f"at {utc.hour:02d}:{utc.minute:02d} UTC"
    )


def _level_label(level: str) -> str:
    key = clean_inline(level)
    return _LEVEL_LABELS.get(key.lower(), key[:1].upper() + key[1:])


def _check_link(url: str) -> str:
    """Only absolute http(s) links without whitespace or controls go into an email."""
    if (
        not isinstance(url, str)
        or url != url.strip()
        or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in url)
    ):
        raise ValueError("link must be an absolute http(s) URL without whitespace")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError("link must be an absolute http(s) URL")
    return url


_ENV = jinja2.Environment(
    loader=jinja2.FileSystemLoader(TEMPLATE_DIR),
    undefined=jinja2.StrictUndefined,
    # Only the HTML templates are escaped: subjects and text parts are plain text.
    autoescape=jinja2.select_autoescape(
        enabled_extensions=("html.j2",),
        disabled_extensions=(),
        default_for_string=False,
        default=False,
    ),
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    auto_reload=False,
)
_TEMPLATES: dict[str, jinja2.Template] = {}


def environment() -> jinja2.Environment:
    """The module's shared Jinja2 environment (built once at import)."""
    return _ENV


def _template(name: str) -> jinja2.Template:
    template = _TEMPLATES.get(name)
    if template is None:
        template = _TEMPLATES[name] = _ENV.get_template(name)
    return template


def _render(kind: str, context: dict[str, object]) -> RenderedEmail:
    subject = _template(f"{kind}.subject.j2").render(context)
    # Belt and braces: the subject is one line whatever a template or a value contains.
    subject = " ".join(subject.split())
    text = _template(f"{kind}.txt.j2").render(context)
    html = _template(f"{kind}.html.j2").render(context)
    return RenderedEmail(subject=subject, text=text, html=html)


def render_invitation(
    *,
    clinic_name: str,
    inviter_name: str | None,
    first_name: str,
    last_name: str,
    clinic_role: str,
    level: str,
    has_dashboard_access: bool,
    accept_url: str,
    expires_at: datetime,
) -> RenderedEmail:
    """The invitation email: who invites whom to which clinic, role, access, link, expiry.

    ``inviter_name`` is None when the invitation was sent with an API key (or the inviter
    has no usable name): the email then speaks of the clinic's administrators.
    """
    inviter = clean_inline(inviter_name) if inviter_name is not None else ""
    first = clean_inline(first_name)
    last = clean_inline(last_name)
    context: dict[str, object] = {
        "product_name": PRODUCT_NAME,
        "clinic_name": clean_inline(clinic_name),
        "inviter_name": inviter or None,
        "first_name": first,
        "last_name": last,
        "full_name": clean_inline(f"{first} {last}"),
        "clinic_role": clean_inline(clinic_role),
        "level": _level_label(level),
        "has_dashboard_access": bool(has_dashboard_access),
        "accept_url": _check_link(accept_url),
        "expires_at": format_expiry(expires_at),
    }
    return _render("invitation", context)


def render_password_reset(
    *,
    clinic_name: str,
    first_name: str,
    reset_url: str,
    expires_at: datetime,
) -> RenderedEmail:
    """The dashboard's password reset email."""
    context: dict[str, object] = {
        "product_name": PRODUCT_NAME,
        "clinic_name": clean_inline(clinic_name),
        "first_name": clean_inline(first_name),
        "reset_url": _check_link(reset_url),
        "expires_at": format_expiry(expires_at),
    }
    return _render("password_reset", context)


def render_webhook_disabled(
    *, clinic_name: str, first_name: str, endpoint_url: str, reason: str, dashboard_url: str
) -> RenderedEmail:
    """Tells an admin that a webhook endpoint of their clinic was disabled, and why."""
    context: dict[str, object] = {
        "product_name": PRODUCT_NAME,
        "clinic_name": clean_inline(clinic_name),
        "first_name": clean_inline(first_name),
        "endpoint_url": clean_inline(endpoint_url),
        "reason": clean_inline(reason),
        "dashboard_url": _check_link(dashboard_url),
    }
    return _render("webhook_disabled", context)
