"""Running ``invoke`` as a separate process, the way a user does: shared by the tests and the benchmark.

A ``Cli`` runs tasks in the project folder against one state folder of its
own, on free ports, with none of the caller's own settings (``CRUDDUR_*``,
``AWS_*`` and the app's connection variables are left out). This module
imports nothing from pytest, so ``python -m benchmarks`` runs with
``requirements.txt`` alone; it assumes the project folder is on ``sys.path``.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from bootstrap.config import Endpoints
from bootstrap.processes import free_port

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# pip's downloads, shared by the tests that install a fresh venv as a user does (not the user's own cache).
PIP_CACHE = Path("~/.cache/cruddur-bootstrap-tests/pip").expanduser()
# Variables of the caller's own environment that would point a run elsewhere.
ENV_PREFIXES = ("CRUDDUR_", "AWS_", "CONNECTION_URL", "PROD_CONNECTION_URL", "INVOKE_")


def outside_environment() -> dict[str, str]:
    """This process's environment without the variables that would point a run at other services."""
    return {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES)}


def invoke_environment(state_dir: Path, **values: str) -> dict[str, str]:
    """The environment of an ``invoke`` with its own state folder, free ports and the embedded backend.

    ``values`` (further ``CRUDDUR_*`` settings, ``COLUMNS``…) are added last and win.
    """
    return {
        **outside_environment(),
        "CRUDDUR_STATE_DIR": str(state_dir), "CRUDDUR_PG_PORT": str(free_port()),
        "CRUDDUR_DDB_PORT": str(free_port()), "CRUDDUR_COGNITO_PORT": str(free_port()),
        "CRUDDUR_BACKEND": "embedded", "NO_COLOR": "1",
        **values,
    }


@dataclass
class Cli:
    """Runs ``invoke`` tasks as a separate process in the project folder, against one state folder."""

    state_dir: Path
    env: dict[str, str]

    def __call__(self, *args: str, check: bool = True, timeout: float = 180,
                 **extra_env: str) -> subprocess.CompletedProcess[str]:
        """``invoke ARGS``; with ``check``, a non-zero exit raises AssertionError with its whole output."""
        return self.run([sys.executable, "-m", "invoke", *args], check=check, timeout=timeout,
                        what=f"invoke {' '.join(args)}", **extra_env)

    def run(self, command: Sequence[str], check: bool = True, timeout: float = 180, what: str = "",
            **extra_env: str) -> subprocess.CompletedProcess[str]:
        """Any command line (a wrapper around ``invoke``, say), run like ``invoke``, its output captured."""
        result = subprocess.run(list(command), cwd=PROJECT_ROOT, env={**self.env, **extra_env},
                                capture_output=True, text=True, timeout=timeout)
        if check and result.returncode != 0:
            raise AssertionError(
                f"{what or shlex.join(command)} exited {result.returncode}\n--- stdout\n{result.stdout}\n"
                f"--- stderr\n{result.stderr}"
            )
        return result

    def endpoints(self) -> Endpoints:
        """The endpoints that `invoke env` hands the app."""
        values = self.exported()
        return Endpoints(values["CONNECTION_URL"], values["AWS_ENDPOINT_URL"], values["AWS_DEFAULT_REGION"],
                         values.get("AWS_COGNITO_USER_POOL_ID"),
                         values.get("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER"))

    def exported(self) -> dict[str, str]:
        return exported_variables(self("env").stdout)


def exported_variables(env_output: str) -> dict[str, str]:
    """The variables `invoke env` printed, as the shell would see them after `eval`."""
    values = {}
    for line in env_output.splitlines():
        name, _, value = line.removeprefix("export ").partition("=")
        values[name] = shlex.split(value)[0] if value else ""
    return values


def run_concurrently(env: dict[str, str], runs: Sequence[tuple[Sequence[str], dict[str, str]]]
                     ) -> list[subprocess.CompletedProcess[str]]:
    """Run each (``invoke`` arguments, extra environment) as a concurrent ``invoke`` process; results in order."""
    processes = [
        subprocess.Popen([sys.executable, "-m", "invoke", *command], cwd=PROJECT_ROOT, env={**env, **extra},
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for command, extra in runs
    ]
    results = []
    for (command, _), process in zip(runs, processes):
        stdout, stderr = process.communicate(timeout=120)
        results.append(subprocess.CompletedProcess(list(command), process.returncode, stdout, stderr))
    return results


def github_file_values(text: str) -> dict[str, str]:
    """What GitHub's runner reads from a ``$GITHUB_ENV`` or ``$GITHUB_OUTPUT`` file, by its documented rules.

    ``NAME=value`` takes everything after the first ``=``; ``NAME<<DELIMITER``
    takes the following lines up to the line that is exactly the delimiter.
    """
    values: dict[str, str] = {}
    lines = iter(text.split("\n"))
    for line in lines:
        if not line:
            continue
        if "=" in line and ("<<" not in line or line.index("=") < line.index("<<")):
            name, _, value = line.partition("=")
            values[name] = value
            continue
        name, _, delimiter = line.partition("<<")
        body = []
        for inner in lines:
            if inner == delimiter:
                break
            body.append(inner)
        else:
            raise AssertionError(f"{name}: delimiter {delimiter!r} never closes the value")
        values[name] = "\n".join(body)
    return values


def project_copy(destination: Path) -> Path:
    """The project's files as a fresh clone has them (tracked and new, not ignored): no venv, no state."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=PROJECT_ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = PROJECT_ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)
    return destination
