"""Assemble a multipart/alternative email as RFC 5322 bytes, without the stdlib ``email`` package.

Building messages with ``email.message.EmailMessage`` costs more CPU than sending them
(see docs/performance notes), so the bytes are put together by hand. The format is kept
deliberately small and strict so that it is easy to check:

- headers are 7-bit ASCII; the Subject is sent raw when it is plain short ASCII and as
  RFC 2047 ``=?utf-8?b?...?=`` encoded words otherwise, folded so that no line exceeds
  78 characters;
- both parts are UTF-8 and quoted-printable (``binascii.b2a_qp``, C code), which keeps
  every body line at most 76 characters, 7-bit, and makes the boundary (which contains
  ``=_``, a sequence quoted-printable can never produce) impossible to collide with;
  except a text part that is plain ASCII with short lines: that one is sent as it is
  (7bit), so that its links stay whole on one line for anyone reading the raw message,
  and it is checked not to contain the boundary;
- every line ends in CRLF.

Header injection is impossible by construction: From, To and the Message-ID are rejected
(ValueError) if they contain CR, LF or any other control character, and the Subject has
all of its whitespace collapsed to single spaces and its controls removed before it is
encoded. The tests parse the output back with the stdlib parser.
"""

from __future__ import annotations

import binascii
import os
import re
from datetime import UTC, datetime
from email.utils import format_datetime, formataddr, parseaddr

__all__ = ["build_message"]

_CTRL = re.compile("[\x00-\x1f\x7f]")
_SUBJECT_STRIP = re.compile("[\x00-\x1f\x7f-\x9f]")
_MSGID_OK = re.compile(r"[!-;=?-~]+@[!-;=?-~]+")  # printable ASCII, no space, no '<' or '>'

_MAX_LINE = 78
_ENCODED_WORD_PREFIX = "=?utf-8?b?"
_ENCODED_WORD_BYTES = 42  # 42 bytes -> 56 base64 chars -> a 68-character encoded word


def _address_header(name: str, value: str) -> str:
    """A From/To header line (without CRLF); ValueError on anything that could inject."""
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    if "\r" in value or "\n" in value or _CTRL.search(value):
        raise ValueError(f"{name} must not contain CR, LF or control characters")
    if value.isascii():
        if "@" not in value:
            raise ValueError(f"{name} must contain an email address")
        line = f"{name}: {value}"
    else:
        # Non-ASCII display name and/or IDN domain: "Name <addr>" with the name
        # RFC 2047-encoded and the domain in IDNA form. A non-ASCII local part would
        # need SMTPUTF8, which this builder does not do.
        display, addr = parseaddr(value)
        if "@" not in addr:
            raise ValueError(f"{name} must contain an email address")
        local, _, domain = addr.rpartition("@")
        if not local.isascii():
            raise ValueError(f"{name}: non-ASCII local parts (SMTPUTF8) are not supported")
        if not domain.isascii():
            domain = domain.encode("idna").decode("ascii")
        line = f"{name}: {formataddr((display, f'{local}@{domain}'), charset='utf-8')}"
    if len(line) > 998:
        raise ValueError(f"{name} is too long")
    return line


def _subject_header(subject: str) -> str:
    """``Subject: ...`` (without the final CRLF), one logical line, safely folded."""
    if not isinstance(subject, str):
        raise ValueError("subject must be a string")
    text = " ".join(subject.split())
    if _SUBJECT_STRIP.search(text):
        text = " ".join(_SUBJECT_STRIP.sub("", text).split())
    if not text:
        return "Subject: "
    # Plain ASCII goes out raw unless a decoder could mistake part of it for an encoded
    # word ("=?") or a word is too long to fold.
    if text.isascii() and "=?" not in text and max(map(len, text.split(" "))) <= _MAX_LINE - 10:
        lines: list[str] = []
        current = "Subject:"
        for word in text.split(" "):
            if len(current) + 1 + len(word) > _MAX_LINE and current != "Subject:":
                lines.append(current)
                current = ""
            current = f"{current} {word}"
        lines.append(current)
        return "\r\n".join(lines)  # continuation lines start with the space that was there
    # RFC 2047: encoded words of whole UTF-8 characters, each on its own folded line.
    words: list[str] = []
    chunk = bytearray()
    for char in text:
        encoded = char.encode("utf-8")
        if len(chunk) + len(encoded) > _ENCODED_WORD_BYTES:
            words.append(
                _ENCODED_WORD_PREFIX
                + binascii.b2a_base64(bytes(chunk), newline=False).decode("ascii")
                + "?="
            )
            chunk.clear()
        chunk += encoded
    if chunk:
        words.append(
            _ENCODED_WORD_PREFIX
            + binascii.b2a_base64(bytes(chunk), newline=False).decode("ascii")
            + "?="
        )
    return "Subject: " + "\r\n ".join(words)


