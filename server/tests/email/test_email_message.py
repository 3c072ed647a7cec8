from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import parsedate_to_datetime

import pytest
from avara_viewer.email import build_message, render_invitation

URL = "https://viewer.clinic.example/invitations/accept?token=Zk3q9_Xb-4tPqA1rLw8sYcJ2mN5vH7dE"


def parse(raw: bytes) -> EmailMessage:
    return BytesParser(policy=policy.default).parsebytes(raw)


def body(msg: EmailMessage, kind: str) -> str:
    part = msg.get_body((kind,))
    assert part is not None
    return part.get_content().replace("\r\n", "\n")


def build(**overrides) -> bytes:
    kwargs = dict(
        mail_from="Avara Viewer <no-reply@viewer.clinic.example>",
        to="dr.johnson@hospital.org",
        subject="You're invited",
        text="Hello\n",
        html="<p>Hello</p>\n",
        message_id="outbox-123@avara-viewer",
    )
    kwargs.update(overrides)
    return build_message(**kwargs)


def test_invitation_message_parses_back() -> None:
    mail = render_invitation(
        clinic_name="Northside Imaging & Co <b>",
        inviter_name="Zoë Brontë",
        first_name="Sarah",
        last_name="Johnson",
        clinic_role="Radiologist",
        level="member",
        has_dashboard_access=True,
        accept_url=URL,
        expires_at=datetime(2025, 3, 4, 9, 7, tzinfo=UTC),
    )
    date = datetime(2025, 2, 25, 9, 7, 1, tzinfo=UTC)
    raw = build(subject=mail.subject, text=mail.text, html=mail.html, date=date)
    msg = parse(raw)
    assert not msg.defects
    assert msg["Message-ID"] == "<outbox-123@avara-viewer>"
    assert msg["From"].addresses[0].addr_spec == "no-reply@viewer.clinic.example"
    assert msg["From"].addresses[0].display_name == "Avara Viewer"
    assert msg["To"] == "dr.johnson@hospital.org"
    assert msg["Subject"] == mail.subject
    assert msg["MIME-Version"] == "1.0"
    assert parsedate_to_datetime(msg["Date"]) == date
    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    assert all(p.get_content_charset() == "utf-8" for p in parts)
    assert all(not p.defects for p in parts)
    assert body(msg, "plain") == mail.text
    assert body(msg, "html") == mail.html
    assert URL in body(msg, "plain") and f'href="{URL}"' in body(msg, "html")


def test_wire_format_is_crlf_7bit_and_short_lines() -> None:
    raw = build(
        subject="Ünïcödé " * 30,
        text="é" * 500 + "\n" + "x" * 2000,
        html="<p>" + "ü" * 3000 + "</p>",
    )
    assert b"\n" not in raw.replace(b"\r\n", b"")
    assert b"\r" not in raw.replace(b"\r\n", b"")
    assert raw.endswith(b"\r\n")
    assert all(byte < 128 for byte in raw)
    assert max(len(line) for line in raw.split(b"\r\n")) <= 78


@pytest.mark.parametrize(
    "subject",
    [
        "Plain ASCII subject",
        "Zoë Brontë invited you to join Clinique Élan — 医療画像センター 🩻",
        "x" * 300,
        "word " * 80,
        "A literal =?utf-8?q?not_an_encoded_word?= stays literal",
        "Mixed ascii then 日本語" * 12,
    ],
)
def test_subject_round_trip(subject: str) -> None:
    msg = parse(build(subject=subject))
    assert msg["Subject"] == " ".join(subject.split())


@pytest.mark.parametrize(
    "evil",
    ["\r\nBcc: victim@example.com", "\nBcc: victim@example.com", "\rBcc: x@y", "\x85Bcc: x@y"],
)
def test_subject_cannot_inject_headers(evil: str) -> None:
    raw = build(subject=f"Hello{evil}")
    msg = parse(raw)
    assert msg["Bcc"] is None
    assert msg["Subject"] == "Hello Bcc: " + evil.split("Bcc: ")[1]
    header_block = raw.split(b"\r\n\r\n", 1)[0]
    assert not any(line.startswith(b"Bcc") for line in header_block.split(b"\r\n"))


def test_subject_control_characters_are_dropped() -> None:
    assert parse(build(subject="a\x00b\x1bc\x7fd"))["Subject"] == "abcd"


@pytest.mark.parametrize("field", ["mail_from", "to", "message_id"])
@pytest.mark.parametrize("evil", ["\r\nBcc: victim@example.com", "\nX: y", "\r", "\x00"])
def test_crlf_in_addresses_and_message_id_is_rejected(field: str, evil: str) -> None:
    value = {
        "mail_from": "a@b.example",
        "to": "c@d.example",
        "message_id": "outbox-1@avara-viewer",
    }[field]
    with pytest.raises(ValueError):
        build(**{field: value + evil})


