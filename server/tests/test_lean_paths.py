"""The lean request path answers exactly as FastAPI's routes do, and its shortcuts keep the
rules they stand in for:

- users.lean (POST /v1/viewer/users, GET /v1/viewer/users/{userId} in front of FastAPI): the
  same requests sent through it and through the FastAPI routes (an application under a root
  path, where the lean layer steps aside) give the same status, headers and body, ids and
  times aside;
- the email check's domain cache (fields._email) accepts and refuses what the full check does;
- UTCDateTime's SQLite bind processor writes the text SQLAlchemy's chained processors write;
- a new audit entry's hash is taken over the text the verifier's canonical() gives it;
- names in ASCII are checked without a look-up per character, with the same outcomes.
"""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
from avara_viewer import fields
from avara_viewer.app import create_app
from avara_viewer.clinics.service import create_api_key, create_clinic
from avara_viewer.clock import utcnow
from avara_viewer.config import Settings
from avara_viewer.db import UTCDateTime, open_database
from avara_viewer.migrate import upgrade
from sqlalchemy import DateTime
from sqlalchemy.dialects import sqlite
from sqlalchemy.types import TypeDecorator

# --- the lean routes against FastAPI's -----------------------------------------------------

_ID = re.compile(r"(usr|inv)_[0-9a-f]{32}")
_SUFFIX = re.compile(r"-[lr]@")  # which path's address (see _send)
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z")
# The request id is new on every request; the length follows the ids in the body. The
# dashboard's security headers are added to paths outside /v1/, which the root-path copy of a
# request is (dashboard.web.SecurityHeaders): a difference of the test's routing, not the
# layers'.
_VARYING_HEADERS = {
    "x-request-id",
    "content-length",
    "content-security-policy",
    "x-content-type-options",
    "x-frame-options",
    "referrer-policy",
}


def _shape(response: httpx.Response) -> tuple[int, list[tuple[str, str]], str]:
    headers = [(k, v) for k, v in response.headers.items() if k not in _VARYING_HEADERS]
    body = _TIME.sub("<time>", _ID.sub(r"\1_<id>", response.text))
    body = _SUFFIX.sub("-<path>@", body)
    return response.status_code, headers, body


def _invite(n: str, **overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "canManageStudies": True,
        "clinicRole": "Radiologist",
        "email": f"dr.{n}@hospital.org",
        "firstName": "Sarah",
        "hasDashboardAccess": True,
        "lastName": "Johnson",
        "level": "member",
    }
    body.update(overrides)
    return body


async def _send(
    client: httpx.AsyncClient,
    prefix: str,
    suffix: str,
    method: str,
    path: str,
    spec: dict[str, Any],
    auth: dict[str, str],
) -> httpx.Response:
    """One case's request; `suffix` keeps the two paths' addresses apart."""
    headers = dict(auth)
    if "auth" in spec:
        headers.pop("Authorization")
        if spec["auth"] is not None:
            headers["Authorization"] = spec["auth"]
    if "idem" in spec:
        headers["Idempotency-Key"] = spec["idem"]
    kw: dict[str, Any] = {}
    if "invite" in spec:
        kw["json"] = _invite(f"{spec['invite']}-{suffix}")
    elif "body" in spec:
        kw["json"] = spec["body"]
    elif "raw" in spec:
        kw["content"] = spec["raw"]
        headers["Content-Type"] = "application/json"
    elif "media" in spec:
        kw["content"] = b"{}"
        headers["Content-Type"] = spec["media"]
    elif method == "POST":
        kw["json"] = _invite(f"plain-{suffix}")
    return await client.request(method, prefix + path, headers=headers, **kw)


def _setup(settings: Settings) -> str:
    upgrade(settings)

    async def run() -> str:
        db = open_database(settings)
        try:
            clinic_id = await db.write(lambda conn: create_clinic(conn, "Lean Clinic", utcnow()))
            key = await db.write(
                lambda conn: create_api_key(
                    conn, settings.resolved_secret_key, clinic_id, "lean", utcnow()
                )
            )
            return str(key.secret)
        finally:
            await db.close()

    return asyncio.run(run())


