"""The CI recipes are checked: the project's workflow and the README's job for an app, both by actionlint;
the README's `up --json > up.json || { cat up.json; ... }` step is run for real with an `up` that fails.

actionlint checks the workflow syntax, the expressions and contexts, the
inputs of the actions used and their runtimes (a deprecated Node runtime of an
action's version is an error), and the shell scripts when shellcheck is there.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import session_cli
from tests.helpers import PROJECT_ROOT

WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "ci.yml"


def _actionlint() -> str:
    found = shutil.which("actionlint", path=str(Path(sys.executable).parent)) or shutil.which("actionlint")
    assert found, "actionlint is missing: pip install -r requirements-dev.txt"
    return found


def _readme_job() -> str:
    """The README's copy-paste job: the yaml block of its "In CI" section."""
    readme = (PROJECT_ROOT / "README.md").read_text()
    section = readme[readme.index("## In CI"):]
    match = re.search(r"```yaml\n(.*?)```", section, re.S)
    assert match, "the README's CI section has no yaml block"
    return match.group(1)


def _lint(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([_actionlint(), "-no-color", str(path)], capture_output=True, text=True, timeout=120,
                          cwd=PROJECT_ROOT)


def test_the_projects_workflow_passes_actionlint_and_runs_ci_run() -> None:
    result = _lint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "bash .ci/run" in WORKFLOW.read_text()


def test_the_readmes_job_passes_actionlint_and_does_what_the_readme_says(tmp_path: Path) -> None:
    job = _readme_job()
    path = tmp_path / ".github" / "workflows" / "app.yml"
    path.parent.mkdir(parents=True)
    path.write_text(job)
    result = _lint(path)
    assert result.returncode == 0, result.stdout + result.stderr
    for step in ("invoke up --json", 'eval "$(cd cruddur-bootstrap && .venv/bin/invoke env)"', ".cruddur/logs",
                 "~/.cache/cruddur-bootstrap", "if: failure()"):
        assert step in job, step


def test_actionlint_does_catch_a_broken_workflow(tmp_path: Path) -> None:
    """So that a pass above means something: an unknown context and a deprecated runtime are errors."""
    path = tmp_path / "broken.yml"
    path.write_text(_readme_job().replace("runner.os", "runnr.os").replace("checkout@v5", "checkout@v4"))
    result = _lint(path)
    assert result.returncode == 1 and "runnr" in result.stdout and "node20" in result.stdout, result.stdout


def _readme_up_step() -> str:
    """The `run:` line of the README job's step that brings the environment up."""
    [line] = [line for line in _readme_job().splitlines() if "invoke up --json > up.json" in line]
    return line.split("run: ", 1)[1]


@pytest.mark.slow  # `invoke` as a process, then a real `up`
def test_the_readmes_up_step_shows_the_failing_step_and_a_plain_up_works_after_it(tmp_path: Path) -> None:
    """Services that never answer: silent listeners given as an external backend, with a short deadline."""
    from tests.test_faults import Listener

    runner = session_cli(tmp_path / ".cruddur", tmp_path / "cache")
    invoke = f"{shlex.quote(sys.executable)} -m invoke --search-root {shlex.quote(str(PROJECT_ROOT))}"
    step = _readme_up_step().replace(".venv/bin/invoke", invoke)
    postgres, aws = Listener(), Listener()
    external = {"CRUDDUR_BACKEND": "external", "CRUDDUR_READY_TIMEOUT": "1",
                "CONNECTION_URL": f"postgresql://postgres:password@localhost:{postgres.port}/cruddur",
                "AWS_ENDPOINT_URL": f"http://localhost:{aws.port}"}
    try:
        result = subprocess.run(["bash", "-c", step], cwd=tmp_path, capture_output=True, text=True, timeout=180,
                                env={**runner.env, **external})
    finally:
        postgres.close()
        aws.close()
    assert result.returncode == 1, result.stdout + result.stderr
    document = json.loads((tmp_path / "up.json").read_text())
    assert (document["ok"], document["failed_step"], document["exit_code"]) == (False, "services", 1), document
    assert f"localhost:{postgres.port}" in document["error"] and "was not ready after 1s" in document["error"]
    assert document["hint"] and "Traceback" not in result.stderr
    assert result.stdout.startswith("{") and '"failed_step": "services"' in result.stdout  # `cat up.json` shows it
    # The failed external start is still remembered in this branch (a later change remembers only successful
    # starts): the embedded backend is asked for by name.
    try:
        runner("up", "--backend", "embedded")
    finally:
        runner("down", check=False)