def _message_id(message_id: str) -> str:
    if not isinstance(message_id, str) or "\r" in message_id or "\n" in message_id:
        raise ValueError("message_id must not contain CR or LF")
    if not _MSGID_OK.fullmatch(message_id):
        raise ValueError(
            "message_id must look like 'left@right': printable ASCII, no spaces or angle brackets"
        )
    if len(message_id) > 900:
        raise ValueError("message_id is too long")
    return f"Message-ID: <{message_id}>"


def _qp_body(text: str) -> bytes:
    if not isinstance(text, str):
        raise ValueError("body must be a string")
    # CRLF everywhere and a final line break: b2a_qp picks its line ending (also for soft
    # line breaks) from the first line break it sees.
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.endswith("\n"):
        text += "\n"
    data = text.replace("\n", "\r\n").encode(
        "utf-8"
    )  # lone surrogates: UnicodeEncodeError (a ValueError)
    return binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)


_SEVEN_BIT_SAFE = re.compile(r"[\t\n\x20-\x7e]*")
_SEVEN_BIT_MAX_LINE = 998


def _seven_bit_body(text: str) -> bytes | None:
    """The text as a 7bit body (CRLF lines, final line break), or None when it is not plain
    printable ASCII with lines of at most 998 characters."""
    if not isinstance(text, str):
        raise ValueError("body must be a string")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not _SEVEN_BIT_SAFE.fullmatch(text):
        return None
    if not text.endswith("\n"):
        text += "\n"
    if max(map(len, text.split("\n"))) > _SEVEN_BIT_MAX_LINE:
        return None
    return text.replace("\n", "\r\n").encode("ascii")


def _date_header(date: datetime | None) -> str:
    if date is None:
        date = datetime.now(UTC)
    elif date.tzinfo is None:
        date = date.replace(tzinfo=UTC)
    return "Date: " + format_datetime(date)


def build_message(
    *,
    mail_from: str,
    to: str,
    subject: str,
    text: str,
    html: str,
    message_id: str,
    date: datetime | None = None,
) -> bytes:
    """The complete message: headers, a text/plain part then a text/html part, CRLF lines.

    ``message_id`` is given without angle brackets (e.g. ``outbox-123@avara-viewer``) and
    written as ``Message-ID: <outbox-123@avara-viewer>``. ``date`` defaults to now; a naive
    datetime is taken as UTC. Raises ValueError for CR/LF/controls in ``mail_from``, ``to``
    or ``message_id``.
    """
    from_line = _address_header("From", mail_from)
    to_line = _address_header("To", to)
    id_line = _message_id(message_id)
    subject_line = _subject_header(subject)
    date_line = _date_header(date)
    html_body = _qp_body(html)
    boundary = "=_av_" + os.urandom(12).hex()
    text_body = _seven_bit_body(text)
    if text_body is not None and boundary.encode("ascii") in text_body:
        text_body = None  # quoted-printable can never contain the boundary
    text_encoding = "7bit" if text_body is not None else "quoted-printable"
    if text_body is None:
        text_body = _qp_body(text)

    head = (
        f"{date_line}\r\n"
        f"{from_line}\r\n"
        f"{to_line}\r\n"
        f"{subject_line}\r\n"
        f"{id_line}\r\n"
        "MIME-Version: 1.0\r\n"
        "Auto-Submitted: auto-generated\r\n"
        f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n'
        "\r\n"
        f"--{boundary}\r\n"
        'Content-Type: text/plain; charset="utf-8"\r\n'
        f"Content-Transfer-Encoding: {text_encoding}\r\n"
        "\r\n"
    ).encode("ascii")
    middle = (
        f"--{boundary}\r\n"
        'Content-Type: text/html; charset="utf-8"\r\n'
        "Content-Transfer-Encoding: quoted-printable\r\n"
        "\r\n"
    ).encode("ascii")
    tail = f"--{boundary}--\r\n".encode("ascii")
    # Each encoded body ends with CRLF; the extra CRLF belongs to the delimiter that follows
    # (RFC 2046), so a parser gives back each body exactly, final line break included.
    return b"".join((head, text_body, b"\r\n", middle, html_body, b"\r\n", tail))