_USERS = "/v1/viewer/users"
_NOBODY = "/v1/viewer/users/usr_" + "0" * 32
_CASES: list[tuple[str, str, str, dict[str, Any]]] = [
    ("created", "POST", _USERS, {"invite": "first"}),
    ("taken", "POST", _USERS, {"invite": "first"}),
    (
        "fields",
        "POST",
        _USERS,
        {"raw": b'{"email":"x","level":"owner","firstName":" ","extra":1}'},
    ),
    (
        "admin-without-access",
        "POST",
        _USERS,
        {"body": _invite("a", level="admin", hasDashboardAccess=False)},
    ),
    ("not-json", "POST", _USERS, {"raw": b"{nope"}),
    ("array", "POST", _USERS, {"raw": b"[1]"}),
    ("nul", "POST", _USERS, {"raw": b'{"firstName":"a\\u0000"}'}),
    ("media-type", "POST", _USERS, {"media": "text/plain"}),
    ("too-large", "POST", _USERS, {"raw": b" " * (65 * 1024)}),
    ("no-key", "POST", _USERS, {"auth": None}),
    ("unknown-key", "POST", _USERS, {"auth": "Bearer avk_" + "x" * 43}),
    ("basic-auth", "POST", _USERS, {"auth": "Basic abc"}),
    ("blank-idempotency-key", "POST", _USERS, {"invite": "idem0", "idem": " "}),
    ("retrieve-unknown", "GET", _NOBODY, {}),
    ("retrieve-no-key", "GET", _NOBODY, {"auth": None}),
]


def test_lean_routes_answer_as_fastapi_does(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, database_url=None, rate_limit_per_minute=10_000)
    auth = {"Authorization": f"Bearer {_setup(settings)}"}
    app = create_app(settings, deliver_email=False)

    async def run() -> dict[str, tuple[Any, Any]]:
        lean = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://testserver"
        )
        # Under a root path the lean layer steps aside: FastAPI's routes answer.
        routed = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app, root_path="/root"),
            base_url="http://testserver",
        )
        out: dict[str, tuple[Any, Any]] = {}
        async with app.router.lifespan_context(app):
            for name, method, path, spec in _CASES:
                a = await _send(lean, "", "l", method, path, spec, auth)
                b = await _send(routed, "/root", "r", method, path, spec, auth)
                out[name] = (_shape(a), _shape(b))
            # Idempotency-Key: the first answer replayed, a different body refused; and the
            # user read back.
            pairs = []
            for client, prefix, suffix in ((lean, "", "l"), (routed, "/root", "r")):
                headers = {**auth, "Idempotency-Key": f"key-{suffix}"}
                url = prefix + _USERS
                first = await client.post(url, json=_invite(f"idem-{suffix}"), headers=headers)
                again = await client.post(url, json=_invite(f"idem-{suffix}"), headers=headers)
                other = await client.post(url, json=_invite(f"other-{suffix}"), headers=headers)
                assert first.status_code == 201
                assert again.status_code == 201
                assert again.text == first.text
                assert again.headers["idempotent-replayed"] == "true"
                assert other.status_code == 422
                assert other.json()["code"] == "idempotency_key_reused"
                user_id = first.json()["userId"]
                got = await client.get(f"{prefix}{_USERS}/{user_id}", headers=auth)
                assert got.status_code == 200
                assert got.json() == first.json()
                pairs.append([_shape(r) for r in (first, again, other, got)])
            out["idempotency-and-retrieve"] = (pairs[0], pairs[1])
            metrics = await lean.get("/metrics")
            out["metrics"] = (metrics.text, None)
        await lean.aclose()
        await routed.aclose()
        return out

    results = asyncio.run(run())
    for name, (lean, routed) in results.items():
        if name != "metrics":
            assert lean == routed, name
    statuses = {name: lean[0] for name, (lean, _) in results.items() if name != "metrics"}
    assert statuses["created"] == 201
    assert statuses["taken"] == 409
    assert statuses["fields"] == 422
    assert statuses["admin-without-access"] == 422
    assert statuses["not-json"] == 400
    assert statuses["media-type"] == 415
    assert statuses["too-large"] == 413
    assert statuses["no-key"] == statuses["unknown-key"] == statuses["basic-auth"] == 401
    assert statuses["retrieve-unknown"] == 404
    # Both paths' requests are labelled by the route template in the metrics.
    text = results["metrics"][0]
    assert 'method="POST",route="/v1/viewer/users",status="201"' in text
    assert 'method="GET",route="/v1/viewer/users/{userId}",status="404"' in text


