"""Contract fuzzing (bounded): schemathesis against the served /openapi.json, every operation,
valid and invalid data. `make fuzz` runs the long version on both databases."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
    ]
)


def test_every_operation_survives_fuzzing_and_conforms_to_its_schema(
    fresh_server, backend: str, tmp_path: Path
) -> None:
    if backend != "sqlite":
        pytest.skip("the bounded run uses SQLite; `make fuzz` covers PostgreSQL")
    server = fresh_server(None)
    server.start()
    clinic = server.create_clinic("Fuzz Clinic")
    report = tmp_path / "fuzz.json"
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
            "25",
            "--workers",
            "1",
            "--no-shrink",
            "--report",
            "json",
            "--report-json-path",
            str(report),
        ],
        cwd=tmp_path,  # schemathesis keeps a cache directory in its working directory
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "11 selected" in result.stdout or "Selected: 11" in result.stdout
    assert "passed" in result.stdout
    server_log = server.log_path.read_text()
    errors = [json.loads(line) for line in server_log.splitlines() if '"level": "ERROR"' in line]
    assert errors == []
