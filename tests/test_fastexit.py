"""The quick exit (bootstrap/fastexit.py): armed only when ``invoke`` is the running program, exiting with the
last task's code and skipping the interpreter's teardown.

Each case runs in a process of its own, as the quick exit ends the process it is armed in: a script
whose ``__main__`` holds invoke's ``Program`` as ``program`` (what both ``invoke`` and ``python -m
invoke`` run), and the same script without it (pytest, or any other caller, importing our code).
"""

from __future__ import annotations

import subprocess
import sys

from tests.helpers import PROJECT_ROOT, outside_environment

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
