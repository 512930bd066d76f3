"""No password or AWS secret in any output, log, error message or --json summary.

Every task that `invoke --list` shows runs as a process (with harmless
arguments) in an environment holding a distinctive Postgres password and a
distinctive AWS secret key; so do the error paths that print a connection
URL. Their stdout and stderr, and every file the tool leaves in its state and
cache folders, are then searched for the secrets, raw and URL-encoded.

One exemption: `invoke env` prints CONNECTION_URL with its password because
that is its job (`eval "$(invoke env)"` hands the app exactly what it needs);
its --dotenv file must then be readable by its owner only.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator
from urllib.parse import quote

import pytest

from bootstrap.fixtures.model import group_uuid
from bootstrap.processes import free_port
from tests.helpers import ENV_PREFIXES, PROJECT_ROOT

PG_PASSWORD = "pg@Hush-8c41e7"
WRONG_PG_PASSWORD = "pg@Murmur-77aa1e"
AWS_SECRET = "aws/Whisper-5d2b90"
SECRETS = tuple({s for secret in (PG_PASSWORD, WRONG_PG_PASSWORD, AWS_SECRET) for s in (secret, quote(secret, safe=""))})


@dataclass
class Runner:
    """Runs tasks in the secret-holding environment and keeps every output for the search."""

    root: Path
    env: dict[str, str]
    outputs: list[tuple[str, str]] = field(default_factory=list)

    @property
    def state_dir(self) -> Path:
        return self.root / ".cruddur"

    def run(self, *commands: list[str], expect: int | None = 0, **extra_env: str) -> None:
        """Run the commands concurrently; each must exit ``expect`` (None: any code)."""
        self.run_each([(command, expect, extra_env) for command in commands])

    def run_each(self, runs: list[tuple[list[str], int | None, dict[str, str]]]) -> None:
        """Run each (command, expected exit code, extra environment) concurrently."""
        processes = [
            subprocess.Popen([sys.executable, "-m", "invoke", *command], cwd=PROJECT_ROOT, env={**self.env, **extra_env},
                             stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            for command, _, extra_env in runs
        ]
        for (command, expect, _), process in zip(runs, processes):
            stdout, stderr = process.communicate(timeout=180)
            self.outputs.append((" ".join(command), stdout + stderr))
            if expect is not None:
                assert process.returncode == expect, (command, process.returncode, stdout, stderr)


pytestmark = pytest.mark.slow  # runs every task as `invoke` processes


@pytest.fixture(scope="module")
def runner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Runner]:
    root = tmp_path_factory.mktemp("secrets")
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES)}
    env.update(
        CRUDDUR_STATE_DIR=str(root / ".cruddur"), CRUDDUR_CACHE_DIR=str(root / "cache"),
        CRUDDUR_PG_PORT=str(free_port()), CRUDDUR_DDB_PORT=str(free_port()), CRUDDUR_BACKEND="embedded",
        CRUDDUR_SYSTEM_DIR=os.environ["CRUDDUR_SYSTEM_DIR"],  # the session's (conftest)
        CRUDDUR_PG_PASSWORD=PG_PASSWORD, AWS_ACCESS_KEY_ID="AKIASECRETSTEST", AWS_SECRET_ACCESS_KEY=AWS_SECRET,
        AWS_EC2_METADATA_DISABLED="true", NO_COLOR="1", COLUMNS="200",
    )
    runner = Runner(root, env)
    try:
        runner.run(["up", "--json"])
        yield runner
    finally:
        runner.run(["down"], expect=None)


def _listed_tasks() -> set[str]:
    result = subprocess.run([sys.executable, "-m", "invoke", "--list", "--list-format=json"], cwd=PROJECT_ROOT,
                            capture_output=True, text=True, check=True)
    listing = json.loads(result.stdout)
    return {task["name"] for task in listing["tasks"]} | {
        f"{collection['name']}.{task['name']}" for collection in listing["collections"] for task in collection["tasks"]
    }


GROUP = group_uuid("mud-and-fire")

# Read-only or idempotent: safe to run side by side.
READERS = [
    ["status"], ["status", "--json"], ["verify", "--json", "--full"], ["doctor"], ["doctor", "--json"],
    ["db.create"], ["db.schema-load"], ["db.sessions"], ["db.connect"], ["db.update-cognito-user-ids", "--json"],
    ["ddb.schema-load"], ["ddb.list-tables"], ["ddb.scan", "--limit", "5", "--json"],
    ["ddb.get-conversation"], ["ddb.list-conversations"], ["ddb.drop", "--table", "cruddur-never-created"],
    ["cognito.list-users", "--json"],
]
# Writers: the seeds side by side (each serialises its own writes), then the rest one at a time.
SEEDERS = [["db.seed"], ["db.setup"], ["ddb.seed"], ["cognito.seed-users"]]
WRITERS = [
    ["ddb.create-message", "--group", GROUP, "--handle", "maren_kiln", "--text", "a harmless message"],
    ["ddb.create-group", "--from", "ines_glaze", "--to", "noor_h", "--text", "a harmless first message"],
    ["ddb.stream-worker", "--once"], ["db.kill-sessions"], ["db.update-cognito-user-ids"],
]
# The states of the environment, one at a time, and a report of `up --json` (see _states_and_report).
STATE_TASKS = {"state.save", "state.list", "state.export", "state.import", "state.load", "state.delete", "report"}
# Destructive for the environment: last, then `down` (which saves a snapshot) and `up` (which restores it).
LAST = [["db.drop"], ["down"], ["up"]]
# Prod-only: refused here (exit 3); tests/test_prod_parity.py runs it against a stand-in for AWS.
REFUSED = [["ddb.deploy-stream-worker", "--yes"]]


def test_no_task_output_or_file_holds_a_secret(runner: Runner, tmp_path: Path) -> None:
    # `env` is the exemption below; `ddb.install-local` runs on its error path (a real install needs the registry).
    covered = ({command[0] for command in READERS + SEEDERS + WRITERS + LAST + REFUSED} | STATE_TASKS
               | {"env", "ddb.install-local"})
    assert _listed_tasks() == covered, "a task was added or removed: give it harmless arguments here"

    runner.run(*READERS)
    runner.run(*REFUSED, expect=3)
    runner.run(*SEEDERS)
    for command in WRITERS:
        runner.run(command)
    _states_and_report(runner)
    _run_error_paths(runner)
    for command in LAST:
        runner.run(command)

    # The exemption: `invoke env` exists to print CONNECTION_URL with its password. Not searched.
    exported = subprocess.run([sys.executable, "-m", "invoke", "env"], cwd=PROJECT_ROOT, env=runner.env,
                              capture_output=True, text=True, check=True).stdout
    assert quote(PG_PASSWORD, safe="") in exported
    _check_dotenv_is_private(runner, tmp_path / "app.env")

    leaks = [(name, secret) for name, text in runner.outputs for secret in SECRETS if secret in text]
    leaks += [(str(path), secret) for path, data in _files(runner.root) for secret in SECRETS
              if secret.encode() in data]
    assert leaks == []


PROD_REGION = {"AWS_DEFAULT_REGION": "us-east-1"}  # a prod target needs a region


def _states_and_report(runner: Runner) -> None:
    """A state saved, exported (the archive under the searched folder), imported and loaded; `up`'s report."""
    archive = str(runner.root / "secrets.tar")
    for command in (["state.save", "secrets"], ["state.list", "--json"], ["state.export", "secrets", archive],
                    ["state.import", archive, "--name", "secrets-copy"], ["state.load", "secrets"],
                    ["state.delete", "secrets-copy"]):
        runner.run(command)
    report = runner.root / "up.json"
    report.write_text(subprocess.run([sys.executable, "-m", "invoke", "up", "--json"], cwd=PROJECT_ROOT,
                                     env=runner.env, capture_output=True, text=True, check=True).stdout)
    runner.run(["report", "--file", str(report)], ["report", "--file", str(report), "--format", "github-output"])


