from __future__ import annotations

import html as html_lib
from datetime import UTC, datetime, timedelta, timezone

import jinja2
import pytest
from avara_viewer.email import RenderedEmail, render_invitation, render_password_reset
from avara_viewer.email.render import clean_inline, environment, format_expiry

ACCEPT_URL = (
    "https://viewer.clinic.example/invitations/accept?token=Zk3q9_Xb-4tPqA1rLw8sYcJ2mN5vH7dE"
)
EXPIRES = datetime(2025, 3, 4, 9, 7, tzinfo=UTC)


def invitation(**overrides) -> RenderedEmail:
    kwargs = dict(
        clinic_name="Northside Imaging",
        inviter_name="Maria Lopez",
        first_name="Sarah",
        last_name="Johnson",
        clinic_role="Radiologist",
        level="member",
        has_dashboard_access=True,
        accept_url=ACCEPT_URL,
        expires_at=EXPIRES,
    )
    kwargs.update(overrides)
    return render_invitation(**kwargs)


def test_invitation_contents() -> None:
    mail = invitation()
    assert isinstance(mail, RenderedEmail)
    assert mail.subject == "Maria Lopez invited you to join Northside Imaging on Avara Viewer"
    for part in (mail.text, mail.html):
        assert "Northside Imaging" in part
        assert "Maria Lopez" in part
        assert "Sarah" in part and "Sarah Johnson" in part
        assert "Radiologist" in part
        assert "Member" in part
        assert "Tuesday, 4 March 2025 at 09:07 UTC" in part
        assert "decline" in part
        assert "Not expecting this email?" in part
        assert "choose a password" in part
    # one link, in the text part exactly once and in the HTML as button + copyable text
    assert mail.text.count(ACCEPT_URL) == 1
    assert mail.text.count("https://") == 1
    assert f'href="{ACCEPT_URL}"' in mail.html
    assert mail.html.count("href=") == 1


def test_invitation_html_is_self_contained() -> None:
    mail = invitation()
    lowered = mail.html.lower()
    assert "<img" not in lowered
    assert "<link" not in lowered and "<script" not in lowered and "<style" not in lowered
    assert "<table" in lowered and 'style="' in lowered
    assert lowered.startswith("<!doctype html>")


def test_invitation_sent_with_api_key_has_no_inviter_name() -> None:
    for inviter in (None, "", "   \r\n "):
        mail = invitation(inviter_name=inviter)
        assert mail.subject == "You're invited to join Northside Imaging on Avara Viewer"
        assert "An administrator at Northside Imaging has invited you" in mail.text
        assert "An administrator at <strong>Northside Imaging</strong>" in mail.html
        assert "None" not in mail.text and "None" not in mail.html


def test_invitation_without_dashboard_access_and_admin_level() -> None:
    mail = invitation(has_dashboard_access=False, level="admin")
    assert "Dashboard access: No" in mail.text
    assert "does not include dashboard access" in mail.text
    assert "choose a password" not in mail.text
    assert "Administrator" in mail.text and "Administrator" in mail.html


def test_script_names_are_escaped_in_html_and_verbatim_in_text() -> None:
    evil = '<script>alert("x")</script>'
    mail = invitation(
        clinic_name=f"Clinic {evil}",
        inviter_name=f"Eve {evil}",
        first_name=f"Bob {evil}",
        last_name="O'Brien & <b>Sons</b>",
        clinic_role=evil,
    )
    assert "<script" not in mail.html.lower()
    assert "<b>Sons" not in mail.html
    assert "&lt;script&gt;" in mail.html
    assert "O&#39;Brien &amp; &lt;b&gt;Sons&lt;/b&gt;" in mail.html
    # text/plain is not HTML: shown as typed, never entity-escaped
    assert f"Clinic {evil}" in mail.text
    assert "O'Brien & <b>Sons</b>" in mail.text
    assert "&lt;" not in mail.text and "&amp;" not in mail.text
    assert evil in mail.subject


