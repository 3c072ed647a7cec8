from __future__ import annotations

import asyncio
import mailbox
import os
from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest
from avara_viewer.email import MaildirTransport, TemporaryDeliveryError, build_message

pytestmark = pytest.mark.asyncio

LINK = "https://viewer.example/invitations/accept?token=abc123"


def message(n: int) -> bytes:
    return build_message(
        mail_from="Avara Viewer <no-reply@viewer.example>",
        to=f"user{n}@hospital.org",
        subject=f"Invitation to Zoë's clinic #{n}",
        text=f"Accept: {LINK}&n={n}\n",
        html=f'<p><a href="{LINK}&amp;n={n}">Accept</a></p>',
        message_id=f"outbox-{n}@avara-viewer",
    )


async def test_maildir_delivery_is_readable(tmp_path: Path) -> None:
    transport = MaildirTransport(tmp_path / "maildir")
    await transport.send(
        mail_from="no-reply@viewer.example", rcpt="user1@hospital.org", message=message(1)
    )
    await transport.aclose()

    box = mailbox.Maildir(tmp_path / "maildir", factory=None, create=False)
    [key] = box.keys()
    assert os.listdir(tmp_path / "maildir" / "tmp") == []
    assert os.listdir(tmp_path / "maildir" / "new") == [key]
    stored = box[key]
    assert stored["Subject"] is not None
    assert stored["Return-Path"] == "<no-reply@viewer.example>"
    assert stored["Delivered-To"] == "user1@hospital.org"

    with open(tmp_path / "maildir" / "new" / key, "rb") as fh:
        raw = fh.read()
    assert b"\r\n" not in raw  # Maildir convention: local line endings
    parsed = BytesParser(policy=policy.default).parsebytes(raw)
    assert parsed["Subject"] == "Invitation to Zoë's clinic #1"
    assert parsed["Message-ID"] == "<outbox-1@avara-viewer>"
    assert f"{LINK}&n=1" in parsed.get_body(("plain",)).get_content()
    assert [p.get_content_type() for p in parsed.iter_parts()] == ["text/plain", "text/html"]
    assert (os.stat(tmp_path / "maildir" / "new" / key).st_mode & 0o777) == 0o600


async def test_concurrent_deliveries_get_unique_files(tmp_path: Path) -> None:
    transport = MaildirTransport(tmp_path / "box")
    await asyncio.gather(
        *(
            transport.send(
                mail_from="a@b.example", rcpt=f"user{n}@hospital.org", message=message(n)
            )
            for n in range(50)
        )
    )
    box = mailbox.Maildir(tmp_path / "box", factory=None, create=False)
    assert len(box) == 50
    ids = {msg["Message-ID"] for msg in box.values()}
    assert ids == {f"<outbox-{n}@avara-viewer>" for n in range(50)}


async def test_existing_maildir_is_reused(tmp_path: Path) -> None:
    await MaildirTransport(tmp_path / "m").send(
        mail_from="a@b.example", rcpt="c@d.example", message=message(1)
    )
    await MaildirTransport(tmp_path / "m").send(
        mail_from="a@b.example", rcpt="c@d.example", message=message(2)
    )
    assert len(mailbox.Maildir(tmp_path / "m", create=False)) == 2


async def test_write_failure_is_temporary(tmp_path: Path) -> None:
    transport = MaildirTransport(tmp_path / "m")
    os.rmdir(tmp_path / "m" / "tmp")
    with pytest.raises(TemporaryDeliveryError):
        await transport.send(mail_from="a@b.example", rcpt="c@d.example", message=message(1))


@pytest.mark.parametrize("field", ["mail_from", "rcpt"])
async def test_envelope_crlf_rejected(tmp_path: Path, field: str) -> None:
    kwargs = {"mail_from": "a@b.example", "rcpt": "c@d.example"}
    kwargs[field] += "\nX-Injected: yes"
    with pytest.raises(ValueError):
        await MaildirTransport(tmp_path / "m").send(message=message(1), **kwargs)
    assert os.listdir(tmp_path / "m" / "new") == []


async def test_a_batch_lands_whole_and_one_bad_envelope_fails_alone(tmp_path: Path) -> None:
    transport = MaildirTransport(tmp_path / "m")
    batch = [(f"user{n}@hospital.org", message(n)) for n in range(20)]
    batch[7] = ("user7@hospital.org\nBcc: x@evil.example", message(7))
    results = await transport.send_many(mail_from="a@b.example", messages=batch)
    assert isinstance(results[7], ValueError)
    assert [r for i, r in enumerate(results) if i != 7] == [None] * 19
    box = mailbox.Maildir(tmp_path / "m", factory=None, create=False)
    assert sorted(m["Delivered-To"] for m in box) == sorted(
        f"user{n}@hospital.org" for n in range(20) if n != 7
    )
    assert os.listdir(tmp_path / "m" / "tmp") == []


async def test_a_batch_that_cannot_enter_new_is_temporary_and_leaves_nothing(
    tmp_path: Path,
) -> None:
    transport = MaildirTransport(tmp_path / "m")
    os.rmdir(tmp_path / "m" / "new")
    (tmp_path / "m" / "new").write_text("not a directory")
    batch = [(f"user{n}@hospital.org", message(n)) for n in range(5)]
    results = await transport.send_many(mail_from="a@b.example", messages=batch)
    assert all(isinstance(r, TemporaryDeliveryError) for r in results), results
    assert os.listdir(tmp_path / "m" / "tmp") == []
