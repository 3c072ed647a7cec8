from __future__ import annotations

from pathlib import Path

import pytest
from avara_viewer.email import (
    MaildirTransport,
    SmtpConfig,
    SmtpTransport,
    parse_smtp_url,
    transport_from_settings,
)

# --------------------------------------------------------------------------- parse_smtp_url


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example", SmtpConfig("mail.example", 25)),
        ("smtp://mail.example:2525", SmtpConfig("mail.example", 2525)),
        ("smtps://mail.example", SmtpConfig("mail.example", 465, use_tls=True)),
        ("SMTPS://mail.example:1465", SmtpConfig("mail.example", 1465, use_tls=True)),
        ("smtp+starttls://mail.example", SmtpConfig("mail.example", 587, start_tls=True)),
        (
            "smtp+starttls://apikey:s%40cr%3At%2F%25@smtp.sendgrid.net:2525",
            SmtpConfig("smtp.sendgrid.net", 2525, "apikey", "s@cr:t/%", start_tls=True),
        ),
        (
            "smtp://user%40clinic.example:pw@[::1]:26",
            SmtpConfig("::1", 26, "user@clinic.example", "pw"),
        ),
        ("smtp://user@mail.example", SmtpConfig("mail.example", 25, "user", None)),
        ("smtp://user:@mail.example", SmtpConfig("mail.example", 25, "user", "")),
        ("  smtp://mail.example/  ", SmtpConfig("mail.example", 25)),
    ],
)
def test_parse_smtp_url(url: str, expected: SmtpConfig) -> None:
    assert parse_smtp_url(url) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://mail.example",
        "smtp+ssl://mail.example",
        "mail.example:25",
        "",
        "smtp://",
        "smtp://mail.example:99999",
        "smtp://mail.example:port",
    ],
)
def test_parse_smtp_url_rejects(url: str) -> None:
    with pytest.raises(ValueError, match="AVARA_VIEWER_SMTP_URL"):
        parse_smtp_url(url)


def test_password_is_not_in_repr() -> None:
    config = parse_smtp_url("smtps://u:hunter2@mail.example")
    assert "hunter2" not in repr(config)
    assert "hunter2" not in repr(SmtpTransport(config))


def test_transport_from_settings(tmp_path: Path) -> None:
    for empty in (None, "", "  "):
        transport = transport_from_settings(empty, tmp_path)
        assert isinstance(transport, MaildirTransport)
        assert transport.path == tmp_path / "maildir"
        assert (tmp_path / "maildir" / "new").is_dir()
    smtp = transport_from_settings("smtp+starttls://u:p@mail.example", tmp_path)
    assert isinstance(smtp, SmtpTransport)
    assert smtp.config == SmtpConfig("mail.example", 587, "u", "p", start_tls=True)
    with pytest.raises(ValueError, match="AVARA_VIEWER_SMTP_URL"):
        transport_from_settings("ftp://x", tmp_path)
