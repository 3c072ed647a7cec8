"""The long contract-fuzzing run (`make fuzz`): schemathesis against the served /openapi.json
on each database, every operation, valid and invalid data, and the figures recorded.

    .venv/bin/python bench/reliability/fuzz.py [--max-examples 500] [--backend sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from common import Server, record, stamp
from reliability.fuzzing import CHECKS, run_schemathesis


def run_backend(backend: str, max_examples: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"fuzz-{backend}-"))
    server = Server(backend, work / "data", None)
    server.start()
    try:
        clinic = server.create_clinic("Fuzz Clinic")
        started = time.monotonic()
        result = run_schemathesis(server.base_url, clinic.key, max_examples, work)
        seconds = time.monotonic() - started
        (work / "schemathesis.txt").write_text(result.stdout + result.stderr)
        cases = 0
        for line in result.stdout.splitlines():
            if "generated" in line and "passed" in line:
                cases = int(line.replace(",", "").split()[0])
        errors = sum(1 for x in server.log_path.read_text().splitlines() if '"ERROR"' in x)
        summary = next(
            (x for x in reversed(result.stdout.splitlines()) if " in " in x and "=" in x), ""
        )
        return {
            "backend": backend,
            "max_examples": max_examples,
            "cases": cases,
            "seconds": round(seconds, 1),
            "exit": result.returncode,
            "server_error_log_lines": errors,
            "summary": summary.strip("= "),
            "held": result.returncode == 0 and errors == 0,
            "output": str(work / "schemathesis.txt"),
        }
    finally:
        server.destroy()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-examples", type=int, default=500)
    parser.add_argument("--backend", default="sqlite,postgresql")
    parser.add_argument("--no-record", action="store_true")
    parser.add_argument(
        "--results", help="record these saved JSON lines (this script's output) instead of running"
    )
    args = parser.parse_args()
    if args.results:
        lines = Path(args.results).read_text().splitlines()
        results = [json.loads(x) for x in lines if x.startswith("{")]
    else:
        results = [run_backend(b, args.max_examples) for b in args.backend.split(",")]
        for r in results:
            print(json.dumps(r))
    rows = [
        "| backend | examples per operation (max) | test cases | time | 5xx / non-conforming "
        "| ERROR log lines | held |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        rows.append(
            f"| {r['backend']} | {r['max_examples']} | {r['cases']} | {r['seconds']} s "
            f"| {'0' if r['exit'] == 0 else 'see ' + r['output']} | {r['server_error_log_lines']} "
            f"| {'yes' if r['held'] else 'NO'} |"
        )
    rows.append(
        f"\n_`make fuzz` (bench/reliability/fuzz.py --max-examples {args.max_examples}): 11 "
        f"operations, modes positive and negative, phases examples, coverage, fuzzing and "
        f"stateful, half the ids swapped for real users' and invitations' "
        f"(server/tests/reliability/fuzz_hooks.py); checks {CHECKS.replace(',', ', ')}; "
        f"{stamp()}._"
    )
    if not args.no_record:
        record("fuzz", "\n".join(rows))
    if not all(r["held"] for r in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