@pytest.mark.parametrize("sep", ["\r\n", "\n", "\r", "\u2028", "\x85", "\x0b", "\t"])
def test_line_breaks_in_names_cannot_add_lines_or_headers(sep: str) -> None:
    mail = invitation(
        inviter_name=f"Mallory{sep}Bcc: victim@example.com",
        first_name=f"Bob{sep}{sep}Click https://evil.example",
        clinic_name=f"Clinic{sep}Subject: hacked",
    )
    for ch in "\r\n\x0b\x85\u2028\u2029\t":
        assert ch not in mail.subject
    assert mail.subject == (
        "Mallory Bcc: victim@example.com invited you to join Clinic Subject: hacked on Avara Viewer"
    )
    lines = mail.text.splitlines()
    assert not any(line.startswith(("Bcc:", "Subject:", "Click")) for line in lines)
    assert "Hello Bob Click https://evil.example," in lines


def test_bidi_and_control_characters_are_removed() -> None:
    mail = invitation(first_name="Al\u202eice\x00\x1b[31m", clinic_name="\ufeffNorth\u200bside")
    assert "\u202e" not in mail.text and "\x00" not in mail.html and "\x1b" not in mail.text
    assert "Hello Alice[31m," in mail.text
    assert "Northside" in mail.subject


def test_expiry_formatting_converts_to_utc() -> None:
    paris = timezone(timedelta(hours=1))
    assert (
        format_expiry(datetime(2025, 1, 1, 0, 30, tzinfo=paris))
        == "Tuesday, 31 December 2024 at 23:30 UTC"
    )
    assert format_expiry(datetime(2025, 1, 1, 0, 30)) == "Wednesday, 1 January 2025 at 00:30 UTC"


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        "/relative/accept?token=x",
        "https://a.example/x y",
        "https://a.example/\r\nX: y",
        "",
    ],
)
def test_links_must_be_absolute_http(url: str) -> None:
    with pytest.raises(ValueError):
        invitation(accept_url=url)


def test_long_names_are_capped() -> None:
    mail = invitation(clinic_name="A" * 5000)
    assert len(mail.subject) < 300
    assert clean_inline("x" * 5000).endswith("\u2026")


def test_password_reset() -> None:
    url = "https://viewer.clinic.example/password-reset?token=abc"
    mail = render_password_reset(
        clinic_name="Northside <Imaging>",
        first_name="Sarah\r\nX",
        reset_url=url,
        expires_at=EXPIRES,
    )
    assert mail.subject == "Reset your Avara Viewer password for Northside <Imaging>"
    assert "Hello Sarah X," in mail.text
    assert mail.text.count(url) == 1 and f'href="{url}"' in mail.html
    assert "Northside &lt;Imaging&gt;" in mail.html and "<Imaging>" not in mail.html
    assert "Tuesday, 4 March 2025 at 09:07 UTC" in mail.text
    assert "password will not change" in mail.text


def test_environment_is_shared_strict_and_escapes_html_only() -> None:
    env = environment()
    assert env is environment()
    assert env.undefined is jinja2.StrictUndefined
    assert env.get_template("invitation.html.j2").render  # loads from the package directory
    assert env.autoescape("invitation.html.j2") is True
    assert env.autoescape("invitation.txt.j2") is False
    assert env.autoescape("invitation.subject.j2") is False
    with pytest.raises(jinja2.UndefinedError):
        env.get_template("invitation.txt.j2").render(first_name="x")


def test_ampersands_in_link_round_trip_through_html() -> None:
    url = "https://viewer.example/invitations/accept?token=abc&lang=en"
    mail = invitation(accept_url=url)
    assert 'href="https://viewer.example/invitations/accept?token=abc&amp;lang=en"' in mail.html
    assert url in html_lib.unescape(mail.html)
    assert url in mail.text
