"""`make bench`: the invite call under wrk for the baselines and for Avara Viewer, in one run.

Every server runs as one process pinned to CPU 0, wrk pinned to CPU 1, on loopback. Cases:
a bare ASGI app, the FastAPI app without a database, a naive FastAPI + SQLAlchemy-ORM build
(bench/baselines) on SQLite (WAL, synchronous=FULL) and PostgreSQL, and `avara-viewer serve`
on both (delivering its email to an SMTP sink in another process). Then the email figures:
time from commit to the SMTP server's acceptance, and how fast the delivery loop drains a
backlog compared with a bare aiosmtplib loop. Results: bench/results/*.json and
docs/performance.md (table and chart).
"""

from __future__ import annotations

import argparse
import asyncio
import atexit
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
RESULTS = BENCH / "results"
BIN = Path(sys.executable).parent
PG_ADMIN = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
sys.path.insert(0, str(BENCH))
from report import update_section  # noqa: E402 - bench/ is not a package; needs the path above


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pg(sql: str) -> None:
    import asyncpg

    async def run() -> None:
        conn = await asyncpg.connect(PG_ADMIN)
        try:
            await conn.execute(sql)
        finally:
            await conn.close()

    asyncio.run(run())


def fresh_pg_database() -> str:
    name = f"avara_bench_{uuid.uuid4().hex[:8]}"
    pg(f'CREATE DATABASE "{name}"')
    return name


@dataclass
class Result:
    case: str
    connections: int
    rps: float
    p50_ms: float
    p99_ms: float
    errors: int
    non2xx: int
    # The server's process tree: CPU seconds per request answered (robust on a busy machine,
    # unlike req/s), and its resident memory at the end of the runs.
    cpu_us: float = float("nan")
    rss_mib: float = float("nan")


TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """utime + stime of pid and its running descendants, from /proc."""
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / TICK
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        todo += [int(c) for c in children]
    return total


