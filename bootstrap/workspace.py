"""Where the environment is used besides a terminal: a CI job on GitHub Actions, and new shells of a workspace.

GitHub Actions reads files a step writes: ``$GITHUB_ENV`` (variables every
later step of the job sees), ``$GITHUB_OUTPUT`` (the step's outputs), both in
one format, and ``$GITHUB_STEP_SUMMARY`` (Markdown shown on the run's page).
It hides a value from the job's log once a step prints ``::add-mask::VALUE``.
A Dev Container or Gitpod workspace opens new terminals that read ``~/.bashrc``.
The formatting here is pure; only ``add_rc_line`` writes, and it only appends.
"""

from __future__ import annotations

import re
import shlex
import sys
import uuid
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import unquote, urlsplit

from .config import PROJECT_ROOT
from .errors import ConfigError

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


def github_file(values: Mapping[str, str]) -> str:
    """``values`` in the format of ``$GITHUB_ENV`` and ``$GITHUB_OUTPUT``, safe for any value.

    A one-line value is ``NAME=value`` (GitHub takes everything after the first
    ``=`` as it is: no quoting). A value with a line break uses GitHub's
    ``NAME<<DELIMITER`` form, with a random delimiter that cannot be one of its lines.
    """
    lines = []
    for name, value in values.items():
        if not _NAME.match(name):
            raise ConfigError(f"{name!r} cannot be the name of a GitHub Actions variable")
        if "\n" in value or "\r" in value:
            delimiter = f"CRUDDUR_{uuid.uuid4().hex}"
            lines += [f"{name}<<{delimiter}", value.replace("\r\n", "\n"), delimiter]
        else:
            lines.append(f"{name}={value}")
    return "".join(line + "\n" for line in lines)


def secret_values(variables: Mapping[str, str]) -> list[str]:
    """The values a job log must not show: the Postgres password (as written in the URL and decoded) and AWS's secret key."""
    secrets = []
    password = urlsplit(variables.get("CONNECTION_URL", "")).password
    if password:
        secrets += [password, unquote(password)]
    if variables.get("AWS_SECRET_ACCESS_KEY"):
        secrets.append(variables["AWS_SECRET_ACCESS_KEY"])
    return list(dict.fromkeys(secrets))


def github_masks(variables: Mapping[str, str]) -> str:
    """The ``::add-mask::`` commands that hide ``variables``' secrets from the rest of the job's log."""
    return "".join(f"::add-mask::{value}\n" for value in secret_values(variables))


def read_report(path: Path) -> dict[str, Any]:
    """The report ``invoke up --json`` wrote to ``path``; what is wrong with it, named, when it is not one."""
    import json

    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: {exc.strerror or exc}; give the file `invoke up --json` wrote") from None
    if not text.strip():
        raise ConfigError(f"{path} is empty: `invoke up --json` wrote no report there (it failed before the end?)")
    try:
        report = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path}, line {exc.lineno}: not JSON ({exc.msg}); give the file `invoke up --json` wrote")
    if not isinstance(report, dict) or "steps" not in report:
        raise ConfigError(f"{path} is JSON but not a report of `invoke up --json` (it has no steps)")
    return report


def job_summary(report: Mapping[str, Any]) -> str:
    """An ``invoke up --json`` report as Markdown for a job summary: the steps and the endpoints (masked)."""
    rows = ["| step | action | time | detail |", "| --- | --- | ---: | --- |"]
    for step in report.get("steps") or []:
        duration = step.get("duration")
        time = f"{duration:.2f} s" if isinstance(duration, (int, float)) else ""
        rows.append(f"| {_cell(step.get('step'))} | {_cell(step.get('action'))} | {time} | {_cell(step.get('detail'))} |")
    title = "### cruddur-bootstrap: `invoke up`" + (" (dry run)" if report.get("dry_run") else "")
    total = report.get("total")
    parts = [title, "", f"Ready in {total:.2f} s." if isinstance(total, (int, float)) else "", "", *rows]
    endpoints = report.get("endpoints") or {}
    if endpoints:
        parts += ["", "| endpoint | value |", "| --- | --- |"]
        parts += [f"| {_cell(name)} | `{_cell(value)}` |" for name, value in endpoints.items() if value]
    return "\n".join(parts) + "\n"


REPORT_FORMATS = ("markdown", "github-output")


def render_report(report: Mapping[str, Any], fmt: str) -> str:
    """The report as a job summary (``markdown``) or as the step output ``report`` (one line of JSON)."""
    import json

    if fmt == "markdown":
        return job_summary(report)
    if fmt == "github-output":
        return github_file({"report": json.dumps(report, sort_keys=True)})
    raise ConfigError(f"--format {fmt!r}: expected one of {', '.join(REPORT_FORMATS)}")


def _cell(value: object) -> str:
    """A value as one Markdown table cell: no line breaks, no column separators."""
    return " ".join(str("" if value is None else value).split()).replace("|", "\\|")


# --- new shells of a workspace ------------------------------------------------------------


def rc_line() -> str:
    """The line that loads ``invoke env``'s variables into a new shell, from any folder.

    It names this venv's Python and this project, so it works before any venv is
    activated; errors are silenced (a terminal opened while the services are
    stopped or still starting just gets no variables).
    """
    command = shlex.join([sys.executable, "-m", "invoke", "--search-root", str(PROJECT_ROOT), "env"])
    return f'eval "$({command} 2>/dev/null)"  # cruddur-bootstrap: the local environment (invoke env)'


def add_rc_line(rc_file: str | Path) -> bool:
    """Append ``rc_line()`` to the shell startup file ``rc_file`` unless it holds it already; whether it was added."""
    from .console import say

    line, path = rc_line(), Path(rc_file).expanduser()
    try:
        text = path.read_text() if path.exists() else ""
        if line in text.splitlines():
            say(f"{path} already loads `invoke env` in each new shell")
            return False
        with path.open("a") as handle:
            handle.write(("" if not text or text.endswith("\n") else "\n") + line + "\n")
    except OSError as exc:
        raise ConfigError(f"--rc-file {path}: {exc.strerror or exc}") from None
    say(f"added the line that loads `invoke env` in each new shell to {path}")
    return True
