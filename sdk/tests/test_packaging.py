"""The distribution installs into a clean virtualenv and imports without the server's packages."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

SDK_DIR = Path(__file__).resolve().parents[1]

IMPORT_CHECK = """
import importlib.util, sys
import avara
from avara import Avara
assert 'fastapi' not in sys.modules and 'sqlalchemy' not in sys.modules
for name in ('fastapi', 'sqlalchemy', 'avara_viewer', 'uvicorn'):
    assert importlib.util.find_spec(name) is None, name + ' is installed'
import avara.pagination, avara.types.viewer
print(avara.__version__, Avara.__module__)
"""


@pytest.mark.slow
def test_installs_and_imports_in_a_clean_venv(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=60)
    python = venv / "bin" / "python"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    install = subprocess.run(
        [str(python), "-m", "pip", "install", "--quiet", str(SDK_DIR)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
        cwd=tmp_path,
    )
    assert install.returncode == 0, install.stderr
    shown = subprocess.run(
        [str(python), "-m", "pip", "show", "avara"], capture_output=True, text=True, env=env
    )
    requires_line = next(line for line in shown.stdout.splitlines() if line.startswith("Requires:"))
    requires = {name.strip().lower().replace("_", "-") for name in requires_line[9:].split(",")}
    assert requires == {"httpx", "pydantic", "typing-extensions"}
    run = subprocess.run(
        [str(python), "-c", IMPORT_CHECK], capture_output=True, text=True, env=env, cwd=tmp_path
    )
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["0.1.0", "avara._client"]
    installed = subprocess.run(
        [str(python), "-c", "import avara, pathlib; print(pathlib.Path(avara.__file__).parent)"],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    ).stdout.strip()
    assert installed.startswith(str(venv))
    assert (Path(installed) / "py.typed").exists()
