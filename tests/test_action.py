"""The composite action (action.yml): its own steps, read from the file and run in order as a runner runs them.

No GitHub runner can run here, so the test plays its part for the steps that
are ours and stubs the rest: the steps that use other actions (setup-python,
cache, upload-artifact) are skipped (the Python is this machine's ``python3``,
nothing is cached, the logs stay in place). Each ``run:`` step is a script run
by ``bash --noprofile --norc -eo pipefail``, in the app's folder unless it names
another, with ``GITHUB_ENV``, ``GITHUB_OUTPUT`` and ``GITHUB_STEP_SUMMARY``
files of its own; what it writes to ``GITHUB_ENV`` is in the environment of
every later step; a step without ``if:`` runs only while nothing failed, one
with ``if: failure()`` only after a failure. The test substitutes the
expressions the action uses (``inputs.*``, ``github.action_path``,
``steps.*.outputs.*``). The action path is a clone of this project whose venv
the action's install step makes once per test session.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import socket
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from bootstrap.fixtures.parse import load_fixtures
from tests.helpers import PIP_CACHE, PROJECT_ROOT, github_file_values, invoke_environment, project_copy

pytestmark = pytest.mark.slow

ACTION = yaml.safe_load((PROJECT_ROOT / "action.yml").read_text())
HANDLES = {user.handle for user in load_fixtures(PROJECT_ROOT / "seeds").users}


@pytest.fixture(scope="session")
def action_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One clone for the session's workers; its venv is made by the first test's install step."""
    shared = tmp_path_factory.getbasetemp().parent / "action-clone"
    with open(tmp_path_factory.getbasetemp().parent / "action-clone.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (shared / "action.yml").exists():
            project_copy(shared)
    return shared


@dataclass
class Run:
    """What a run of the action left: each step's outcome and log, the job's environment, summary and outputs."""

    logs: dict[str, str] = field(default_factory=dict)
    outcomes: dict[str, str] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    summary: str = ""
    outputs: dict[str, str] = field(default_factory=dict)
    masks: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return "failure" in self.outcomes.values()


def _substitute(text: str, inputs: dict[str, str], action_path: Path, step_outputs: dict[str, dict[str, str]]) -> str:
    def value(match: re.Match[str]) -> str:
        expression = match.group(1).strip()
        if expression.startswith("inputs."):
            return inputs[expression.removeprefix("inputs.")]
        if expression == "github.action_path":
            return str(action_path)
        if expression.startswith("steps."):
            step_id, _, output = expression.removeprefix("steps.").partition(".outputs.")
            return step_outputs.get(step_id, {}).get(output, "")
        raise AssertionError(f"the test cannot evaluate ${{{{ {expression} }}}} of action.yml")

    return re.sub(r"\$\{\{(.*?)\}\}", value, text)


def _should_run(step: dict[str, Any], failed: bool, inputs: dict[str, str]) -> bool:
    condition = str(step.get("if", "success()")).strip()
    if condition == "failure()":
        return failed
    if condition == "success()":
        return not failed
    match = re.fullmatch(r"inputs\.([\w-]+) (==|!=) '([^']*)'", condition)
    assert match, f"the test cannot evaluate if: {condition}"
    name, operator, value = match.groups()
    return not failed and (inputs[name] == value) == (operator == "==")


def run_action(action_path: Path, app: Path, env: dict[str, str], **given: str) -> Run:
    inputs = {name: str(spec.get("default", "")) for name, spec in ACTION["inputs"].items()}
    inputs.update({name.replace("_", "-"): value for name, value in given.items()})
    run, step_outputs = Run(), dict[str, dict[str, str]]()
    files = app.parent / "runner-files"
    files.mkdir(exist_ok=True)
    for number, step in enumerate(ACTION["runs"]["steps"]):
        name = step.get("name") or step.get("uses")
        if "uses" in step or not _should_run(step, run.failed, inputs):
            run.outcomes[name] = "stubbed" if "uses" in step else "skipped"
            continue
        paths = {kind: files / f"{number}-{kind}" for kind in ("GITHUB_ENV", "GITHUB_OUTPUT", "GITHUB_STEP_SUMMARY")}
        for path in paths.values():
            path.write_text("")
        step_env = {k: _substitute(str(v), inputs, action_path, step_outputs) for k, v in step.get("env", {}).items()}
        folder = _substitute(step.get("working-directory", str(app)), inputs, action_path, step_outputs)
        script = files / f"{number}.sh"
        script.write_text(_substitute(step["run"], inputs, action_path, step_outputs))
        result = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=folder,
                                env={**env, **run.env, **step_env, **{k: str(v) for k, v in paths.items()}},
                                capture_output=True, text=True, timeout=600)
        log = result.stdout + result.stderr
        run.masks += re.findall(r"^::add-mask::(.*)$", log, re.M)
        run.logs[name] = log
        run.outcomes[name] = "success" if result.returncode == 0 else "failure"
        run.env.update(github_file_values(paths["GITHUB_ENV"].read_text()))
        if "id" in step:
            step_outputs[step["id"]] = github_file_values(paths["GITHUB_OUTPUT"].read_text())
        run.summary += paths["GITHUB_STEP_SUMMARY"].read_text()
    run.outputs = {name: _substitute(spec["value"], inputs, action_path, step_outputs)
                   for name, spec in ACTION["outputs"].items()}
    return run


