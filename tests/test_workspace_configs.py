"""The Dev Container and Gitpod configurations, run as a new workspace runs them, in a fresh clone.

The commands are read from the files: ``postCreateCommand`` and
``postStartCommand`` of .devcontainer/devcontainer.json (run by ``sh -c``, as
the Dev Containers tools run a string), ``init`` and ``command`` of .gitpod.yml's
task (run by ``bash -c``, as Gitpod does), with the environment the files give.
No container runtime or Gitpod can run here, so their part is played by the
test: the image and features are not built (this machine's Python, Java and
npm stand in for them); the user is a new one with a HOME of the test's own,
made from /etc/skel as ``useradd`` makes one (never the real HOME); and, the
machine being shared, the services get free ports (``CRUDDUR_*_PORT``) and
DynamoDB Local is not downloaded again (the new user's cache folder links to
this machine's installation, which ``ddb.install-local`` then finds in place).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from bootstrap.config import resolve_settings
from bootstrap.services import dynamodb_local
from bootstrap.fixtures.parse import load_fixtures
from tests.helpers import PIP_CACHE, PROJECT_ROOT, exported_variables, invoke_environment, project_copy

pytestmark = pytest.mark.slow

# This machine's DynamoDB Local, looked up with the user's own cache folder before any test isolates it.
INSTALLED = dynamodb_local.install_dir(resolve_settings({}, {}, {}))
HANDLES = {user.handle for user in load_fixtures(PROJECT_ROOT / "seeds").users}


def _devcontainer() -> tuple[list[str], list[str], dict[str, str]]:
    # The file is JSON with comments (JSONC); ours are whole lines.
    text = "\n".join(line for line in (PROJECT_ROOT / ".devcontainer" / "devcontainer.json").read_text().splitlines()
                     if not line.lstrip().startswith("//"))
    config = json.loads(text)
    return (["sh", "-c", config["postCreateCommand"]], ["sh", "-c", config["postStartCommand"]],
            {**config.get("containerEnv", {}), **config.get("remoteEnv", {})})


def _gitpod() -> tuple[list[str], list[str], dict[str, str]]:
    (task,) = yaml.safe_load((PROJECT_ROOT / ".gitpod.yml").read_text())["tasks"]
    return ["bash", "-c", task["init"]], ["bash", "-c", task["command"]], {k: str(v) for k, v in task["env"].items()}


@pytest.mark.parametrize("config", [_devcontainer, _gitpod], ids=["devcontainer", "gitpod"])
def test_a_new_workspace_comes_up_verified_a_second_start_writes_nothing_and_a_new_shell_has_the_environment(
        config, tmp_path: Path) -> None:
    if not (INSTALLED / ".version").is_file():
        pytest.fail(f"DynamoDB Local is not installed in {INSTALLED}: run `invoke ddb.install-local` (.ci/run does)")
    install, start, file_env = config()
    workspace = tmp_path / "workspace"  # Gitpod's /workspace: the folder that holds the clone
    clone = project_copy(workspace / "cruddur-bootstrap")
    home = tmp_path / "home"
    shutil.copytree("/etc/skel", home, symlinks=True)
    file_env = {k: v.replace("/workspace/", f"{workspace}/") for k, v in file_env.items()}
    cache = Path(file_env.get("CRUDDUR_CACHE_DIR", home / ".cache" / "cruddur-bootstrap"))
    cache.mkdir(parents=True)
    (cache / "dynamodb-local").symlink_to(INSTALLED)

    ports = {k: v for k, v in invoke_environment(tmp_path).items() if k.endswith("_PORT")}
    base = {k: v for k, v in os.environ.items()
            if k in ("PATH", "LANG", "TERM", "JAVA_HOME", "PYENV_ROOT", "CRUDDUR_SYSTEM_DIR")}
    env = {**base, **ports, **file_env, "HOME": str(home), "USER": "newuser", "PIP_CACHE_DIR": str(PIP_CACHE),
           "NO_COLOR": "1", "COLUMNS": "200"}

    def run(command: list[str]) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(command, cwd=clone, env=env, capture_output=True, text=True, timeout=900)
        assert result.returncode == 0, f"{command}\n{result.stdout}\n{result.stderr}"
        return result

    try:
        run(install)
        first = run(start)
        assert re.search(r"^verify\s+\S+.*checks passed", first.stdout, re.M), first.stdout
        assert re.search(r"ready in \S+ \([1-9]\d* writes\)", first.stdout), first.stdout
        rc_before = (home / ".bashrc").read_text()

        second = run(start)  # the workspace stopped and started again: a warm `up`
        assert "(0 writes)" in second.stdout, second.stdout
        assert (home / ".bashrc").read_text() == rc_before
        assert rc_before.count("cruddur-bootstrap: the local environment") == 1

        # A new terminal: an interactive login shell of the new user, from another folder, typing nothing.
        shell = subprocess.run(
            ["bash", "-l", "-i", "-c",
             f"{clone}/.venv/bin/python -c \"import os, psycopg\n"
             "with psycopg.connect(os.environ['CONNECTION_URL']) as c:\n"
             "    print(*sorted(h for (h,) in c.execute('select handle from users')))\""],
            cwd=home, env={k: v for k, v in env.items() if not k.endswith("_PORT")},
            stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120)
        assert set(shell.stdout.split()) == HANDLES, shell.stdout + shell.stderr
        printed = subprocess.run(["bash", "-l", "-i", "-c", "export -p"], cwd=home, env=env,
                                 stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=120).stdout
        expected = exported_variables(run([str(clone / ".venv/bin/invoke"), "env"]).stdout)
        for name, value in expected.items():
            assert f'declare -x {name}="{value}"' in printed, name
    finally:
        subprocess.run([str(clone / ".venv/bin/invoke"), "down", "--purge"], cwd=clone, env=env,
                       capture_output=True, timeout=120)
