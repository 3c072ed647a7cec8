"""Outgoing email for Avara Viewer: the outbox, its delivery loop, templates, MIME assembly and
transports. It imports no domain: each kind of message (invitation, password reset) is
registered by the composition root with how it is loaded, rendered and what its outcome does.

- :mod:`.outbox`: the email_outbox table's one writer (queue, claim, record outcomes).
- :mod:`.kinds`: :class:`EmailKind` and the :class:`EmailKinds` registry.
- :mod:`.delivery`: :class:`DeliveryLoop` (claim, render by kind, send, record).
- :mod:`.render`: Jinja2 templates -> :class:`RenderedEmail` (subject, text, html).
- :mod:`.message`: :func:`build_message` -> RFC 5322 bytes (CRLF), header-injection safe.
- :mod:`.transport`: :class:`SmtpTransport` (pooled aiosmtplib connections) and
  :class:`MaildirTransport` (durable local delivery), with errors split into
  :class:`TemporaryDeliveryError` (retry later) and :class:`PermanentDeliveryError`.
"""

from .message import build_message
from .render import RenderedEmail, render_invitation, render_password_reset
from .transport import (
    MaildirTransport,
    PermanentDeliveryError,
    SmtpConfig,
    SmtpTransport,
    TemporaryDeliveryError,
    parse_smtp_url,
    transport_from_settings,
)

__all__ = [
    "MaildirTransport",
    "PermanentDeliveryError",
    "RenderedEmail",
    "SmtpConfig",
    "SmtpTransport",
    "TemporaryDeliveryError",
    "build_message",
    "parse_smtp_url",
    "render_invitation",
    "render_password_reset",
    "transport_from_settings",
]
