"""``invoke`` timed as a separate process, the way a user runs it: cold and warm ``up``, peak RSS, ``--list``.

Each run has a temp state folder of its own on free ports (``tests.helpers.Cli``,
the tests' runner), with our modules' bytecode written first (as any first run
writes it where ``PYTHONDONTWRITEBYTECODE`` is not set). A warm run is an ``up``
with nothing to do, right after a cold one in the same state folder. Every state
folder is stopped and deleted (``invoke down --purge``) on the way out, also on
Ctrl-C or error. A command that fails is a ``BenchmarkFailed``, an error of the
project's hierarchy, so ``errors.exit_status`` maps it to the exit code.
"""

from __future__ import annotations

import compileall
import contextlib
import logging
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Iterator, Sequence

from benchmarks.figures import Figure, Sizes, messages, parse_rss_output, rss_command, rss_figures
from bootstrap.console import console
from bootstrap.errors import BootstrapError
from tests.helpers import PROJECT_ROOT, Cli, invoke_environment

log = logging.getLogger(__name__)

INVOKE_TIMEOUT = 1800.0


class BenchmarkFailed(BootstrapError):
    """A measured command or step did not do its job; the figures of this run would mean nothing."""


def say(message: str) -> None:
    """A progress line on stderr, printed literally: rich would turn ``100:100`` into an emoji."""
    console(stderr=True).print(message, markup=False, emoji=False, highlight=False)


def fresh_cli(root: Path, engine: str) -> Cli:
    """A runner on ``engine`` with a new state folder under ``root`` and free ports."""
    state_dir = root / f"cli-{uuid.uuid4().hex[:8]}" / ".cruddur"
    return Cli(state_dir, invoke_environment(state_dir, CRUDDUR_DDB_ENGINE=engine))


def _completed(cli: Cli, command: Sequence[str], what: str) -> subprocess.CompletedProcess[str]:
    try:
        return cli.run(command, check=False, timeout=INVOKE_TIMEOUT)
    except subprocess.TimeoutExpired:
        raise BenchmarkFailed(f"{what} took over {INVOKE_TIMEOUT:.0f} s") from None


def timed(cli: Cli, *args: str) -> float:
    """Run ``invoke ARGS``; its wall time in seconds. A failure raises with the tail of its output."""
    started = time.perf_counter()
    result = _completed(cli, [sys.executable, "-m", "invoke", *args], f"invoke {' '.join(args)}")
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise BenchmarkFailed(f"invoke {' '.join(args)} exited {result.returncode}:\n{_tail(result.stderr)}"
                              f"{_tail(result.stdout)}")
    return elapsed


def empty_table(cli: Cli) -> None:
    """Drop the task's table and create it again, as the user would.

    Not ``ddb.schema-load --recreate``: that recreates only a table whose key schema differs, and keeps
    the items of one that matches.
    """
    timed(cli, "ddb.drop")
    timed(cli, "ddb.schema-load")


def peak_rss(cli: Cli, *args: str) -> int:
    """Peak RSS in KiB of ``invoke ARGS`` run as a child of a tiny wrapper process."""
    result = _completed(cli, rss_command(sys.executable, args), f"invoke {' '.join(args)}")
    kib, code = parse_rss_output(result.stdout)
    if code != 0:
        raise BenchmarkFailed(f"invoke {' '.join(args)} exited {code}:\n{_tail(result.stderr)}")
    return kib


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:]) + "\n" if text.strip() else ""


@contextlib.contextmanager
def purged(cli: Cli) -> Iterator[Cli]:
    """``cli``, then ``invoke down --purge``: stop what its state folder started and delete it (never raises)."""
    try:
        yield cli
    finally:
        if cli.state_dir.exists():
            result = cli("down", "--purge", check=False, timeout=120)
            if result.returncode != 0:
                log.warning("invoke down --purge in %s exited %s: %s", cli.state_dir, result.returncode,
                            _tail(result.stderr))


def compile_project() -> None:
    """Write our modules' bytecode, as the first run of any command does where Python may write it.

    Where ``PYTHONDONTWRITEBYTECODE`` is set nothing writes it, and each run
    compiles the modules it imports again (about 0.07 s for an in-process ``up``).
    """
    compileall.compile_dir(PROJECT_ROOT / "bootstrap", quiet=1)
    compileall.compile_file(PROJECT_ROOT / "tasks.py", quiet=1)


def measure_cold_up(root: Path, runs: int, engine: str) -> list[float]:
    samples = []
    for run in range(runs):
        with purged(fresh_cli(root, engine)) as cli:
            samples.append(timed(cli, "up"))
        say(f"  cold up on {engine} {run + 1}/{runs}: {samples[-1]:.2f}s")
    return samples


def measure_warm_up(root: Path, runs: int, engine: str, sizes: Sizes | None = None
                    ) -> tuple[list[float], list[Figure]]:
    """Warm ``up`` times; with ``sizes``, then the peak RSS runs in the same state folder."""
    with purged(fresh_cli(root, engine)) as cli:
        say(f"  cold up on {engine} to prepare the warm runs")
        timed(cli, "up")
        warm = []
        for run in range(runs):
            warm.append(timed(cli, "up"))
            say(f"  warm up on {engine} {run + 1}/{runs}: {warm[-1]:.2f}s")
        if sizes is None:
            return warm, []
        peaks = []
        for synthetic in (sizes.rss_small, sizes.rss_large):
            # An empty table: the seed then writes everything and prunes nothing, at either size.
            empty_table(cli)
            say(f"  peak RSS of ddb.seed --synthetic {synthetic} ({messages(synthetic)})…")
            peaks.append(peak_rss(cli, "ddb.seed", "--synthetic", synthetic))
            say(f"  peak RSS --synthetic {synthetic}: {peaks[-1] / 1024:.1f} MB")
    return warm, rss_figures(sizes.rss_small, peaks[0], sizes.rss_large, peaks[1])


def measure_list(root: Path, runs: int) -> list[float]:
    """``invoke --list`` (it starts nothing) in a runner of its own, away from the user's settings."""
    cli = fresh_cli(root, "moto")
    return [timed(cli, "--list") for _ in range(runs)]
