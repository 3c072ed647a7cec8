"""Files that hold personal data and password hashes are private whatever the umask: the data
dir 0700; the SQLite database, its -wal and -shm files, backups, the generated secret key and
the Maildir's messages 0600. Run under umask 000, the most permissive."""

from __future__ import annotations

import contextlib
import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from support import Server, invite_body


@contextlib.contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def _wait_for_mail(folder: Path) -> list[Path]:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        found = list(folder.glob("*")) if folder.exists() else []
        if found:
            return found
        time.sleep(0.1)
    raise AssertionError(f"no message in {folder}")


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_everything_the_server_writes_is_private_under_umask_000(
    fresh_server: Callable[..., Server], backend: str, tmp_path: Path
) -> None:
    with umask(0o000):
        # secret_key="" : no configured secret, so the server generates and keeps one.
        srv = fresh_server(secret_key="")
        srv.start()
        clinic = srv.create_clinic("Private Files Clinic")
        body = invite_body()
        assert clinic.client.post("/v1/viewer/users", json=body).status_code == 201
        clinic.client.close()
        data = srv.data_dir
        assert mode(data) == 0o700
        assert mode(data / "secret_key") == 0o600
        mails = _wait_for_mail(data / "maildir" / "new")
        assert mails and all(mode(m) == 0o600 for m in mails)
        assert mode(data / "maildir") == 0o700
        if backend == "sqlite":
            database = data / "avara-viewer.db"
            for path in (database, Path(f"{database}-wal"), Path(f"{database}-shm")):
                assert mode(path) == 0o600, path
            copy = tmp_path / "backups" / "copy.db"
            srv.cli("backup", "--output", str(copy))
            assert mode(copy) == 0o600
            assert not list(copy.parent.glob("*.partial"))

        # An install made before this rule (0755 and 0644) is tightened at the next start.
        srv.stop()
        data.chmod(0o755)
        (data / "secret_key").chmod(0o644)
        if backend == "sqlite":
            (data / "avara-viewer.db").chmod(0o644)
        srv.start()
        assert mode(data) == 0o700
        assert mode(data / "secret_key") == 0o600
        if backend == "sqlite":
            assert mode(data / "avara-viewer.db") == 0o600
