"""A PostgreSQL cluster of a test's own (initdb into a temp dir, on a free port), which the
test may stop, restart and starve: the machine's shared cluster on 5432 is never touched.

The tests run as root and PostgreSQL refuses to, so the data dir is owned by the postgres
user and initdb/pg_ctl run through `runuser -u postgres --`.
"""

from __future__ import annotations

import contextlib
import glob
import shutil
import subprocess
import tempfile
from pathlib import Path

from support import free_port


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise AssertionError(f"no PostgreSQL {name} under /usr/lib/postgresql/*/bin")
    return found[-1]


class OwnPostgres:
    def __init__(self, max_connections: int = 40) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="avara-pg-"))
        self.data = self.root / "data"
        self.port = free_port()
        shutil.chown(self.root, "postgres", "postgres")
        self.root.chmod(0o700)
        self._as_postgres(
            _bin("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8"
        )
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write(
                f"port = {self.port}\nlisten_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{self.root}'\nmax_connections = {max_connections}\n"
                "fsync = off\nshared_buffers = 16MB\n"
            )
        self.start()
        # support.Server makes its databases from a database named "test", as on the shared one.
        self._as_postgres(
            _bin("createdb"), "-h", str(self.root), "-p", str(self.port), "-U", "postgres", "test"
        )
        self.admin_url = f"postgresql://postgres@127.0.0.1:{self.port}/test"

    def _as_postgres(self, *cmd: str) -> None:
        subprocess.run(
            ["runuser", "-u", "postgres", "--", *cmd],
            check=True, capture_output=True, timeout=60, cwd=self.root,
        )

    def start(self) -> None:
        self._as_postgres(
            _bin("pg_ctl"), "-D", str(self.data), "-l", str(self.root / "log"), "-w", "start"
        )

    def stop(self) -> None:
        self._as_postgres(_bin("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop")

    def destroy(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):  # already stopped
            self.stop()
        shutil.rmtree(self.root, ignore_errors=True)
