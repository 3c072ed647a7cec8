"""Memory of `avara-viewer serve` (as shipped: email delivered by the same process, to an SMTP
sink) under a steady saturating load: the process tree's RSS sampled every 10 s while wrk
(c32) invites for `--minutes`; prints the RSS at minute 2 and at the end, and the growth.

    python bench/memory.py [--pg] [--minutes 10]
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import Avara, Sink, fresh_pg_database, pg, run_wrk, tree_rss_mib


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--pg", action="store_true", help="PostgreSQL instead of SQLite")
    parser.add_argument("--minutes", type=int, default=10)
    args = parser.parse_args()
    db_name = url = None
    if args.pg:
        db_name = fresh_pg_database()
        admin = os.environ.get("BENCH_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
        url = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+asyncpg://")
        url += "/" + db_name
    sink = Sink()
    case = Avara("memory", url, sink.url)
    case.start()
    samples: list[tuple[float, float]] = []
    done = threading.Event()
    try:
        assert case.proc is not None
        pid = case.proc.pid
        started = time.monotonic()

        def sample() -> None:
            while not done.wait(10):
                samples.append((time.monotonic() - started, tree_rss_mib(pid)))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        rps, p50, p99, errors, non2xx = run_wrk(case.port, 32, args.minutes * 60, case.key)
        done.set()
        sampler.join()
        at2 = min(samples, key=lambda s: abs(s[0] - 120))
        last = samples[-1]
        print(
            f"{'PostgreSQL' if args.pg else 'SQLite'}, serve as shipped, c32 for "
            f"{args.minutes} min: {rps:,.0f} req/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms, "
            f"socket errors {errors}, non2xx {non2xx}; "
            f"RSS {at2[1]:.0f} MiB at {at2[0] / 60:.1f} min, {last[1]:.0f} MiB at "
            f"{last[0] / 60:.1f} min: {100 * (last[1] / at2[1] - 1):+.1f} %; "
            f"peak {max(r for _, r in samples):.0f} MiB",
            flush=True,
        )
        print("samples (s, MiB):", " ".join(f"{t:.0f}:{r:.0f}" for t, r in samples))
    finally:
        done.set()
        case.stop()
        sink.stop()
        case.cleanup()
        if db_name:
            pg(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


if __name__ == "__main__":
    main()
