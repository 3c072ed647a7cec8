"""The long contract-fuzzing run (`make fuzz`): schemathesis against the served /openapi.json
on each database, every operation, valid and invalid data, and the figures recorded.

    .venv/bin/python bench/reliability/fuzz.py [--max-examples 500] [--backend sqlite,postgresql]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import Server, record, stamp

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)


def run_backend(backend: str, max_examples: int) -> dict:
    work = Path(tempfile.mkdtemp(prefix=f"fuzz-{backend}-"))
    server = Server(backend, work / "data", None)
    server.start()
    try:
        clinic = server.create_clinic("Fuzz Clinic")
        ndjson = work / "events.ndjson"
        started = time.monotonic()
        st = Path(sys.executable).parent / "st"
        result = subprocess.run(
            [
                str(st),
                "run",
                f"{server.base_url}/openapi.json",
                "--header",
                f"Authorization: Bearer {clinic.key}",
                "--checks",
                CHECKS,
                "--mode",
                "all",
                "--max-examples",
                str(max_examples),
                "--workers",
                "1",  # schemathesis' workers trip a CPython 3.11 AST bug here
                "--report",
                "ndjson",
                "--report-ndjson-path",
                str(ndjson),
            ],
            cwd=work,
            capture_output=True,
            text=True,
            timeout=3600,
        )
        seconds = time.monotonic() - started
        (work / "schemathesis.txt").write_text(result.stdout + result.stderr)
        cases = 0
        for line in result.stdout.splitlines():
            if "generated" in line and "passed" in line:
                words = line.replace(",", "").split()
                cases = int(words[0])
        log = server.log_path.read_text()
        errors = sum(1 for line in log.splitlines() if '"level": "ERROR"' in line)
        failures = "no failures" if result.returncode == 0 else "FAILURES"
        summary_line = next(
            (x for x in reversed(result.stdout.splitlines()) if " in " in x and "=" in x), ""
        )
        passed = result.returncode == 0
        return {
            "backend": backend,
            "max_examples": max_examples,
            "cases": cases,
            "seconds": round(seconds, 1),
            "exit": result.returncode,
            "server_error_log_lines": errors,
            "summary": summary_line.strip("= "),
            "held": passed and errors == 0,
            "output": str(work / "schemathesis.txt"),
            "result": failures,
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
        f"stateful; checks {CHECKS.replace(',', ', ')}; {stamp()}._"
    )
    if not args.no_record:
        record("fuzz", "\n".join(rows))
    if not all(r["held"] for r in results):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
