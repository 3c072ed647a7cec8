"""Webhooks: change -> delivered latency at a steady invite rate, and how fast one worker
drains a backlog of deliveries to a loopback receiver.

    .venv/bin/python bench/webhooks.py [--backends sqlite,postgresql] [--seconds 10]
        [--rate 100] [--backlog 2000]

For each database: `avara-viewer serve` (webhooks to plain http on loopback allowed) with an
endpoint subscribed to user.invited, and a receiver in a process of its own (asyncio, HTTP/1.1
keep-alive, answers 200 at once, notes the arrival time of each event).
- Latency: invites sent open-loop at `--rate` per second for `--seconds`; for each event, the
  time from its `createdAt` (stamped in the transaction of the invite) to its arrival.
- Throughput: `--backlog` invites queued with delivery off (`serve --no-email`), then one
  `avara-viewer worker` started; deliveries per second between the first and the last arrival
  (the worker delivers the invitation emails of the same invites meanwhile, to a Maildir).
Prints a markdown section (make bench puts it in docs/performance.md).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "server" / "tests"))

from support import CLI, Server, free_port, invite_body  # noqa: E402


async def _receive(port: int, out: Path) -> None:
    """The receiver process: note (arrival, createdAt) of every POST, answer 200."""
    arrivals: list[tuple[float, str]] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                body = await reader.readexactly(length)
                arrivals.append((time.time(), json.loads(body)["createdAt"]))
                writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port, backlog=1024)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    async with server:
        await stop.wait()
    out.write_text(json.dumps(arrivals))


class Receiver:
    def __init__(self, workdir: Path) -> None:
        self.port = free_port()
        self.out = workdir / f"arrivals-{self.port}.json"
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--receiver", str(self.port), str(self.out)]
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                httpx.post(f"http://127.0.0.1:{self.port}/", content=b'{"createdAt": "-"}')
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise RuntimeError("the receiver did not start")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks"

    def stop(self) -> list[tuple[float, str]]:
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(20)
        return [a for a in json.loads(self.out.read_text()) if a[1] != "-"]


def _subscribe(server: Server, key: str, url: str) -> None:
    response = httpx.post(
        server.base_url + "/v1/viewer/webhook-endpoints",
        json={"url": url, "eventTypes": ["user.invited"]},
        headers={"Authorization": f"Bearer {key}"},
    )
    response.raise_for_status()


async def _invite(port: int, key: str, count: int, rate: float | None) -> int:
    """Invites open-loop at `rate` per second (None: 32 at a time); returns the non-201s."""
    failed = 0
    limits = httpx.Limits(max_connections=64)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}",
        headers={"Authorization": f"Bearer {key}"},
        limits=limits,
        timeout=60,
    ) as client:
        gate = asyncio.Semaphore(32 if rate is None else 64)

        async def one() -> None:
            nonlocal failed
            async with gate:
                response = await client.post("/v1/viewer/users", json=invite_body())
            failed += response.status_code != 201

        tasks = []
        start = time.monotonic()
        for i in range(count):
            if rate is not None:
                delay = start + i / rate - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one()))
        await asyncio.gather(*tasks)
    return failed


def _wait_for_deliveries(server: Server) -> None:
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if server.sql("SELECT count(*) FROM webhook_deliveries WHERE status = 'pending'") == [(0,)]:
            return
        time.sleep(0.2)


def _percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def latency(backend: str, workdir: Path, rate: int, seconds: int) -> dict[str, float]:
    receiver = Receiver(workdir)
    server = Server(backend, workdir / f"latency-{backend}", None, webhook_allow_private="true")
    try:
        server.start()
        clinic = server.create_clinic("Bench Clinic")
        _subscribe(server, clinic.key, receiver.url)
        failed = asyncio.run(_invite(server.port, clinic.key, rate * seconds, rate))
        _wait_for_deliveries(server)
    finally:
        server.destroy()
        arrivals = receiver.stop()
    delays = [
        arrived - datetime.fromisoformat(created.replace("Z", "+00:00")).timestamp()
        for arrived, created in arrivals
    ]
    return {
        "rate": rate,
        "events": len(delays),
        "non201": failed,
        "p50_ms": _percentile(delays, 50) * 1000,
        "p99_ms": _percentile(delays, 99) * 1000,
        "max_ms": max(delays) * 1000 if delays else float("nan"),
    }


def drain(backend: str, workdir: Path, backlog: int) -> dict[str, float]:
    receiver = Receiver(workdir)
    server = Server(backend, workdir / f"drain-{backend}", None, webhook_allow_private="true")
    worker = None
    try:
        server.start("--no-email")
        clinic = server.create_clinic("Bench Clinic")
        _subscribe(server, clinic.key, receiver.url)
        asyncio.run(_invite(server.port, clinic.key, backlog, None))
        worker = subprocess.Popen(
            [CLI, "worker"],
            env=server.env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        _wait_for_deliveries(server)
        cpu = _cpu_seconds(worker.pid)
    finally:
        if worker is not None:
            worker.send_signal(signal.SIGTERM)
            worker.wait(20)
        server.destroy()
        arrivals = receiver.stop()
    times = sorted(a for a, _ in arrivals)
    span = times[-1] - times[0] if len(times) > 1 else float("nan")
    return {
        "deliveries": len(times),
        "per_second": (len(times) - 1) / span if span else 0.0,
        "cpu_ms_per_delivery": cpu * 1000 / max(len(times), 1),
    }


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def raw_httpx(workdir: Path, count: int, concurrency: int = 32) -> float:
    """The same receiver driven by a bare httpx loop, for scale: requests per second."""
    receiver = Receiver(workdir)
    body = json.dumps({"createdAt": "-", "pad": "x" * 600}).encode()

    async def run() -> float:
        gate = asyncio.Semaphore(concurrency)
        async with httpx.AsyncClient(timeout=15) as client:

            done = 0

            async def one() -> None:
                nonlocal done
                async with gate:
                    try:
                        await client.post(receiver.url, content=body)
                    except httpx.HTTPError:
                        return  # counted out: only answered requests make the rate
                    done += 1

            started = time.monotonic()
            await asyncio.gather(*(one() for _ in range(count)))
            return done / (time.monotonic() - started)

    try:
        return asyncio.run(run())
    finally:
        receiver.stop()


def section(
    results: dict[str, dict[str, dict[str, float]]], baseline: float, args: argparse.Namespace
) -> str:
    lines = [
        f"## Webhooks (`bench/webhooks.py --seconds {args.seconds} --rate {args.rate} "
        f"--backlog {args.backlog}`)",
        "",
        "| | " + " | ".join(results) + " |",
        "|---|" + "---|" * len(results),
    ]
    rows = [
        ("events delivered at the steady rate", lambda r: f"{r['latency']['events']:.0f}"),
        ("change -> delivered p50 (ms)", lambda r: f"{r['latency']['p50_ms']:.0f}"),
        ("change -> delivered p99 (ms)", lambda r: f"{r['latency']['p99_ms']:.0f}"),
        (
            "one worker draining a backlog (deliveries/s)",
            lambda r: f"{r['drain']['per_second']:.0f}",
        ),
        (
            "its CPU per delivery, the invite's email included (ms)",
            lambda r: f"{r['drain']['cpu_ms_per_delivery']:.1f}",
        ),
    ]
    for label, cell in rows:
        lines.append(f"| {label} | " + " | ".join(cell(r) for r in results.values()) + " |")
    lines.append(f"| bare httpx loop to the same receiver (requests/s) | {baseline:.0f} | |")
    lines.append("")
    lines.append(
        f"The steady rate is {args.rate} invites/s. `createdAt` is stamped in the invite's "
        "transaction, so the latency includes the commit, the delivery loop's wake-up and the "
        "POST; the drain worker also delivers the same invites' emails."
    )
    return "\n".join(lines)


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--receiver":
        asyncio.run(_receive(int(sys.argv[2]), Path(sys.argv[3])))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--backends", default="sqlite,postgresql")
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rate", type=int, default=100)
    parser.add_argument("--backlog", type=int, default=2000)
    args = parser.parse_args()

    results: dict[str, dict[str, dict[str, float]]] = {}
    with tempfile.TemporaryDirectory(prefix="avara-bench-webhooks-") as tmp:
        for backend in args.backends.split(","):
            name = {"sqlite": "SQLite", "postgresql": "PostgreSQL"}[backend]
            results[name] = {
                "latency": latency(backend, Path(tmp), args.rate, args.seconds),
                "drain": drain(backend, Path(tmp), args.backlog),
            }
            print(name, results[name], file=sys.stderr, flush=True)
        baseline = raw_httpx(Path(tmp), args.backlog)
    print(section(results, baseline, args))


if __name__ == "__main__":
    main()