# --- the email check's domain cache ------------------------------------------------------

_ADDRESSES = [
    "a@example.org",
    "Dr.Sarah+tag_1@Example.ORG",
    "a..b@example.org",
    ".a@example.org",
    "a.@example.org",
    "a b@example.org",
    '"quoted"@example.org',
    '"a@b"@example.org',
    "a@b@example.org",
    "jöhn@example.org",
    "a@exämple.org",
    "a\u202e@example.org",
    "a\x01@example.org",
    "a@",
    "@example.org",
    "noat",
    "a@localhost",
    "a@example",
    "a@[127.0.0.1]",
    "Name <a@example.org>",
    "a@example.org.",
    "a@-example.org",
    "a@xn--exmple-cua.org",
    "x" * 64 + "@example.org",
    "x" * 65 + "@example.org",
    "x" * 241 + "@example.org",
    "x" * 242 + "@example.org",
    "a!#$%&'*/=?^`{|}~@example.org",
    "a@EXAMPLE.org",
]


def _outcome(check: Any, value: str) -> tuple[bool, str]:
    try:
        check(value)
    except ValueError as exc:
        return False, str(exc)
    return True, ""


def _uncached(value: str) -> None:
    fields._ACCEPTED_DOMAINS.clear()
    fields._email(value)


@pytest.mark.parametrize("address", _ADDRESSES)
def test_email_domain_cache_keeps_the_rules(address: str) -> None:
    expected = _outcome(_uncached, address)
    # Every domain the list holds, accepted first (where an address with it can be), then the
    # address checked with the cache warm.
    fields._ACCEPTED_DOMAINS.clear()
    for other in _ADDRESSES:
        domain = other.rpartition("@")[2]
        _outcome(fields._email, f"warm@{domain}")
    assert _outcome(fields._email, address) == expected


# --- UTCDateTime on SQLite -----------------------------------------------------------------


class _Chained(TypeDecorator[datetime]):
    """UTCDateTime as it was: its own conversion, then SQLAlchemy's DATETIME processor."""

    impl = DateTime(timezone=False)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        return UTCDateTime().process_bind_param(value, dialect)


@pytest.mark.parametrize(
    "value",
    [
        None,
        datetime(2026, 11, 29, 13, 45, 7, 123456, tzinfo=UTC),
        datetime(2026, 11, 29, 13, 45, 7, tzinfo=UTC),
        datetime(2026, 11, 29, 13, 45, 7, 5),
        datetime(1, 1, 1),
        datetime(9999, 12, 31, 23, 59, 59, 999999),
        datetime(2026, 3, 29, 1, 30, tzinfo=timezone(timedelta(hours=-5, minutes=-30))),
    ],
)
def test_sqlite_datetime_text_is_sqlalchemys(value: datetime | None) -> None:
    dialect = sqlite.dialect()
    # As statements get them: through the type's implementation for the dialect.
    ours = UTCDateTime()._cached_bind_processor(dialect)
    theirs = _Chained()._cached_bind_processor(dialect)
    assert ours is not None and theirs is not None
    assert ours(value) == theirs(value)


# --- SQLite's executemany without SQLAlchemy's parameter building ------------------------------


