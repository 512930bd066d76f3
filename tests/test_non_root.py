"""The path most people take: an ordinary user with the project in their 0700 home, end to end.

When the suite runs as root (as CI does), this module creates an unprivileged
user of its own, gives it a copy of the project and a venv, runs `invoke up`,
a rerun, `invoke env` and `invoke down` as that user, then deletes the user.
Run by anyone else, it skips: that run is itself the non-root run.

The venv is made by a Python the user can run (the system's, of the same
version as the suite's) and borrows the suite's installed packages through a
.pth file, read in place when the user can reach them, else from a copy:
installing them again from PyPI would cost minutes and prove nothing more
(the Python-version smoke test, test_pythons.py, installs from scratch).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import psutil
import pytest

from bootstrap.services.postgres_user import closed_parent
from bootstrap.processes import free_port
from tests.conftest import skip_missing
from tests.helpers import ENV_PREFIXES, PROJECT_ROOT, exported_variables

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="the suite runs as an ordinary user: it is itself the non-root run"),
]

PROJECT_PARTS = ("tasks.py", "invoke.yaml", "requirements.txt", "pyproject.toml", "bootstrap", "seeds", "sql")


@dataclass
class Newcomer:
    """An unprivileged user with the project in its own home, and how to run `invoke` as that user."""

    name: str
    uid: int
    gid: int
    home: Path
    project: Path
    env: dict[str, str]

    def __call__(self, *args: str, check: bool = True, **extra_env: str) -> subprocess.CompletedProcess:
        result = subprocess.run([str(self.project / ".venv" / "bin" / "python"), "-m", "invoke", *args],
                                cwd=self.project, env={**self.env, **extra_env}, user=self.uid, group=self.gid,
                                extra_groups=[], capture_output=True, text=True, timeout=300)
        if check and result.returncode != 0:
            raise AssertionError(f"invoke {' '.join(args)} as {self.name} exited {result.returncode}\n"
                                 f"--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}")
        return result

    def exported(self) -> dict[str, str]:
        return exported_variables(self("env").stdout)

    def processes(self) -> list[psutil.Process]:
        return [p for p in psutil.process_iter(["uids"]) if p.info["uids"] and p.info["uids"].real == self.uid]


def _user_python() -> Path:
    """A Python of the suite's version that any user can run, or a skip saying there is none."""
    version = f"{sys.version_info.major}.{sys.version_info.minor}"
    for candidate in (Path(sys._base_executable).resolve(), Path(f"/usr/bin/python{version}"),
                      Path(f"/usr/local/bin/python{version}")):
        if candidate.exists() and closed_parent(candidate.parent) is None and os.stat(candidate).st_mode & 0o001:
            return candidate
    skip_missing(f"no Python {version} that an unprivileged user can run (the suite's is under a closed folder, "
                f"and there is no /usr/bin/python{version})")


def _packages_for(owner: Newcomer) -> Path:
    """The suite's site-packages where the user can read them: in place, or copied into its home."""
    site_packages = Path(sysconfig.get_paths()["purelib"])
    if closed_parent(site_packages) is None:
        return site_packages
    copy = owner.home / "borrowed-site-packages"
    subprocess.run(["cp", "-a", str(site_packages), str(copy)], check=True)
    subprocess.run(["chown", "-R", f"{owner.uid}:{owner.gid}", str(copy)], check=True)
    return copy