def tree_rss_mib(pid: int) -> float:
    """Resident memory of pid and its running descendants, MiB."""
    total = 0.0
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            for line in Path(f"/proc/{p}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) / 1024
            children = Path(f"/proc/{p}/task/{p}/children").read_text().split()
        except OSError:
            continue
        todo += [int(c) for c in children]
    return total


def wait_ready(url: str, proc: subprocess.Popen[bytes], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.1)
    raise RuntimeError("server did not start")


def run_wrk(
    port: int, connections: int, seconds: int, key: str
) -> tuple[float, float, float, int, int]:
    cmd = [
        "taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{seconds}s",
        "-s", str(BENCH / "invite.lua"), f"http://127.0.0.1:{port}/v1/viewer/users",
    ]
    out = subprocess.run(
        cmd, capture_output=True, text=True, env=dict(os.environ, AVARA_BENCH_KEY=key), check=True
    ).stdout
    m = re.search(r"RESULT rps=([\d.]+) p50=([\d.]+) p99=([\d.]+) errors=(\d+) non2xx=(\d+)", out)
    if not m:
        raise RuntimeError(f"no result from wrk:\n{out}")
    return float(m[1]), float(m[2]), float(m[3]), int(m[4]), int(m[5])


_leftovers: list[Path] = []
atexit.register(lambda: [shutil.rmtree(path, ignore_errors=True) for path in _leftovers])


class Case:
    """A server process to benchmark: started, measured at several connection counts, stopped."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.port = free_port()
        self.key = "none"
        self.proc: subprocess.Popen[bytes] | None = None
        self.tmp = Path(tempfile.mkdtemp(prefix=f"bench-{name}-"))
        self.env = dict(os.environ)

    def command(self) -> list[str]:
        raise NotImplementedError

    def prepare(self) -> None:
        """Before start: create databases, keys."""

    def start(self) -> None:
        self.prepare()
        # The child gets its own copy of the descriptor, so ours can close as soon as it is spawned.
        with open(self.tmp / "server.log", "wb") as log:
            self.proc = subprocess.Popen(
                ["taskset", "-c", "0", *self.command()],
                env=self.env, stdout=log, stderr=subprocess.STDOUT,
            )
        wait_ready(f"http://127.0.0.1:{self.port}/", self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
            self.proc = None

    def cleanup(self) -> None:
        # Removed when the benchmark ends, not now: on a file system without a journal (this
        # machine's ext4) creating a file skips every inode freed in the last minutes, so
        # deleting one case's tens of thousands of Maildir files would slow the next case's
        # Maildir writes — a cost no steady server pays.
        _leftovers.append(self.tmp)


class Uvicorn(Case):
    def __init__(self, name: str, module: str, database_url: str | None = None) -> None:
        super().__init__(name)
        self.module = module
        if database_url:
            self.env["BENCH_DATABASE_URL"] = database_url

    def command(self) -> list[str]:
        return [
            str(BIN / "uvicorn"), "--app-dir", str(BENCH / "baselines"), self.module,
            "--port", str(self.port), "--no-access-log", "--log-level", "warning",
            "--loop", "uvloop", "--http", "httptools",
        ]


class Avara(Case):
    def __init__(self, name: str, database_url: str | None, smtp_url: str | None) -> None:
        super().__init__(name)
        self.env.update(
            AVARA_VIEWER_DATA_DIR=str(self.tmp / "data"),
            AVARA_VIEWER_LOG_FORMAT="text",
            # As for the baselines (uvicorn --no-access-log): no line per request.
            AVARA_VIEWER_LOG_REQUESTS="false",
            AVARA_VIEWER_RATE_LIMIT_PER_MINUTE="100000000",
        )
        self.env.pop("AVARA_VIEWER_SMTP_URL", None)
        self.env.pop("AVARA_VIEWER_DATABASE_URL", None)
        if database_url:
            self.env["AVARA_VIEWER_DATABASE_URL"] = database_url
        if smtp_url:
            self.env["AVARA_VIEWER_SMTP_URL"] = smtp_url
        self.extra: list[str] = []

    def cli(self, *args: str) -> str:
        out = subprocess.run(
            [str(BIN / "avara-viewer"), *args],
            env=self.env, capture_output=True, text=True, check=True,
        )
        return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""

    def prepare(self) -> None:
        if self.key == "none":
            self.cli("migrate")
            clinic = self.cli("clinics", "create", "--name", "Bench Clinic")
            self.key = self.cli("api-keys", "create", "--clinic", clinic, "--description", "bench")

    def command(self) -> list[str]:
        return [str(BIN / "avara-viewer"), "serve", "--port", str(self.port), *self.extra]

    def email_latencies(self) -> list[float]:
        """Seconds from the invite's commit to the SMTP server's acceptance, per email."""
        rows = self.sql("SELECT created_at, sent_at FROM email_outbox WHERE status = 'sent'")
        out = []
        for created, sent in rows:
            if isinstance(created, str):
                created, sent = datetime_parse(created), datetime_parse(sent)
            out.append((sent - created).total_seconds())
        return out

    def outbox_pending(self) -> int:
        return int(self.sql("SELECT count(*) FROM email_outbox WHERE status = 'pending'")[0][0])

    def sql(self, query: str) -> list[tuple]:
        url = self.env.get("AVARA_VIEWER_DATABASE_URL")
        if not url:
            import sqlite3

            with sqlite3.connect(self.tmp / "data" / "avara-viewer.db") as conn:
                return list(conn.execute(query))
        import asyncpg

        async def run() -> list[tuple]:
            conn = await asyncpg.connect(url.replace("+asyncpg", ""))
            try:
                return [tuple(r) for r in await conn.fetch(query)]
            finally:
                await conn.close()

        return asyncio.run(run())


def datetime_parse(value: str):  # type: ignore[no-untyped-def]
    from datetime import datetime

    return datetime.fromisoformat(value)


class Sink:
    def __init__(self) -> None:
        self.port = free_port()
        self.out = Path(tempfile.mktemp(prefix="sink-"))
        self.proc = subprocess.Popen(
            ["taskset", "-c", "1", sys.executable, str(BENCH / "sink.py"),
             str(self.port), str(self.out)]
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return
            except OSError:
                time.sleep(0.05)

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.port}"

    def stop(self) -> tuple[int, float, float]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(10)
        count, first, last = self.out.read_text().split()
        return int(count), float(first), float(last)


def measure(case: Case, connections: list[int], seconds: int, repeats: int) -> list[Result]:
    results = []
    case.start()
    try:
        assert case.proc is not None
        pid = case.proc.pid
        run_wrk(case.port, 8, 2, case.key)  # warm-up
        for c in connections:
            runs = []
            cpu = served = 0.0
            for _ in range(repeats):
                before, started = tree_cpu_seconds(pid), time.monotonic()
                run = run_wrk(case.port, c, seconds, case.key)
                cpu += tree_cpu_seconds(pid) - before
                served += run[0] * (time.monotonic() - started)
                runs.append(run)
            rps = statistics.median(r[0] for r in runs)
            best = min(runs, key=lambda r: abs(r[0] - rps))
            results.append(Result(
                case.name, c, rps, best[1], best[2],
                sum(r[3] for r in runs), sum(r[4] for r in runs),
                cpu / served * 1e6 if served else float("nan"), tree_rss_mib(pid),
            ))
            print(f"{case.name:>22} c={c:<3} {rps:8.0f} req/s  p50 {best[1]:7.1f} ms  "
                  f"p99 {best[2]:7.1f} ms  non2xx {best[4]}  "
                  f"CPU {results[-1].cpu_us:6.0f} us/req  RSS {results[-1].rss_mib:5.0f} MiB",
                  flush=True)
    finally:
        case.stop()
    return results


def drain(database_url: str | None, messages: int, smtp: bool = True) -> dict[str, float]:
    """Queue `messages` invitations with delivery off, then time `avara-viewer worker`
    delivering them to an SMTP sink (or, smtp=False, into the Maildir): from the first to the
    last message the sink accepted (file written), so the worker's start-up is left out."""
    sink = Sink() if smtp else None
    case = Avara("drain" if smtp else "drain-maildir", database_url, sink.url if sink else None)
    case.extra = ["--no-email"]
    case.start()
    try:
        asyncio.run(_invite_many(case.port, case.key, messages))
    finally:
        case.stop()
    worker = subprocess.Popen([str(BIN / "avara-viewer"), "worker"], env=case.env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    started = time.monotonic()
    while case.outbox_pending() > 0 and time.monotonic() - started < 300:
        time.sleep(0.05)
    elapsed = time.monotonic() - started
    worker.send_signal(signal.SIGTERM)
    worker.wait(20)
    if sink is not None:
        count, first, last = sink.stop()
    else:
        new = case.tmp / "data" / "maildir" / "new"
        stamps = sorted(f.stat().st_mtime for f in new.iterdir())
        count, first, last = len(stamps), stamps[0] if stamps else 0, stamps[-1] if stamps else 0
    case.cleanup()
    return {"messages": count, "seconds": elapsed,
            "per_second": count / (last - first) if last > first else 0}


async def _invite_many(port: int, key: str, n: int) -> None:
    seed = {"canManageStudies": True, "clinicRole": "Radiologist", "firstName": "Sarah",
            "hasDashboardAccess": True, "lastName": "Johnson", "level": "member"}
    sem = asyncio.Semaphore(32)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}",
                                 headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        async def one(i: int) -> None:
            async with sem:
                r = await client.post(
                    "/v1/viewer/users", json=dict(seed, email=f"drain{i}@hospital.org")
                )
                r.raise_for_status()
        await asyncio.gather(*(one(i) for i in range(n)))


def fixed_rate(database_url: str | None, rate: int, seconds: int) -> dict[str, float]:
    """Email latency at a steady rate the server can sustain: invites sent open-loop at
    `rate` per second for `seconds`, then commit -> SMTP acceptance per email."""
    sink = Sink()
    case = Avara("fixed-rate", database_url, sink.url)
    case.start()
    statuses: list[int] = []

    async def run() -> None:
        seed = {"canManageStudies": True, "clinicRole": "Radiologist", "firstName": "Sarah",
                "hasDashboardAccess": True, "lastName": "Johnson", "level": "member"}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{case.port}",
                                     headers={"Authorization": f"Bearer {case.key}"},
                                     limits=httpx.Limits(max_connections=64), timeout=60) as client:
            # Requests beyond 64 in flight wait here rather than in httpx's pool, whose
            # bookkeeping grows with the square of the requests queued in it.
            in_flight = asyncio.Semaphore(64)

            async def one(i: int) -> None:
                async with in_flight:
                    r = await client.post(
                        "/v1/viewer/users", json=dict(seed, email=f"rate{i}@hospital.org")
                    )
                statuses.append(r.status_code)

            tasks = []
            start = time.monotonic()
            for i in range(rate * seconds):
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
                tasks.append(asyncio.create_task(one(i)))
            await asyncio.gather(*tasks)

    try:
        asyncio.run(run())
        deadline = time.monotonic() + 60
        while case.outbox_pending() and time.monotonic() < deadline:
            time.sleep(0.2)
        lat = case.email_latencies()
    finally:
        case.stop()
        sink.stop()
        case.cleanup()
    return {"rate": rate, "emails": len(lat), "p50_s": percentile(lat, 50),
            "p99_s": percentile(lat, 99), "non201": sum(1 for s in statuses if s != 201)}