def test_sqlite_insert_rows_stores_what_sqlalchemy_stores(tmp_path: Path) -> None:
    """db.insert_rows on SQLite's writer and SQLAlchemy's insert store the same values, of the
    same SQLite types, in every column (a users row with every kind of column)."""
    import sqlite3

    from avara_viewer.db import insert_rows
    from avara_viewer.users.models import User

    settings = Settings(data_dir=tmp_path, database_url=None)
    upgrade(settings)
    users = User.__table__
    when = datetime(2026, 11, 29, 13, 45, 7, 123456, tzinfo=UTC)

    def row(user_id: str, email: str) -> dict[str, Any]:
        return {
            "id": user_id,
            "clinic_id": clinic_id,
            "email": email,
            "email_lower": email.lower(),
            "first_name": "Zoë",
            "middle_name": None,
            "last_name": "O'Brien",
            "suffix1": "2",
            "suffix2": None,
            "phone_number": "0123456789",
            "clinic_role": "Radiologist",
            "level": "member",
            "can_manage_studies": True,
            "has_dashboard_access": False,
            "invited_source": "api",
            "inviter_id": None,
            "status": "invited",
            "password_hash": None,
            "session_version": 0,
            "created_at": when,
            "updated_at": when.astimezone(timezone(timedelta(hours=2))),
            "last_login_at": None,
        }

    async def run() -> None:
        db = open_database(settings)
        try:
            nonlocal clinic_id
            clinic_id = await db.write(lambda conn: create_clinic(conn, "Rows", utcnow()))

            async def both(conn: Any) -> None:
                await insert_rows(conn, users, [row("usr_" + "a" * 32, "A@x.org")])
                await conn.execute(users.insert(), [row("usr_" + "b" * 32, "B@x.org")])

            await db.write(both)
        finally:
            await db.close()

    clinic_id = ""
    asyncio.run(run())
    with sqlite3.connect(tmp_path / "avara-viewer.db") as conn:
        columns = [c.name for c in users.columns]
        select = ", ".join(f"{c}, typeof({c})" for c in columns)
        fast, usual = conn.execute(f"SELECT {select} FROM users ORDER BY id").fetchall()
    differ = [
        (name, fast[2 * i : 2 * i + 2], usual[2 * i : 2 * i + 2])
        for i, name in enumerate(columns)
        if fast[2 * i : 2 * i + 2] != usual[2 * i : 2 * i + 2]
    ]
    assert [name for name, _, _ in differ] == ["id", "email", "email_lower"], differ


# --- API-key look-ups shared by concurrent requests ------------------------------------------


def test_concurrent_requests_share_one_api_key_look_up() -> None:
    """Requests that miss the key cache while a look-up of the same key is in flight wait for
    it instead of reading too; if the request doing the look-up is cancelled, the others look
    the key up themselves."""
    from types import SimpleNamespace

    from avara_viewer.clinics.auth import ApiKeyAuthenticator, hash_api_key
    from avara_viewer.errors import Unauthorized

    secret = b"s" * 32
    key = "avk_" + "k" * 43
    row = SimpleNamespace(
        id="key-1", clinic_id="clinic-1", key_hash=hash_api_key(secret, key), revoked_at=None
    )

    async def run() -> None:
        reads = 0
        release = asyncio.Event()

        async def read(op: Any) -> Any:
            nonlocal reads
            reads += 1
            await release.wait()
            return row

        auth = ApiKeyAuthenticator(secret)
        calls = [
            asyncio.create_task(auth.authenticate_header(f"Bearer {key}", read)) for _ in range(10)
        ]
        await asyncio.sleep(0)
        release.set()
        principals = await asyncio.gather(*calls)
        assert reads == 1
        assert {p.api_key_id for p in principals} == {"key-1"}

        # The leader cancelled: the followers read for themselves.
        reads = 0
        release.clear()
        auth = ApiKeyAuthenticator(secret)
        leader = asyncio.create_task(auth.authenticate_header(f"Bearer {key}", read))
        await asyncio.sleep(0)
        followers = [
            asyncio.create_task(auth.authenticate_header(f"Bearer {key}", read)) for _ in range(3)
        ]
        await asyncio.sleep(0)
        leader.cancel()
        await asyncio.sleep(0)
        release.set()
        assert {p.api_key_id for p in await asyncio.gather(*followers)} == {"key-1"}
        assert leader.cancelled()
        assert reads == 4

        # A wrong key is refused for every waiter, however its look-up went.
        auth = ApiKeyAuthenticator(secret)
        wrong = "avk_" + "k" * 12 + "x" * 31
        results = await asyncio.gather(
            *(auth.authenticate_header(f"Bearer {wrong}", read) for _ in range(3)),
            return_exceptions=True,
        )
        assert all(isinstance(r, Unauthorized) for r in results)

    asyncio.run(run())


