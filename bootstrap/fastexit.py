"""Ending the ``invoke`` process quickly once our tasks are done.

Interpreter teardown frees every object the run created, and botocore's
loaded service models make that cost 0.2-0.45 s per command, after the work
is done and the output printed. Nothing of ours needs teardown: files are
written atomically and closed, connections are closed by their ``with``
blocks, services are separate processes. So when ``invoke`` itself is the
running program (never under pytest or another caller), the process exits
with the last task's exit code right after the other exit handlers ran.
"""

from __future__ import annotations

import atexit
import logging
import os
import sys

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


def _exit_without_teardown() -> None:
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(_exit_codes[-1])