@pytest.fixture(scope="module")
def newcomer() -> Iterator[Newcomer]:
    import pwd

    python = _user_python()
    name = f"cruddur-nr-{uuid.uuid4().hex[:8]}"
    base = Path("/tmp") / name  # outside pytest's closed temp folders, like a real /home
    base.mkdir(mode=0o755)
    home = base / "home"
    subprocess.run(["useradd", "--create-home", "--home-dir", str(home), "--shell", "/bin/sh", name], check=True)
    try:
        entry = pwd.getpwnam(name)
        home.chmod(0o700)  # its own home, closed as on most machines
        project = home / "cruddur-bootstrap"
        project.mkdir()
        for part in PROJECT_PARTS:
            source = PROJECT_ROOT / part
            if source.is_dir():
                shutil.copytree(source, project / part, ignore=shutil.ignore_patterns("__pycache__"))
            else:
                shutil.copy2(source, project / part)
        env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES) and k not in ("HOME", "USER")}
        env.update(HOME=str(home), USER=name, LOGNAME=name, PATH="/usr/local/bin:/usr/bin:/bin", NO_COLOR="1",
                   COLUMNS="200", CRUDDUR_PG_PORT=str(free_port()), CRUDDUR_DDB_PORT=str(free_port()),
                   CRUDDUR_COGNITO_PORT=str(free_port()), CRUDDUR_BACKEND="embedded", CRUDDUR_DDB_ENGINE="moto")
        env.pop("XDG_RUNTIME_DIR", None)
        user = Newcomer(name, entry.pw_uid, entry.pw_gid, home, project, env)
        subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", str(home)], check=True)
        subprocess.run([str(python), "-m", "venv", "--without-pip", str(project / ".venv")], check=True,
                       user=user.uid, group=user.gid, extra_groups=[], env=env)
        [site_packages] = (project / ".venv").glob("lib/python3*/site-packages")
        (site_packages / "borrowed.pth").write_text(f"{_packages_for(user)}\n")
        yield user
    finally:
        leftovers = [p.pid for p in Newcomer(name, pwd.getpwnam(name).pw_uid, 0, home, home, {}).processes()]
        for pid in leftovers:  # only after a failed test: the passing ones prove `down` leaves nothing
            psutil.Process(pid).kill()
        subprocess.run(["userdel", "--remove", name], check=False, capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


def test_cold_up_rerun_env_and_down_as_an_ordinary_user(newcomer: Newcomer) -> None:
    import psycopg

    first = json.loads(newcomer("up", "--json").stdout)
    actions = {step["step"]: step["action"] for step in first["steps"]}
    assert actions["services"] == "started" and actions["db.seed"] in ("created", "updated"), actions
    postgres = [p for p in newcomer.processes() if p.name() == "postgres"]
    assert postgres, "Postgres does not run as the newcomer"

    second = json.loads(newcomer("up", "--json").stdout)
    assert all(step["action"] == "unchanged" for step in second["steps"] if step["step"] != "verify"), second["steps"]

    values = newcomer.exported()
    with psycopg.connect(values["CONNECTION_URL"]) as conn:
        handles = {row[0] for row in conn.execute("select handle from users")}
    assert "maren_kiln" in handles
    import boto3

    table = boto3.client("dynamodb", endpoint_url=values["AWS_ENDPOINT_URL"], region_name=values["AWS_DEFAULT_REGION"],
                         aws_access_key_id=values["AWS_ACCESS_KEY_ID"],
                         aws_secret_access_key=values["AWS_SECRET_ACCESS_KEY"])
    assert table.scan(TableName="cruddur-messages", Select="COUNT")["Count"] > 0
    assert (newcomer.project / ".cruddur" / "postgres" / "PG_VERSION").exists()  # its data stays in its project

    doctor = json.loads(newcomer("doctor", "--json").stdout)
    assert doctor["ok"], doctor

    newcomer("down")
    assert newcomer.processes() == [], [p.cmdline() for p in newcomer.processes()]
    assert newcomer("status", check=False).returncode == 1


def test_a_state_folder_the_user_cannot_write_is_a_named_error(newcomer: Newcomer) -> None:
    result = newcomer("up", check=False, CRUDDUR_STATE_DIR="/root/.cruddur-not-yours")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "creating the state folder /root/.cruddur-not-yours: Permission denied" in result.stderr
    assert "run `invoke doctor`" in result.stderr
    doctor = newcomer("doctor", check=False, CRUDDUR_STATE_DIR="/root/.cruddur-not-yours")
    assert doctor.returncode == 1 and "cannot be written by this user" in doctor.stdout


def test_down_meets_another_users_process_and_a_folder_it_cannot_delete_with_one_line_each(
        newcomer: Newcomer) -> None:
    """A pid file naming a process of root's (with moto's marker on its command line), and a folder of
    root's inside the state folder: the user can neither stop the one nor delete the other."""
    state = newcomer.project / ".cruddur-foreign"
    (state / "run").mkdir(parents=True)
    stranger = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)", "moto"])
    (state / "run" / "moto.pid").write_text(f"{stranger.pid}\n")
    subprocess.run(["chown", "-R", f"{newcomer.uid}:{newcomer.gid}", str(state)], check=True)
    (state / "roots").mkdir()  # root's, 0755: the user may read it, not delete what is inside
    (state / "roots" / "file").write_text("root's\n")
    try:
        stopped = newcomer("down", check=False, CRUDDUR_STATE_DIR=str(state))
        assert stopped.returncode == 1 and "Traceback" not in stopped.stderr, stopped.stderr
        [line] = [line for line in stopped.stderr.splitlines() if line.startswith("error: ")]
        assert line.startswith(f"error: permission denied on process {stranger.pid}") and "another user" in line
        assert stranger.poll() is None
    finally:
        stranger.kill()
        stranger.wait()
    purged = newcomer("down", "--purge", check=False, CRUDDUR_STATE_DIR=str(state))
    assert purged.returncode == 1 and "Traceback" not in purged.stderr, purged.stderr
    assert f"error: deleting {state} (--purge): Permission denied" in purged.stderr
    assert "hint: permission denied on" in purged.stderr