def _runner_environment(tmp_path: Path, action_path: Path, **values: str) -> dict[str, str]:
    """A runner's environment: ours without settings, free ports, RUNNER_TEMP, pip's shared download cache."""
    env = invoke_environment(action_path / ".cruddur", COLUMNS="200", **values)
    for name in ("CRUDDUR_BACKEND", "CRUDDUR_STATE_DIR"):  # the action's inputs and its own folder decide these
        env.pop(name)
    (tmp_path / "runner-temp").mkdir()
    return {**env, "RUNNER_TEMP": str(tmp_path / "runner-temp"), "PIP_CACHE_DIR": str(PIP_CACHE),
            "CRUDDUR_CACHE_DIR": os.environ["CRUDDUR_CACHE_DIR"], "CI": "true", "GITHUB_ACTIONS": "true"}


def _app(tmp_path: Path) -> Path:
    app = tmp_path / "app"
    app.mkdir()
    return app


def test_the_actions_steps_leave_a_later_step_that_reads_the_seeded_users(tmp_path: Path, action_path: Path) -> None:
    app = _app(tmp_path)
    env = _runner_environment(tmp_path, action_path)
    run = run_action(action_path, app, env)
    try:
        assert not run.failed, json.dumps(run.logs, indent=1)
        assert run.outcomes["The report of invoke up"] == "skipped"

        # A later step of the job: the app's own code, in the app's folder, with the job's environment.
        later = subprocess.run(
            [str(action_path / ".venv/bin/python"), "-c",
             "import os, psycopg\n"
             "with psycopg.connect(os.environ['CONNECTION_URL']) as conn:\n"
             "    for handle, sub in conn.execute('select handle, cognito_user_id from users'): print(handle, sub)"],
            cwd=app, env={**env, **run.env}, capture_output=True, text=True, timeout=60, check=True)
        users = dict(line.split() for line in later.stdout.splitlines())
        assert set(users) == HANDLES and "MOCK" not in users.values()
        assert {"AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                "AWS_COGNITO_USER_POOL_ID"} <= set(run.env)

        report = json.loads(run.outputs["report"])
        steps = [step["step"] for step in report["steps"]]
        assert steps[0] == "services" and steps[-1] == "verify"
        for step in report["steps"]:
            assert f"| {step['step']} | {step['action']} | {step['duration']:.2f} s |" in run.summary
        # The secrets are masked from the job's log, and the summary shows the endpoints without them.
        password = urlsplit(run.env["CONNECTION_URL"]).password
        assert set(run.masks) == {password, run.env["AWS_SECRET_ACCESS_KEY"]}
        assert ":***@" in run.summary and password not in run.summary
    finally:
        subprocess.run([str(action_path / ".venv/bin/invoke"), "down", "--purge"], cwd=action_path, env=env,
                       capture_output=True, timeout=120)


def test_when_the_services_cannot_start_the_step_fails_printing_the_report_and_doctors_findings(
        tmp_path: Path, action_path: Path) -> None:
    closed = []
    for _ in range(2):
        with socket.socket() as sock:  # a port nothing listens on once the socket is closed
            sock.bind(("127.0.0.1", 0))
            closed.append(sock.getsockname()[1])
    env = _runner_environment(tmp_path, action_path,
                              CONNECTION_URL=f"postgresql://postgres:password@127.0.0.1:{closed[0]}/cruddur",
                              AWS_ENDPOINT_URL=f"http://127.0.0.1:{closed[1]}")
    env["CRUDDUR_STATE_DIR"] = str(tmp_path / ".cruddur")  # beside the other test's run in the same clone
    run = run_action(action_path, _app(tmp_path), env, backend="external", timeout="2")

    assert run.outcomes["Start, seed and verify Postgres, DynamoDB and Cognito"] == "failure"
    assert run.outcomes["Hand the environment to the job's later steps"] == "skipped" and run.env == {}
    assert "was not ready after 2s" in run.logs["Start, seed and verify Postgres, DynamoDB and Cognito"]
    # What `up --json` wrote on failure is printed: a JSON document naming the failing step and the error.
    written = (tmp_path / "runner-temp" / "cruddur-up.json").read_text()
    assert run.outcomes["The report of invoke up"] == "success"
    assert run.logs["The report of invoke up"] == written
    document = json.loads(written)
    assert (document["ok"], document["failed_step"], document["exit_code"]) == (False, "services", 1), document
    assert "was not ready after 2s" in document["error"] and document["hint"]
    doctor = run.logs["What could bite on this runner (invoke doctor)"]
    assert "external (chosen by env CRUDDUR_BACKEND)" in doctor and "blocker(s)" in doctor
    assert run.outcomes["Upload the services' logs"] == "stubbed"
