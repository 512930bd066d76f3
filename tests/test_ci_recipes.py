"""The CI recipes are checked: the project's workflow and the README's job for an app, both by actionlint.

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
