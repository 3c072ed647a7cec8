"""Passwords are stored as argon2id hashes with the configured cost (argon2-cffi's defaults
unless AVARA_VIEWER_ARGON2_* say otherwise), and a hash keeps verifying after the cost is
changed: it carries its own parameters."""

from __future__ import annotations

from typing import Any

from dashboard.browser_support import login_over_http, onboard_owner
from support import SmtpSink

DEFAULTS = "$argon2id$v=19$m=65536,t=3,p=4$"
CHEAP = "$argon2id$v=19$m=8192,t=1,p=4$"


def test_the_default_cost_is_argon2s_and_a_changed_cost_still_verifies_old_hashes(
    fresh_server: Any, smtp_sink: SmtpSink
) -> None:
    server = fresh_server(smtp_sink.url)
    for name in ("AVARA_VIEWER_ARGON2_TIME_COST", "AVARA_VIEWER_ARGON2_MEMORY_KIB"):
        server.env.pop(name)  # as deployed: the defaults
    server.start()
    clinic = server.create_clinic("Hashing Clinic")
    owner = onboard_owner(server, smtp_sink, clinic.id)
    [(stored,)] = server.sql(f"SELECT password_hash FROM users WHERE id = '{owner.user_id}'")
    assert stored.startswith(DEFAULTS) and len(stored) > len(DEFAULTS) + 40

    server.stop()
    server.env.update(AVARA_VIEWER_ARGON2_TIME_COST="1", AVARA_VIEWER_ARGON2_MEMORY_KIB="8192")
    server.start()
    assert login_over_http(server, owner.email).get("/users").status_code == 200
    second = onboard_owner(server, smtp_sink, clinic.id, first="Ama", last="Mensah")
    [(cheap,)] = server.sql(f"SELECT password_hash FROM users WHERE id = '{second.user_id}'")
    assert cheap.startswith(CHEAP)


def test_a_cost_below_argon2s_floor_is_refused_at_start(fresh_server: Any) -> None:
    server = fresh_server(None)
    server.env["AVARA_VIEWER_ARGON2_MEMORY_KIB"] = "1024"
    result = server.cli("serve", "--port", "1", check=False)
    assert result.returncode != 0
    assert "argon2_memory_kib" in (result.stdout + result.stderr).lower()
