"""Ending the ``invoke`` process quickly once our tasks are done.

Interpreter teardown frees every object the run created, and botocore's
loaded service models make that cost 0.2-0.45 s per command, after the work
is done and the output printed. Nothing of ours needs teardown: files are
written atomically and closed, connections are closed by their ``with``
blocks, services are separate processes. So when ``invoke`` itself is the
running program (never under pytest or another caller), the process exits
with the last task's exit code right after the other exit handlers ran.

A reader that goes away (``invoke --list | head``) ends the process the same
way: quietly, with 141 as for a program stopped by SIGPIPE, instead of
invoke's own help printing a traceback (``quiet_when_output_closes``).
"""

from __future__ import annotations

import atexit
import logging
import os
import sys
from types import TracebackType

from .errors import CLOSED_OUTPUT_EXIT

_exit_codes: list[int] = []


def finished(code: int) -> None:
    """Record that a task finished with ``code``; the first call arms the quick exit."""
    if not _exit_codes and _invoked_as_program():
        atexit.register(_exit_without_teardown)
    _exit_codes.append(code)


def _invoked_as_program() -> bool:
    # Both `invoke` and `python -m invoke` run `program.run()` from their __main__.
    program = getattr(sys.modules.get("__main__"), "program", None)
    return type(program).__module__.startswith("invoke.")


def quiet_when_output_closes() -> None:
    """When ``invoke`` is the program, a BrokenPipeError nothing caught (invoke printing its help or task list
    into a pipe whose reader ended) exits 141 without a traceback; every other exception is shown as before."""
    if not _invoked_as_program():
        return
    shown = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, traceback: TracebackType | None) -> None:
        if not issubclass(kind, BrokenPipeError):
            shown(kind, value, traceback)
            return
        _flush()
        os._exit(CLOSED_OUTPUT_EXIT)

    sys.excepthook = hook


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except OSError:
            pass  # its reader went away (`| head`): what it did not read is nobody's to keep


def _exit_without_teardown() -> None:
    logging.shutdown()
    _flush()
    os._exit(_exit_codes[-1])
