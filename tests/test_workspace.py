"""bootstrap/workspace.py: GitHub's environment files, masks and job summary; the line for new shells.

Pure formatting, checked with plain values and read back by the runner's
documented rules (tests/helpers.py ``github_file_values``); the rc line is run
by a real bash. How the action, the Dev Container and Gitpod use these end to
end is in tests/test_action.py and tests/test_workspace_configs.py.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from bootstrap import workspace
from bootstrap.errors import ConfigError
from tests.helpers import github_file_values

REPORT = {
    "dry_run": False, "notes": [], "total": 5.114,
    "endpoints": {"postgres": "postgresql://postgres:***@localhost:5432/cruddur", "aws_endpoint_url":
                  "http://localhost:8000", "cognito_endpoint_url": None, "region": "us-east-1"},
    "steps": [{"step": "services", "action": "created", "duration": 3.78, "detail": "embedded: started postgres"},
              {"step": "db.seed", "action": "unchanged", "duration": 0.05, "detail": "a | b\nc"}],
}


@pytest.mark.parametrize("value", [
    "plain", "", "a=b=c", "with spaces and 'quotes' and \"doubles\"", "$HOME `cmd` $(cmd) \\ ;",
    "two\nlines", "ends with a newline\n", "CRUDDUR_ alone", "<<EOF", "windows\r\nline",
])
def test_every_value_reads_back_as_it_was(value: str) -> None:
    text = workspace.github_file({"NAME": value, "AFTER": "x"})
    expected = value.replace("\r\n", "\n")
    assert github_file_values(text) == {"NAME": expected, "AFTER": "x"}


def test_a_one_line_value_is_a_name_value_line() -> None:
    assert workspace.github_file({"CONNECTION_URL": "postgresql://u:p@h:1/d"}) == "CONNECTION_URL=postgresql://u:p@h:1/d\n"


def test_the_delimiter_of_a_multi_line_value_differs_each_time() -> None:
    first, second = (workspace.github_file({"V": "a\nb"}).split("\n")[0] for _ in range(2))
    assert first.startswith("V<<") and first != second


@pytest.mark.parametrize("name", ["", "1ABC", "A-B", "A B", "A\nB"])
def test_a_name_github_cannot_take_is_refused(name: str) -> None:
    with pytest.raises(ConfigError, match="cannot be the name"):
        workspace.github_file({name: "x"})


def test_the_masks_hide_the_password_as_written_and_decoded_and_the_secret_key() -> None:
    variables = {"CONNECTION_URL": "postgresql://postgres:p%40ss@localhost:5432/cruddur",
                 "AWS_SECRET_ACCESS_KEY": "cruddurlocalsecret", "AWS_ACCESS_KEY_ID": "cruddurlocal"}
    assert workspace.github_masks(variables) == "::add-mask::p%40ss\n::add-mask::p@ss\n::add-mask::cruddurlocalsecret\n"
    assert workspace.github_masks({"CONNECTION_URL": "postgresql://postgres@localhost/cruddur"}) == ""


def test_the_summary_names_every_step_with_its_action_and_time_and_the_masked_endpoints() -> None:
    summary = workspace.job_summary(REPORT)
    assert "| services | created | 3.78 s | embedded: started postgres |" in summary
    assert "| db.seed | unchanged | 0.05 s | a \\| b c |" in summary  # one cell: no line break, no column
    assert "`postgresql://postgres:***@localhost:5432/cruddur`" in summary and "cognito_endpoint_url" not in summary
    assert "Ready in 5.11 s." in summary


def test_the_report_as_an_output_is_the_same_json() -> None:
    values = github_file_values(workspace.render_report(REPORT, "github-output"))
    assert json.loads(values["report"]) == REPORT


def test_an_unknown_report_format_names_the_flag() -> None:
    with pytest.raises(ConfigError, match="--format 'html'"):
        workspace.render_report(REPORT, "html")


@pytest.mark.parametrize(("text", "error"), [
    (None, "No such file"), ("", "is empty"), ("{\n  oops", "line 2: not JSON"), ("[1, 2]", "not a report"),
])
def test_a_file_that_is_no_report_is_named_with_what_is_wrong(tmp_path: Path, text: str | None, error: str) -> None:
    path = tmp_path / "up.json"
    if text is not None:
        path.write_text(text)
    with pytest.raises(ConfigError, match=error):
        workspace.read_report(path)


def test_the_rc_line_is_added_once_after_what_the_file_held(tmp_path: Path) -> None:
    rc = tmp_path / ".bashrc"
    rc.write_text("alias ll='ls -l'")  # no newline at the end
    assert workspace.add_rc_line(rc) is True
    assert workspace.add_rc_line(rc) is False
    assert rc.read_text() == f"alias ll='ls -l'\n{workspace.rc_line()}\n"


def test_the_rc_line_is_valid_bash_and_harmless_when_invoke_fails(tmp_path: Path) -> None:
    """Run by a real bash from another folder: with no services running here, the shell still starts cleanly."""
    rc = tmp_path / "rc"
    workspace.add_rc_line(rc)
    result = subprocess.run(["bash", "-c", f". {rc}; echo started"], cwd=tmp_path, capture_output=True, text=True,
                            env={"PATH": "/usr/bin:/bin", "CRUDDUR_STATE_DIR": str(tmp_path / "none"),
                                 "CRUDDUR_TARGET": "nonsense"}, timeout=60)
    assert result.returncode == 0 and result.stdout.strip().endswith("started"), result.stdout + result.stderr
    assert result.stderr == ""


def test_an_rc_file_that_cannot_be_written_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--rc-file"):
        workspace.add_rc_line(tmp_path / "missing-folder" / ".bashrc")