def _run_error_paths(runner: Runner) -> None:
    """Failures whose messages name a connection URL: each must name it masked."""
    port = runner.env["CRUDDUR_PG_PORT"]
    # The local database stands in for production; none of these reaches AWS.
    local = f"postgresql://postgres:{quote(PG_PASSWORD, safe='')}@localhost:{port}/cruddur"
    runner.run_each([
        (["db.sessions"], 1, {"CRUDDUR_PG_PASSWORD": WRONG_PG_PASSWORD}),
        (["db.sessions"], 2,
         {"CONNECTION_URL": f"postgresql://postgres:{quote(WRONG_PG_PASSWORD, safe='')}@localhost:notaport/cruddur"}),
        (["db.sessions", "--target", "prod"], 2,
         {"PROD_CONNECTION_URL": f"host=localhost password={WRONG_PG_PASSWORD} dbname=cruddur", **PROD_REGION}),
        (["db.sessions", "--target", "prod"], 1,
         {"PROD_CONNECTION_URL": f"postgresql://postgres@127.0.0.1:1/cruddur?password={quote(WRONG_PG_PASSWORD)}",
          **PROD_REGION}),
        (["db.drop", "--target", "prod"], 3, {"PROD_CONNECTION_URL": local, **PROD_REGION}),
        (["ddb.install-local"], 2, {"PATH": str(runner.root / "no-npm-here")}),
        (["up", "--backend", "external", "--timeout", "0.5"], 1,
         {"CONNECTION_URL": local.replace(f":{port}/", f":{free_port()}/"),
          "AWS_ENDPOINT_URL": f"http://localhost:{free_port()}", "CRUDDUR_STATE_DIR": str(runner.root / "external")}),
    ])


def _check_dotenv_is_private(runner: Runner, path: Path) -> None:
    path.write_text("stale\n")
    path.chmod(0o644)
    runner.run(["env", "--dotenv", str(path)])
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert "CONNECTION_URL=" in path.read_text()


def _files(root: Path) -> Iterator[tuple[Path, bytes]]:
    """Every regular file under ``root``: the state folder (logs, state, snapshot, Postgres data) and the cache."""
    for path in root.rglob("*"):
        if path.is_file() and not path.is_symlink():
            try:
                yield path, path.read_bytes()
            except PermissionError:
                continue