def client_overhead(calls: int) -> str:
    """bench/client_overhead.py against a fresh server: the avara client beside raw httpx."""
    case = Avara("client", None, None)
    case.start()
    out = []
    try:
        env = dict(
            os.environ, AVARA_BASE_URL=f"http://127.0.0.1:{case.port}", AVARA_API_KEY=case.key
        )
        for call in ("retrieve", "invite"):
            result = subprocess.run(
                [sys.executable, str(BENCH / "client_overhead.py"),
                 "--calls", str(calls), "--call", call],
                env=env, capture_output=True, text=True, check=True,
            )
            out.append(result.stdout.strip())
    finally:
        case.stop()
        case.cleanup()
    return "\n\n".join(out)


def bare_smtp(messages: int) -> dict[str, float]:
    """A bare aiosmtplib loop: pre-built messages over one connection, and over four."""
    import aiosmtplib

    sys.path.insert(0, str(ROOT / "server" / "src"))
    from avara_viewer.email.message import build_message

    data = build_message(mail_from="bench@example.org", to="to@example.org", subject="Bench",
                         text="x" * 2000, html="<p>" + "x" * 4000 + "</p>", message_id="b@bench")

    async def loop(port: int, n: int) -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port)
        await smtp.connect()
        for _ in range(n):
            await smtp.sendmail("bench@example.org", ["to@example.org"], data)
        await smtp.quit()

    async def main(port: int, connections: int) -> None:
        await asyncio.gather(*(loop(port, messages // connections) for _ in range(connections)))

    out = {}
    for connections in (1, 4):
        sink = Sink()
        started = time.monotonic()
        asyncio.run(main(sink.port, connections))
        elapsed = time.monotonic() - started
        count, _, _ = sink.stop()
        out[f"bare_{connections}"] = count / elapsed
    return out


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, round(p / 100 * (len(values) - 1)))]


def chart(results: list[Result], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    if len({r.connections for r in results}) < 2:
        # One connection count (a run without the sweep): bars per case instead of lines.
        rows = sorted(results, key=lambda r: r.rps)
        names = [r.case for r in rows]
        ax1.barh(names, [r.rps for r in rows])
        ax2.barh(names, [r.p99_ms for r in rows])
        ax1.set(xlabel="invites/s", title=f"Throughput, {rows[0].connections} connections",
                xscale="log")
        ax2.set(xlabel="p99 latency (ms)", title="p99 latency", xscale="log")
        ax2.set_yticklabels([])
        for ax in (ax1, ax2):
            ax.grid(True, axis="x", alpha=0.3)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        return
    for case in sorted({r.case for r in results}):
        rows = sorted((r for r in results if r.case == case), key=lambda r: r.connections)
        if len(rows) < 2:
            continue
        xs = [r.connections for r in rows]
        ax1.plot(xs, [r.rps for r in rows], marker="o", label=case)
        ax2.plot(xs, [r.p99_ms for r in rows], marker="o", label=case)
    ax1.set(xlabel="connections", ylabel="invites/s", title="Throughput", xscale="log")
    ax2.set(xlabel="connections", ylabel="p99 latency (ms)", title="p99 latency",
            xscale="log", yscale="log")
    for ax in (ax1, ax2):
        ax.grid(True, alpha=0.3)
        ax.set_xticks(sorted({r.connections for r in results}))
        ax.get_xaxis().set_major_formatter(matplotlib.ticker.ScalarFormatter())
    ax1.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def versions() -> str:
    import fastapi
    import sqlalchemy
    import uvicorn

    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    pgv = subprocess.run(["psql", "--version"], capture_output=True, text=True).stdout.strip()
    import sqlite3

    return (f"Python {platform.python_version()}, FastAPI {fastapi.__version__}, SQLAlchemy "
            f"{sqlalchemy.__version__}, uvicorn {uvicorn.__version__}, "
            f"SQLite {sqlite3.sqlite_version}, "
            f"{pgv}, {wrk.strip()}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sweep", default="1,8,32,64", help="connection counts for the chart")
    parser.add_argument("--quick", action="store_true", help="5 s runs, one repeat, no sweep")
    parser.add_argument("--skip-list", action="store_true",
                        help="do not run bench/list_pages.py (loads a million users per database)")
    parser.add_argument("--email-rate", type=int, default=0,
                        help="invites/s for the steady-rate email latency measure "
                        "(default: half the saturating rate of the server as shipped)")
    parser.add_argument("--skip-webhooks", action="store_true", help="do not run bench/webhooks.py")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.repeats, args.sweep = 5, 1, "32"
    sweep = sorted({int(c) for c in args.sweep.split(",")} | {32})
    RESULTS.mkdir(exist_ok=True)
    results: list[Result] = []
    pg_dbs: list[str] = []

    def pg_url() -> str:
        name = fresh_pg_database()
        pg_dbs.append(name)
        base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        return base + "/" + name

    sqlite_naive_dir = Path(tempfile.mkdtemp(prefix="naive-"))
    cases: list[tuple[Case, list[int]]] = [
        (Uvicorn("bare ASGI", "bare_asgi:app"), [32]),
        (Uvicorn("FastAPI, no database", "nodb_app:app"), sweep),
        (Uvicorn("naive ORM, SQLite FULL", "naive_app:app",
                 f"sqlite+aiosqlite:///{sqlite_naive_dir / 'naive.db'}"), sweep),
        (Uvicorn("naive ORM, PostgreSQL", "naive_app:app", pg_url()), [32]),
    ]
    # As shipped (issue 16): `serve` with no SMTP URL delivers each email, from the same
    # process, into the Maildir under its data directory.
    avara_sqlite = Avara("Avara Viewer, SQLite FULL", None, None)
    avara_pg = Avara("Avara Viewer, PostgreSQL", pg_url(), None)
    # The API alone: email is delivered by `avara-viewer worker` elsewhere (docs/deploy.md).
    avara_api = Avara("Avara Viewer --no-email, SQLite FULL", None, None)
    avara_api.extra = ["--no-email"]
    cases += [(avara_sqlite, sweep), (avara_api, [32]), (avara_pg, [32])]
    email: dict[str, dict[str, float]] = {}
    try:
        for case, conns in cases:
            results += measure(case, conns, args.seconds, args.repeats)
            if isinstance(case, Avara) and "--no-email" not in case.extra:
                case.start()  # deliver what is still queued, then read the latencies
                deadline = time.monotonic() + 120
                while case.outbox_pending() and time.monotonic() < deadline:
                    time.sleep(0.5)
                case.stop()
                lat = case.email_latencies()
                email[case.name] = {"emails": len(lat), "p50_s": percentile(lat, 50),
                                    "p99_s": percentile(lat, 99)}
                print(f"{case.name}: email commit->accepted p50 {email[case.name]['p50_s']:.3f}s "
                      f"p99 {email[case.name]['p99_s']:.3f}s over {len(lat)} emails", flush=True)
            case.cleanup()
        n = 3000 if not args.quick else 1000
        drains = {"SQLite": drain(None, n), "PostgreSQL": drain(pg_url(), n)}
        # The same backlog drained into the Maildir (no SMTP URL), on SQLite.
        drains["Maildir"] = drain(None, n, smtp=False)
        # Half the invite rate that saturated the server as shipped on each database
        # (issue 16), unless given.
        def half(case: str) -> int:
            return args.email_rate or max(1, int(max(r.rps for r in results if r.case == case) / 2))

        steady = {"SQLite": fixed_rate(None, half("Avara Viewer, SQLite FULL"), args.seconds),
                  "PostgreSQL": fixed_rate(pg_url(), half("Avara Viewer, PostgreSQL"),
                                           args.seconds)}
        print("steady", steady, flush=True)
        bare = bare_smtp(n)
        print("drain", drains, "bare", bare, flush=True)
    finally:
        for name in pg_dbs:
            try:
                pg(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            except Exception as exc:
                print("could not drop", name, exc)
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    (RESULTS / "throughput.json").write_text(json.dumps(
        {"results": [asdict(r) for r in results], "email": email, "drain": drains,
         "bare_smtp": bare, "steady": steady}, indent=2))
    chart(results, ROOT / "docs" / "throughput.png")
    write_report(results, email, drains, bare, steady, stamp, args)
    overhead = client_overhead(200 if args.quick else 1000)
    update_section(
        "client-overhead",
        f"## Client overhead (run {stamp}, `bench/client_overhead.py`)\n\n"
        "The same calls through the `avara` client and through a bare `httpx.Client` "
        "(one kept-alive connection each, alternating, so server drift affects both alike), "
        "first against a fresh "
        "server on SQLite, then against an in-process transport (the client's own cost).\n\n"
        f"```\n{overhead}\n```",
    )
    print(overhead)
    if not args.skip_webhooks:
        # Webhook latency at half the invite rate that saturated Avara Viewer above, on the
        # slower of the two databases (the same rate is sent to both; above PostgreSQL's
        # saturating rate the backlog only grows).
        saturating = min(
            max(r.rps for r in results if r.case == name)
            for name in ("Avara Viewer, SQLite FULL", "Avara Viewer, PostgreSQL")
        )
        hooks = subprocess.run(
            [sys.executable, str(BENCH / "webhooks.py"), "--seconds", str(args.seconds),
             "--rate", str(max(1, int(saturating / 2)))],
            capture_output=True, text=True, check=True,
        ).stdout
        print(hooks)
        update_section("webhooks", hooks)
    if not args.skip_list and not args.quick:
        listing = subprocess.run(
            [sys.executable, str(BENCH / "list_pages.py")],
            capture_output=True, text=True, check=True,
        ).stdout
        print(listing)
        update_section("list-pagination", list_section(listing, stamp))


def list_section(listing: str, stamp: str) -> str:
    """bench/list_pages.py's output as the List pagination section."""
    table, _, plans = listing.partition("Plan of the page query:")
    return (
        f"## List pagination (run {stamp}, `bench/list_pages.py`)\n\n"
        "One clinic with 1,000,000 users (bulk loaded straight into the table, then ANALYZE), "
        "one `avara-viewer serve` process, sequential requests with the default limit of 20 "
        "over loopback. Page 10,000 (rows 199,981–200,000) is fetched with the cursor of page "
        "9,999's last row, signed as the server signs it. The cursor carries (created_at, id) "
        "of the last row, so every page is a seek on `ix_users_clinic_created (clinic_id, "
        "created_at, id)` read backwards and stopped after 21 rows; an OFFSET design would "
        "read 200,000 index entries for page 10,000.\n\n"
        f"{table.strip().replace(chr(10), chr(10) * 2, 1)}\n\n"
        f"Plan of the page query:\n\n```\n{plans.strip()}\n```"
    )


def write_report(  # type: ignore[no-untyped-def]
    results: list[Result], email: dict, drains: dict, bare: dict, steady: dict, stamp: str, args
) -> None:
    at32 = {r.case: r for r in results if r.connections == 32}
    naive_sqlite = at32["naive ORM, SQLite FULL"].rps
    naive_pg = at32["naive ORM, PostgreSQL"].rps
    nodb = at32["FastAPI, no database"].rps
    lines = [
        f"## Invite throughput (run {stamp})",
        "",
        f"One server process pinned to CPU 0, wrk (1 thread, 32 connections, {args.seconds} s, "
        f"median of {args.repeats}) pinned to CPU 1, loopback; "
        "every request invites a new address. "
        "Ratios are against the baseline named in the column. Access logs are off for every case; "
        "Avara Viewer runs as shipped otherwise (API-key auth, rate limit, idempotency, audit "
        "chain, outbox, each email delivered by the same process into the Maildir under its "
        "data directory, as `make run` does when no SMTP server is configured).",
        "",
        "CPU µs/req is the server's whole process tree's CPU time during the runs divided by "
        "the requests it answered: unlike req/s it holds up when other work shares the "
        "machine. RSS is the process tree's resident memory after the runs.",
        "",
        "| case | req/s | p50 ms | p99 ms | non-2xx | CPU µs/req | RSS MiB "
        "| × naive (same DB) | × FastAPI no DB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in at32.values():
        naive = naive_pg if "PostgreSQL" in r.case else naive_sqlite
        lines.append(
            f"| {r.case} | {r.rps:,.0f} | {r.p50_ms:.1f} | {r.p99_ms:.1f} | {r.non2xx} | "
            f"{r.cpu_us:,.0f} | {r.rss_mib:,.0f} | {r.rps / naive:.2f} | {r.rps / nodb:.2f} |"
        )
    lines += [
        "",
        "![throughput and p99 latency against connections](throughput.png)",
        "",
        "### Email",
        "",
        "| measure | SQLite | PostgreSQL |",
        "|---|---:|---:|",
    ]
    es, ep = email.get("Avara Viewer, SQLite FULL", {}), email.get("Avara Viewer, PostgreSQL", {})
    ss, sp = steady["SQLite"], steady["PostgreSQL"]
    nan = float("nan")
    lines += [
        f"| commit → accepted by an SMTP sink at a steady {ss['rate']} / {sp['rate']} invites/s "
        "(half the saturating rate), p50 (s) "
        f"| {ss['p50_s']:.3f} | {sp['p50_s']:.3f} |",
        f"| same, p99 (s) | {ss['p99_s']:.3f} | {sp['p99_s']:.3f} |",
        "| commit → written to the Maildir during the saturating wrk runs above, p50 (s) "
        f"| {es.get('p50_s', nan):.3f} | {ep.get('p50_s', nan):.3f} |",
        f"| same, p99 (s) | {es.get('p99_s', nan):.3f} | {ep.get('p99_s', nan):.3f} |",
        f"| emails measured (steady / saturating) | {ss['emails']:,} / {es.get('emails', 0):,} "
        f"| {sp['emails']:,} / {ep.get('emails', 0):,} |",
        "| `avara-viewer worker` draining a backlog to the SMTP sink (msgs/s) "
        f"| {drains['SQLite']['per_second']:.0f} | {drains['PostgreSQL']['per_second']:.0f} |",
        "| the same backlog drained into the Maildir (msgs/s) "
        f"| {drains['Maildir']['per_second']:.0f} | — |",
    ]
    lines += [
        "",
        f"Bare aiosmtplib loop, pre-built messages, same sink: {bare['bare_1']:.0f} msgs/s on one "
        f"connection, {bare['bare_4']:.0f} msgs/s on four. Drain ratio (worker / best bare): "
        f"SQLite {drains['SQLite']['per_second'] / max(bare.values()):.2f}, PostgreSQL "
        f"{drains['PostgreSQL']['per_second'] / max(bare.values()):.2f}.",
        "",
        f"Versions: {versions()}. Machine: {platform.machine()}, {os.cpu_count()} CPUs, "
        f"{platform.platform()}.",
    ]
    update_section("throughput", "\n".join(lines))
    print("\n".join(lines))
    targets = targets_table(at32, drains, bare, steady, stamp, args)
    update_section("targets", targets)
    print(targets)


def targets_table(  # type: ignore[no-untyped-def]
    at32: dict[str, Result], drains: dict, bare: dict, steady: dict, stamp: str, args
) -> str:
    """Issue 16's targets, each against this run's result."""
    naive_sqlite = at32["naive ORM, SQLite FULL"].rps
    naive_pg = at32["naive ORM, PostgreSQL"].rps
    nodb = at32["FastAPI, no database"]
    shipped = at32["Avara Viewer, SQLite FULL"]
    api = at32["Avara Viewer --no-email, SQLite FULL"]
    pgs = at32["Avara Viewer, PostgreSQL"]
    ss, sp = steady["SQLite"], steady["PostgreSQL"]
    best_bare = bare["bare_4"]  # the worker's default: smtp_max_connections = 4

    def met(ok: bool) -> str:
        return "yes" if ok else "**no**"

    rows = [
        (
            "SQLite as shipped ≥ 8× the naive ORM build",
            f"{shipped.rps:,.0f} vs {naive_sqlite:,.0f} req/s = {shipped.rps / naive_sqlite:.2f}×",
            met(shipped.rps >= 8 * naive_sqlite),
        ),
        (
            "SQLite as shipped: p99 ≤ 50 ms at 32 connections, every 201 durable",
            f"p99 {shipped.p99_ms:.1f} ms, {shipped.non2xx} non-2xx; 201 sent after the "
            "group's commit (synchronous=FULL)",
            met(shipped.p99_ms <= 50 and shipped.non2xx == 0),
        ),
        (
            "SQLite, API alone (`serve --no-email`) ≥ 1.2× the no-database FastAPI app",
            f"{api.rps:,.0f} vs {nodb.rps:,.0f} req/s = {api.rps / nodb.rps:.2f}×; "
            f"CPU {api.cpu_us:,.0f} vs {nodb.cpu_us:,.0f} µs/request",
            met(api.rps >= 1.2 * nodb.rps),
        ),
        (
            "PostgreSQL as shipped ≥ 5× the naive ORM build",
            f"{pgs.rps:,.0f} vs {naive_pg:,.0f} req/s = {pgs.rps / naive_pg:.2f}×; "
            f"CPU {pgs.cpu_us:,.0f} µs/request",
            met(pgs.rps >= 5 * naive_pg),
        ),
        (
            "Email: 201 → accepted by SMTP p99 ≤ 1 s at half the saturating invite rate",
            f"SQLite at {ss['rate']}/s: p99 {ss['p99_s']:.3f} s ({ss['non201']} non-201); "
            f"PostgreSQL at {sp['rate']}/s: p99 {sp['p99_s']:.3f} s ({sp['non201']} non-201)",
            met(ss["p99_s"] <= 1 and sp["p99_s"] <= 1),
        ),
        (
            "`worker` drains a backlog ≥ 0.8× a bare aiosmtplib loop, same connections (4)",
            f"SQLite {drains['SQLite']['per_second']:,.0f}, PostgreSQL "
            f"{drains['PostgreSQL']['per_second']:,.0f} vs bare {best_bare:,.0f} msgs/s = "
            f"{drains['SQLite']['per_second'] / best_bare:.2f}× / "
            f"{drains['PostgreSQL']['per_second'] / best_bare:.2f}×",
            met(min(drains[db]["per_second"] for db in ("SQLite", "PostgreSQL"))
                >= 0.8 * best_bare),
        ),
        (
            "Email: the Maildir path at least as fast as SMTP",
            f"`worker` drain on SQLite: Maildir {drains['Maildir']['per_second']:,.0f} vs SMTP "
            f"sink {drains['SQLite']['per_second']:,.0f} msgs/s = "
            f"{drains['Maildir']['per_second'] / drains['SQLite']['per_second']:.2f}×",
            met(drains["Maildir"]["per_second"] >= drains["SQLite"]["per_second"]),
        ),
        (
            "Memory: RSS of `serve` under the saturating load; ≤ 10 % growth minute 2 → 10",
            f"SQLite {shipped.rss_mib:,.0f} MiB, PostgreSQL {pgs.rss_mib:,.0f} MiB after the "
            "runs above; the ten-minute growth is measured apart by `bench/memory.py` "
            "(issue-16 notes below)",
            "—",
        ),
    ]
    lines = [
        f"## Targets of issue 16 (run {stamp}, {args.seconds} s runs, median of "
        f"{args.repeats})",
        "",
        "Ratios compare cases of this one run. The machine is shared with other engineers' "
        "test runs unless the run was made on a quiet machine: ratios and req/s move with the "
        "load (±30 % and more); CPU µs per request moves much less.",
        "",
        "| target | result | met |",
        "|---|---|---|",
        *[f"| {t} | {r} | {m} |" for t, r, m in rows],
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