# --- the audit entry's canonical text -----------------------------------------------------

_TEXTS = [
    "Sarah",
    "Zoë Ødegård-Łukasiewicz",
    "李小龍",
    "emoji 🩻 and \u2028 line separator",
    'quote " backslash \\ slash /',
    "tab\tnewline\ncontrol\x01\x1f del\x7f",
    "",
]


@pytest.mark.parametrize("value", _TEXTS)
def test_new_audit_entries_hash_the_verifiers_canonical_text(value: str) -> None:
    """record_many stores changes_json(changes) and hashes canonical_of_new(entry, that
    text); `audit verify` recomputes canonical(entry) from the stored row: the texts are
    json.dumps's, byte for byte."""
    import json

    from avara_viewer.audit.service import canonical, canonical_of_new, changes_json

    def dumps(value: Any) -> str:
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)

    # The shape of diff(): orjson writes it; and shapes or values it leaves to json.
    for changes in (
        {"firstName": {"before": None, "after": value}, value: {"before": True, "after": -7}},
        {"email": {"before": 2**64, "after": value}},
        {"email": {"before": "\ud800", "after": value}},
        {"score": {"before": 1e16, "after": 0.1}},
        {"eventTypes": {"before": [value], "after": None}},
        {"flat": value},
    ):
        assert changes_json(changes) == dumps(changes)

    changes = {
        "firstName": {"before": None, "after": value},
        "level": {"before": "member", "after": "admin"},
        "canManageStudies": {"before": False, "after": True},
        value or "empty": {"before": 1, "after": 2.5},
        "nested": {"after": [value, None, {"b": value, "a": 0}], "before": {}},
    }
    stored = dumps(changes)
    for actor_id, target_id, request_id in ((None, None, None), (value, "usr_1", value)):
        entry = {
            "clinic_id": "0b0e1c9e-7a52-4f0e-9d52-3c1f4b0a9e11",
            "seq": 41,
            "actor_type": "api_key",
            "actor_id": actor_id,
            "action": "user.invited",
            "target_type": "user",
            "target_id": target_id,
            "changes": stored,
            "request_id": request_id,
            "created_at": datetime(2026, 11, 29, 13, 45, 7, 5, tzinfo=UTC),
        }
        assert canonical_of_new(entry, stored) == canonical(entry)


# --- names in ASCII -------------------------------------------------------------------------


def _name_by_categories(value: str, digits_count: bool) -> None:
    """fields.check_name's rules as unicodedata states them, one character at a time."""
    import unicodedata

    value = value.strip()
    if not value:
        raise ValueError("must contain at least 1 character that is not a space")
    for char in value:
        refused = unicodedata.category(char) in ("Cc", "Cf", "Zl", "Zp")
        if refused or char in "\u115f\u1160\u3164\uffa0":
            raise ValueError(f"found U+{ord(char):04X}")
    wanted = ("L", "N") if digits_count else ("L",)
    if not any(unicodedata.category(c)[0] in wanted for c in value):
        raise ValueError("must contain a letter")


@pytest.mark.parametrize("digits_count", [False, True])
def test_ascii_names_keep_the_character_rules(digits_count: bool) -> None:
    ascii_chars = [chr(n) for n in range(128)]
    names = [
        *ascii_chars,
        *(f"Ann{c}Lee" for c in ascii_chars),
        *(f"2{c}" for c in ascii_chars),
        "O'Brien-Smith Jr.",
        "  Sarah  ",
        "2",
        "--",
        "Zoë",
        "李",
        "Ali\u202ecod",
        "\u3164",
        "Ann\u2028Lee",
    ]
    for name in names:
        expected = _outcome(lambda v: _name_by_categories(v, digits_count), name)[0]
        got = _outcome(lambda v: fields.check_name(v, 100, digits_count=digits_count), name)[0]
        assert got == expected, repr(name)
