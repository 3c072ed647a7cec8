"""CPU time per request of one `avara-viewer serve` process under wrk (c32), robust on a busy
machine: process CPU seconds (the whole process tree, from /proc) ÷ requests answered.

    python bench/cpu.py [--pg] [--no-email] [--seconds 10] [--profile out.svg]

The server runs pinned to CPU 0 and wrk to CPU 1, as in bench/run.py. `--profile` records the
run with py-spy (which must be installed in the venv) while wrk runs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import (
    BIN,
    Avara,
    fresh_pg_database,
    pg,
    run_wrk,
    tree_cpu_seconds,
    tree_rss_mib,
)


def tree_user_system(pid: int) -> tuple[float, float]:
    """(utime, stime) seconds of pid alone (the serve process), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    tick = os.sysconf("SC_CLK_TCK")
    return int(fields[11]) / tick, int(fields[12]) / tick


def postgres_cpu_seconds() -> float:
    """CPU seconds of every PostgreSQL server process on the machine (its backends included):
    the database's own share of an invite, which the server's figure leaves out. Other users
    of the same PostgreSQL add to it."""
    total = 0.0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            text = stat.read_text()
        except OSError:
            continue
        name, _, rest = text.partition(" (")[2].partition(")")
        if name != "postgres":
            continue
        fields = rest.split()
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--no-email", action="store_true")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument(
        "--profile", help="py-spy's record of the run: a flame graph (.svg) or stacks (.txt)"
    )
    args = parser.parse_args()
    db_name = None
    url = None
    if args.pg:
        db_name = fresh_pg_database()
        admin = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
        url = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        url += "/" + db_name
    case = Avara("cpu", url, None)
    if args.no_email:
        case.extra = ["--no-email"]
    case.start()
    try:
        assert case.proc is not None
        pid = case.proc.pid
        run_wrk(case.port, 8, 2, case.key)  # warm-up
        spy = None
        if args.profile:
            spy = subprocess.Popen(
                [
                    str(BIN / "py-spy"),
                    "record",
                    "-o",
                    args.profile,
                    "--pid",
                    str(pid),
                    "-d",
                    str(args.seconds),
                    "-r",
                    "200",
                    "--nonblocking", *(["--gil"] if os.environ.get("SPY_GIL") else []),
                    *(["-f", "raw"] if args.profile.endswith(".txt") else []),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        before = tree_cpu_seconds(pid)
        user_before, system_before = tree_user_system(pid)
        pg_before = postgres_cpu_seconds() if args.pg else 0.0
        started = time.monotonic()
        rps, p50, p99, errors, non2xx = run_wrk(case.port, args.connections, args.seconds, case.key)
        elapsed = time.monotonic() - started
        cpu = tree_cpu_seconds(pid) - before
        user_after, system_after = tree_user_system(pid)
        pg_cpu = postgres_cpu_seconds() - pg_before if args.pg else 0.0
        requests = rps * elapsed
        if spy is not None:
            spy.wait(60)
        print(
            f"{'PostgreSQL' if args.pg else 'SQLite'}{' --no-email' if args.no_email else ''}: "
            f"{rps:,.0f} req/s  p50 {p50:.1f} ms  p99 {p99:.1f} ms  errors {errors}  "
            f"non2xx {non2xx}  CPU {cpu / requests * 1e6:,.0f} µs/request  "
            f"RSS {tree_rss_mib(pid):.0f} MiB  "
            f"(user {(user_after - user_before) / requests * 1e6:,.0f} + "
            f"system {(system_after - system_before) / requests * 1e6:,.0f} µs)"
            + (f"  PostgreSQL CPU {pg_cpu / requests * 1e6:,.0f} µs/request" if args.pg else ""),
            flush=True,
        )
    finally:
        case.stop()
        case.cleanup()
        if db_name:
            pg(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
