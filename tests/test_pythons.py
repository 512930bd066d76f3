"""Every supported Python: `up`, `verify` and `down` in a fresh venv made from each of 3.11, 3.12 and 3.13.

Each venv is made from that interpreter and installed from requirements.txt
exactly as the README says, once per Python and requirements.txt, and kept in
the user's cache folder (~/.cache/cruddur-bootstrap-tests), so that the
minute of installing from PyPI is paid once per machine, not per run. A
version that is not installed here skips, naming it (CI's machine has all
three through pyenv, and there a missing one fails: conftest's ``skip_missing``).
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from bootstrap.processes import free_port
from tests.conftest import skip_missing
from tests.helpers import ENV_PREFIXES, PROJECT_ROOT

pytestmark = pytest.mark.slow

SUPPORTED = ("3.11", "3.12", "3.13")
VENVS = Path("~/.cache/cruddur-bootstrap-tests").expanduser()


def _interpreter(version: str) -> Path | None:
    """An interpreter of ``version``: pyenv's (CI's machine), else one on PATH that really is that version."""
    pyenv = Path(os.environ.get("PYENV_ROOT", "~/.pyenv")).expanduser() / "versions"
    candidates = sorted(pyenv.glob(f"{version}.*/bin/python{version}"), reverse=True)
    on_path = shutil.which(f"python{version}")
    for candidate in [*candidates, *([Path(on_path)] if on_path else [])]:
        result = subprocess.run([str(candidate), "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                capture_output=True, text=True, check=False)
        if result.returncode == 0 and result.stdout.strip() == version:
            return candidate
    return None


def _venv(python: Path, version: str) -> Path:
    """A venv of ``python`` with requirements.txt installed; made once per Python and requirements."""
    requirements = (PROJECT_ROOT / "requirements.txt").read_bytes()
    key = hashlib.sha256(str(python).encode() + b"\0" + requirements).hexdigest()[:12]
    venv = VENVS / f"py{version}-{key}"
    VENVS.mkdir(parents=True, exist_ok=True)
    with open(VENVS / f"py{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another test session may be making the same venv
        if not (venv / ".complete").exists():
            shutil.rmtree(venv, ignore_errors=True)
            subprocess.run([str(python), "-m", "venv", str(venv)], check=True, capture_output=True)
            install = subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check",
                                      "-r", str(PROJECT_ROOT / "requirements.txt")], capture_output=True, text=True)
            assert install.returncode == 0, install.stdout + install.stderr
            (venv / ".complete").write_text("")
    return venv


@pytest.mark.parametrize("version", SUPPORTED)
def test_up_verify_down_in_a_fresh_venv(version: str, tmp_path: Path) -> None:
    python = _interpreter(version)
    if python is None:
        skip_missing(f"Python {version} is not installed here (CI's machine has it through pyenv)")
    venv = _venv(python, version)
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES)}
    env.update(CRUDDUR_STATE_DIR=str(tmp_path / ".cruddur"), CRUDDUR_CACHE_DIR=str(tmp_path.parent / "cruddur-cache"),
               CRUDDUR_SYSTEM_DIR=os.environ["CRUDDUR_SYSTEM_DIR"], CRUDDUR_BACKEND="embedded",
               CRUDDUR_DDB_ENGINE="moto", CRUDDUR_PG_PORT=str(free_port()),
               CRUDDUR_DDB_PORT=str(free_port()), NO_COLOR="1", COLUMNS="200")

    def invoke(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(venv / "bin" / "python"), "-m", "invoke", *args], cwd=PROJECT_ROOT, env=env,
                              capture_output=True, text=True, timeout=300)

    try:
        for task in ("up", "verify"):
            result = invoke(task)
            assert result.returncode == 0, f"{task} on Python {version}:\n{result.stdout}\n{result.stderr}"
    finally:
        down = invoke("down")
    assert down.returncode == 0 and "stopped: postgres, moto" in down.stderr, down.stderr
    assert invoke("status").returncode == 1