@pytest.mark.parametrize("message_id", ["", "no-at-sign", "<outbox-1@x>", "a b@c", "outbox-é@x"])
def test_malformed_message_id_is_rejected(message_id: str) -> None:
    with pytest.raises(ValueError):
        build(message_id=message_id)


def test_non_ascii_display_name_and_idn_domain() -> None:
    msg = parse(
        build(mail_from="Clinique Élan <no-reply@clinique.example>", to="Zoë <zoe@bücher.example>")
    )
    sender = msg["From"].addresses[0]
    assert (
        sender.display_name == "Clinique Élan" and sender.addr_spec == "no-reply@clinique.example"
    )
    rcpt = msg["To"].addresses[0]
    assert rcpt.display_name == "Zoë" and rcpt.addr_spec == "zoe@xn--bcher-kva.example"
    with pytest.raises(ValueError):
        build(to="zoë@example.com")


def test_bodies_with_awkward_lines_round_trip() -> None:
    text = (
        ".\n..leading dots\nFrom the start of a line\ntrailing spaces   \ntrailing tab\t\n"
        "= equals =3D and =\n" + "long " * 100 + "\n\n\nCRLF\r\nCR\rend without newline"
    )
    msg = parse(build(text=text, html="<p>" + text + "</p>"))
    expected = text.replace("\r\n", "\n").replace("\r", "\n") + "\n"
    assert body(msg, "plain") == expected
    assert body(msg, "html") == "<p>" + text.replace("\r\n", "\n").replace("\r", "\n") + "</p>\n"


def test_random_round_trips() -> None:
    rng = random.Random(1234)
    alphabet = "abc XYZ.=-_?<>&\"'\t\n\r" + "éüß€—日本語🩻" + "\u2028\x85"
    for _ in range(300):
        subject = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 120)))
        text = "".join(rng.choice(alphabet) for _ in range(rng.randint(0, 400)))
        msg = parse(build(subject=subject, text=text, html=text))
        assert msg["Subject"] == " ".join(subject.split())
        normalized = text.replace("\r\n", "\n").replace("\r", "\n")
        if not normalized.endswith("\n"):
            normalized += "\n"
        assert body(msg, "plain") == normalized
        assert body(msg, "html") == normalized
        assert not msg.defects


def test_dates() -> None:
    naive = datetime(2025, 1, 2, 3, 4, 5)
    assert parsedate_to_datetime(parse(build(date=naive))["Date"]) == naive.replace(tzinfo=UTC)
    eastern = datetime(2025, 1, 2, 3, 4, 5, tzinfo=timezone(timedelta(hours=-5)))
    assert parsedate_to_datetime(parse(build(date=eastern))["Date"]) == eastern
    now = parsedate_to_datetime(parse(build())["Date"])
    assert abs((now - datetime.now(UTC)).total_seconds()) < 5


def test_boundaries_are_unique_per_message() -> None:
    a, b = parse(build()), parse(build())
    assert a.get_boundary() != b.get_boundary()
    assert "=_" in a.get_boundary()


def test_ascii_text_part_keeps_the_link_whole_in_the_raw_message() -> None:
    link = "https://viewer.clinic.example/invitations/accept?token=" + "0a" * 32
    mail = render_invitation(
        clinic_name="Northside Imaging",
        inviter_name="Olivia Okafor",
        first_name="Sarah",
        last_name="Johnson",
        clinic_role="Radiologist",
        level="member",
        has_dashboard_access=True,
        accept_url=link,
        expires_at=datetime(2025, 3, 4, 9, 7, tzinfo=UTC),
    )
    raw = build(subject=mail.subject, text=mail.text, html=mail.html)
    text_part = raw.split(b"Content-Type: text/html")[0]
    assert b"Content-Transfer-Encoding: 7bit\r\n" in text_part
    assert b"\r\n" + link.encode() + b"\r\n" in text_part  # one line, nothing escaped
    assert body(parse(raw), "plain") == mail.text
    assert all(byte < 128 for byte in raw)


def test_non_ascii_or_long_lined_text_stays_quoted_printable() -> None:
    for text in ("Zoë invited you\n", "x" * 1200 + "\n", "tab\tand bell \x07\n"):
        raw = build(text=text)
        assert b"Content-Transfer-Encoding: 7bit" not in raw
        assert max(len(line) for line in raw.split(b"\r\n")) <= 78
        assert body(parse(raw), "plain") == text
