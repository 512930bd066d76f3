"""The quick exit (bootstrap/fastexit.py): armed only when ``invoke`` is the running program, exiting with the
last task's code and skipping the interpreter's teardown.

Each case runs in a process of its own, as the quick exit ends the process it is armed in: a script
whose ``__main__`` holds invoke's ``Program`` as ``program`` (what both ``invoke`` and ``python -m
invoke`` run), and the same script without it (pytest, or any other caller, importing our code). The
closed pipe's cases run ``invoke`` itself with a stdout whose reader is gone, as ``invoke --list | true`` does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import PROJECT_ROOT, invoke_environment, outside_environment

_SCRIPT = """
import atexit
from bootstrap import fastexit
{program}

class Teardown:
    def __del__(self):
        print("torn down", flush=True)

atexit.register(print, "exit handler registered first", flush=True)
kept = Teardown()
for code in {codes}:
    fastexit.finished(code)
atexit.register(print, "exit handler registered last", flush=True)
print("tasks done", end="")  # unflushed: the quick exit flushes it
"""
AS_INVOKE = "from invoke import Program\nprogram = Program()"


def _run(program: str, codes: list[int]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _SCRIPT.format(program=program, codes=codes)], cwd=PROJECT_ROOT,
                          env=outside_environment(), capture_output=True, text=True, timeout=60, check=False)


def test_under_invoke_the_process_exits_with_the_last_tasks_code_without_teardown() -> None:
    result = _run(AS_INVOKE, [0, 2])
    assert (result.returncode, result.stderr) == (2, "")
    # Handlers registered after the first task ran first (atexit is last in, first out); then the quick exit.
    assert result.stdout == "tasks doneexit handler registered last\n"


def test_under_invoke_a_task_that_succeeds_last_exits_0() -> None:
    assert _run(AS_INVOKE, [1, 0]).returncode == 0


def test_any_other_program_keeps_its_own_exit_and_teardown() -> None:
    result = _run("program = object()", [3])
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("tasks doneexit handler registered last\nexit handler registered first\n")
    assert "torn down" in result.stdout


def _into_a_closed_pipe(*arguments: str, env: dict[str, str]) -> tuple[int, str]:
    """``invoke ARGUMENTS | true``: the exit code and stderr of an ``invoke`` whose stdout's reader has gone."""
    read, write = os.pipe()
    os.close(read)  # before invoke writes anything: its first write fails
    try:
        result = subprocess.run([sys.executable, "-m", "invoke", *arguments], cwd=PROJECT_ROOT, env=env,
                                stdout=write, stderr=subprocess.PIPE, text=True, timeout=120, check=False)
    finally:
        os.close(write)
    return result.returncode, result.stderr


def test_invokes_own_help_and_list_into_a_closed_pipe_exit_141_without_a_traceback() -> None:
    for arguments in (["--list"], ["up", "--help"]):
        assert _into_a_closed_pipe(*arguments, env=outside_environment()) == (141, ""), arguments


@pytest.mark.slow
def test_tasks_into_a_closed_pipe_end_with_one_line_and_up_does_not_hang(tmp_path: Path) -> None:
    """On moto, where up's Cognito step waits until the row of ``ddb.seed`` is out: once the first row could not
    be printed, that wait never ended (a listener that failed heard no more). A table (rich) and JSON too."""
    env = invoke_environment(tmp_path / ".cruddur", CRUDDUR_DDB_ENGINE="moto")
    try:
        for arguments in (["up"], ["ddb.scan"], ["status", "--json"]):
            code, stderr = _into_a_closed_pipe(*arguments, env=env)
            assert code == 141, (arguments, stderr)
            assert stderr.splitlines()[-1].startswith("error: the output was closed"), (arguments, stderr)
            assert "Traceback" not in stderr
    finally:
        subprocess.run([sys.executable, "-m", "invoke", "down", "--purge"], cwd=PROJECT_ROOT, env=env,
                       capture_output=True, timeout=120, check=False)
