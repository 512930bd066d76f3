"""The CI recipes are checked: the project's workflow and the README's job for an app, both by actionlint.

The action both use (action.yml) is run step by step in tests/test_action.py;
here, what a runner alone does with it (caching, uploading) is read from it.

actionlint checks the workflow syntax, the expressions and contexts, the
inputs of the actions used and their runtimes (a deprecated Node runtime of an
action's version is an error), and the shell scripts when shellcheck is there.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from tests.helpers import PROJECT_ROOT

WORKFLOW = PROJECT_ROOT / ".github" / "workflows" / "ci.yml"
ACTION_REFERENCE = "your-org/cruddur-bootstrap@v1"


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


def _app_repository(tmp_path: Path, job: str) -> Path:
    """An app's repository holding the README's job, with this action where the job's `uses:` names it.

    actionlint checks a local action's inputs against its action.yml, not a remote one's; so the job's
    `your-org/cruddur-bootstrap@v1` becomes `./`, with a copy of action.yml at the repository's root.
    """
    assert ACTION_REFERENCE in job, "the README's job does not use the action"
    (tmp_path / ".git").mkdir()  # actionlint finds the repository's root by its .git
    shutil.copy(PROJECT_ROOT / "action.yml", tmp_path / "action.yml")
    path = tmp_path / ".github" / "workflows" / "app.yml"
    path.parent.mkdir(parents=True)
    path.write_text(job.replace(ACTION_REFERENCE, "./"))
    return path


def test_the_readmes_job_passes_actionlint_and_uses_the_action_in_a_few_lines(tmp_path: Path) -> None:
    job = _readme_job()
    result = _lint(_app_repository(tmp_path, job))
    assert result.returncode == 0, result.stdout + result.stderr
    steps = job[job.index("steps:"):].strip().splitlines()[1:]
    assert len(steps) <= 5, steps


def test_actionlint_does_catch_a_broken_workflow(tmp_path: Path) -> None:
    """So that a pass above means something: a deprecated runtime and an input the action lacks are errors."""
    job = _readme_job().replace("checkout@v5", "checkout@v4").replace("id: cruddur", "with:\n          ddb-engin: moto")
    result = _lint(_app_repository(tmp_path, job))
    assert result.returncode == 1 and "node20" in result.stdout and '"ddb-engin" is not defined' in result.stdout, \
        result.stdout


def test_the_projects_workflow_uses_the_action_from_this_repository() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    uses = [step.get("uses") for job in workflow["jobs"].values() for step in job["steps"]]
    assert "./" in uses


def test_the_action_caches_the_venv_and_the_cache_folder_per_runner_python_and_requirements() -> None:
    action = yaml.safe_load((PROJECT_ROOT / "action.yml").read_text())
    steps = action["runs"]["steps"]
    (cache,) = [step for step in steps if step.get("uses", "").startswith("actions/cache@")]
    assert cache["with"]["path"].splitlines() == ["${{ github.action_path }}/.venv", "~/.cache/cruddur-bootstrap"]
    for part in ("runner.os", "runner.arch", "steps.python.outputs.python-version", "requirements.txt"):
        assert part in cache["with"]["key"], part
    (upload,) = [step for step in steps if step.get("uses", "").startswith("actions/upload-artifact@")]
    assert upload["if"] == "failure()" and upload["with"]["path"] == "${{ github.action_path }}/.cruddur/logs"
