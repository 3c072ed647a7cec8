"""The client against the real server: `avara-viewer serve` started here on a fresh SQLite.

Skipped when the `avara-viewer` command is not installed (the client alone in a venv).
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

import avara
from avara import AsyncAvara, Avara
from avara.types.viewer import UserInviteResponse

REPO = Path(__file__).resolve().parents[2]


def _find_cli() -> str | None:
    beside_python = Path(sys.executable).parent / "avara-viewer"
    for candidate in (beside_python, REPO / ".venv" / "bin" / "avara-viewer"):
        if candidate.exists():
            return str(candidate)
    return shutil.which("avara-viewer")


CLI = _find_cli()
pytestmark = [
    pytest.mark.slow,
]

# The seed page's example, character for character.
SEED_SNIPPET = """\
import os
from avara import Avara

client = Avara(
    api_key=os.environ.get("AVARA_API_KEY"),  # This is the default and can be omitted
)
response = client.viewer.users.invite(
    can_manage_studies=True,
    clinic_role="Radiologist",
    email="dr.johnson@hospital.org",
    first_name="Sarah",
    has_dashboard_access=True,
    last_name="Johnson",
    level="member",
)
print(response.middle_name)
"""


@dataclass
class Server:
    base_url: str
    env: dict[str, str]

    def cli(self, *args: str) -> str:
        """Run an `avara-viewer` command; returns the last line of its output (the id/secret)."""
        assert CLI is not None
        done = subprocess.run(
            [CLI, *args], env=self.env, capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, f"avara-viewer {' '.join(args)}:\n{done.stderr}"
        lines = done.stdout.strip().splitlines()
        return lines[-1] if lines else ""

    def new_api_key(self) -> str:
        """A key of a new clinic, so each test starts with no users."""
        clinic_id = self.cli("clinics", "create", "--name", "St Mary Imaging")
        return self.cli("api-keys", "create", "--clinic", clinic_id, "--description", "t")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    data_dir = tmp_path_factory.mktemp("avara-viewer-data")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AVARA_VIEWER_", "AVARA_"))}
    env["AVARA_VIEWER_DATA_DIR"] = str(data_dir)
    port = _free_port()
    server = Server(base_url=f"http://127.0.0.1:{port}", env=env)
    server.cli("migrate")
    log_path = data_dir / "server.log"
    with open(log_path, "wb") as log:
        assert CLI is not None
        process = subprocess.Popen(
            [CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, f"server exited:\n{log_path.read_text()}"
            assert time.monotonic() < deadline, f"server did not start:\n{log_path.read_text()}"
            try:
                if httpx.get(f"{server.base_url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        yield server
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


class RequestCounter:
    def __init__(self) -> None:
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> None:
        self.requests.append(request)


@pytest.fixture
def counter() -> RequestCounter:
    return RequestCounter()


@pytest.fixture
def client(server: Server, counter: RequestCounter) -> Iterator[Avara]:
    http_client = httpx.Client(event_hooks={"request": [counter]})
    with Avara(
        api_key=server.new_api_key(), base_url=server.base_url, http_client=http_client
    ) as client:
        yield client
    http_client.close()


def seed_invite(client: Avara, **changes: object) -> UserInviteResponse:
    arguments: dict[str, object] = {
        "can_manage_studies": True,
        "clinic_role": "Radiologist",
        "email": f"dr.{uuid.uuid4().hex[:10]}@hospital.org",
        "first_name": "Sarah",
        "has_dashboard_access": True,
        "last_name": "Johnson",
        "level": "member",
    }
    arguments.update(changes)
    return client.viewer.users.invite(**arguments)  # type: ignore[arg-type]


def test_seed_call_returns_the_invited_user(client: Avara) -> None:
    raw = client.with_raw_response.viewer.users.invite(
        can_manage_studies=True,
        clinic_role="Radiologist",
        email="dr.johnson@hospital.org",
        first_name="Sarah",
        has_dashboard_access=True,
        last_name="Johnson",
        level="member",
    )
    assert raw.status_code == 201
    user = raw.parse()
    assert isinstance(user, UserInviteResponse)
    assert user.invited_source == "api"
    assert user.user_id.startswith("usr_") and len(user.user_id) == 36
    assert (user.email, user.first_name, user.level) == (
        "dr.johnson@hospital.org",
        "Sarah",
        "member",
    )
    assert user.middle_name is None
    assert user.last_login_at is None
    assert user.created_at is not None and user.created_at.tzinfo is not None


def test_second_invite_of_an_email_is_a_conflict_not_retried(
    client: Avara, counter: RequestCounter
) -> None:
    first = seed_invite(client, email="Dr.Twice@Hospital.org")
    counter.requests.clear()
    with pytest.raises(avara.ConflictError) as caught:
        seed_invite(client, email="dr.twice@hospital.org")
    assert len(counter.requests) == 1
    assert caught.value.status_code == 409
    assert caught.value.code == "email_already_exists"
    assert first.email == "Dr.Twice@Hospital.org"


@pytest.mark.parametrize(
    ("changes", "field"),
    [({"phone_number": "12"}, "phoneNumber"), ({"level": "owner"}, "level")],
)
def test_invalid_field_is_named_in_the_error(
    client: Avara, counter: RequestCounter, changes: dict[str, object], field: str
) -> None:
    with pytest.raises(avara.UnprocessableEntityError) as caught:
        seed_invite(client, **changes)
    assert caught.value.code == "validation_error"
    assert field in [error.field for error in caught.value.errors]
    assert all(error.message for error in caught.value.errors)
    assert len(counter.requests) == 1


def test_retried_invite_with_the_same_key_invites_once(client: Avara) -> None:
    email = f"dr.{uuid.uuid4().hex[:10]}@hospital.org"
    first = seed_invite(client, email=email, idempotency_key="integration-retry-1")
    again = seed_invite(client, email=email, idempotency_key="integration-retry-1")
    assert again.user_id == first.user_id


async def test_async_client_against_the_server(server: Server) -> None:
    async with AsyncAvara(api_key=server.new_api_key(), base_url=server.base_url) as client:
        user = await client.viewer.users.invite(
            can_manage_studies=False,
            clinic_role="PACS Administrator",
            email="pacs@hospital.org",
            first_name="Ann",
            has_dashboard_access=True,
            last_name="Lee",
            level="admin",
            middle_name="Marie",
            suffix1="MD",
        )
    assert (user.level, user.middle_name, user.suffix1) == ("admin", "Marie", "MD")


def test_wrong_key_is_an_authentication_error(server: Server) -> None:
    client = Avara(api_key="avk_not_a_key", base_url=server.base_url)
    with client, pytest.raises(avara.AuthenticationError) as caught:
        seed_invite(client)
    assert caught.value.response.headers["www-authenticate"].startswith("Bearer")


def test_seed_snippet_verbatim_prints_none(server: Server, tmp_path: Path) -> None:
    script = tmp_path / "seed.py"
    script.write_text(SEED_SNIPPET)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AVARA_")}
    env.update(AVARA_API_KEY=server.new_api_key(), AVARA_BASE_URL=server.base_url)
    done = subprocess.run(
        [sys.executable, str(script)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout == "None\n"
