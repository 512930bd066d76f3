"""What the user reads: one rich console, tables, JSON, and the lines about work in progress.

rich is imported lazily so that ``invoke --list`` and warm runs don't pay for it.
The views of particular results are submodules (``tables``: DynamoDB tables, items
and conversations); this module holds what every view and every task uses.
rich itself honours NO_COLOR and plain output when stdout is not a terminal.

Work in progress (a step running, a service not ready yet, a long write) is
shown on one board per process, whichever thread does the work:

- when stdout and stderr are both a terminal, as live lines under the output
  (a rich ``Live`` on stderr that redraws them a few times a second and clears
  them when the work is done; what is printed meanwhile goes above them);
- otherwise (CI, a pipe, a log file), as a plain line every ``PLAIN_EVERY``
  seconds for each piece of work that asks for one, flushed at once;
- with ``quiet()`` (``invoke up --quiet``), not at all; ``say`` is silent too,
  and only ``warn``, results and errors are printed.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import sys
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Collection, Iterable, Iterator, Sequence

# Without a terminal, a line about a piece of work every this many seconds.
PLAIN_EVERY = 5.0
# In a terminal, work shows once it has run this long, so quick work does not flicker.
LIVE_AFTER = 0.5
# Redraws per second of the live lines: often enough for a seconds counter to tick evenly.
LIVE_REFRESH = 4

# Wider than anything we print: the width of a stream that is not a terminal, so that a line
# or a table there is as long as its content (a pipe, `less`, a CI log wraps nothing).
UNBOUNDED = 100_000

_quiet = False


def _closed_pipe() -> None:
    raise BrokenPipeError(errno.EPIPE, "the reader of the output went away")


@functools.lru_cache(maxsize=None)
def console(stderr: bool = False) -> Any:
    from rich.console import Console

    # No markup, no emoji codes: what we print includes user data (messages,
    # names) that must show exactly as stored, brackets and colons included.
    made = Console(stderr=stderr, highlight=False, soft_wrap=False, markup=False, emoji=False)
    # rich ends the process itself on a closed pipe (SystemExit(1), silently); the task boundary says it instead.
    made.on_broken_pipe = _closed_pipe  # type: ignore[method-assign]  # rich's hook for this, set on our consoles only
    if not made.is_terminal:
        # Else rich takes the width of whichever stream is a terminal, or COLUMNS, or 80.
        made.width = UNBOUNDED
    return made


@contextlib.contextmanager
def quiet(enabled: bool = True) -> Iterator[None]:
    """While the block runs, print only results, warnings and errors: no progress, no ``say``."""
    global _quiet
    previous, _quiet = _quiet, enabled or _quiet
    try:
        yield
    finally:
        _quiet = previous


def say(message: str) -> None:
    """A progress or status line for humans; on stderr so stdout stays parseable. Silent when quiet."""
    if not _quiet:
        console(stderr=True).print(message)


def warn(message: str) -> None:
    """Something the user must know even with --quiet (data lost, a step skipped); on stderr."""
    console(stderr=True).print(message)


def is_live() -> bool:
    """Whether work in progress is drawn as live lines: both streams are a capable terminal, and not quiet."""
    if _quiet:
        return False
    if not _may_be_terminals():
        return False  # said without importing rich: a warm `up` in a pipe or CI never needs it
    return all(c.is_terminal and not c.is_dumb_terminal for c in (console(), console(stderr=True)))


def _may_be_terminals() -> bool:
    """False when rich would certainly not see two terminals: a stream is no tty and nothing forces one."""
    if os.environ.get("FORCE_TERMINAL") or os.environ.get("TTY_COMPATIBLE") == "1":
        return True
    return all(getattr(stream, "isatty", lambda: False)() for stream in (sys.stdout, sys.stderr))


def print_table(columns: Sequence[str], rows: Iterable[Sequence[object]], title: str | None = None,
                wrap: Collection[str] = ()) -> None:
    """A table on stdout whose cells people can copy whole.

    Every column not named in ``wrap`` (ids, keys, subs, paths, names, values) is
    never wrapped or cut; the ``wrap`` columns (free text) wrap between words, and
    no word is cut. A terminal narrower than that gets lines longer than itself
    (it folds them on screen; what is copied stays whole). Without a terminal the
    table is as wide as its content.
    """
    from rich.table import Table
    from rich.text import Text

    cells = [[Text("" if cell is None else str(cell)) for cell in row] for row in rows]
    table = Table(title=title, show_edge=False, header_style="bold")
    for index, column in enumerate(columns):
        whole = column not in wrap
        widest = max([len(column), *(row[index].cell_len for row in cells if index < len(row))])
        table.add_column(column, no_wrap=whole, min_width=widest if whole else None)
    for row in cells:
        table.add_row(*row)
    out = console()
    needed = out.measure(table, options=out.options.update_width(UNBOUNDED)).minimum
    if needed > out.width:
        table.width = needed
    out.print(table, crop=False)


def print_line(text: str) -> None:
    """One line of results on stdout, written at once (a pipe or CI log sees it when it happens).

    Written plainly, as rich would write an unstyled line with soft wrap: a line stays one line in a
    log, whatever its width, and rich is not imported for it. Under live lines, stdout is rich's
    proxy, which puts the line above them.
    """
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


_documents_printed = 0


def print_json(data: Any) -> None:
    """One JSON document on stdout: with ``--json``, the only thing a task prints there."""
    global _documents_printed
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()
    _documents_printed += 1


def documents_printed() -> int:
    """How many JSON documents were printed so far: the task boundary prints a failure as one only if
    the task printed none (``--json`` answers with exactly one document, also on failure)."""
    return _documents_printed


# --- work in progress ----------------------------------------------------------------------


@dataclass(eq=False)
class _Line:
    text: Callable[[], str]
    since: float
    plain_every: float | None
    next_plain: float


class _Board:
    """The process's lines about work in progress, drawn live or printed plainly (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._lines: list[_Line] = []
        self._users = 0
        self._live: Any = None
        self._bars: Any = None
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    # opening and closing: the first user opens, the last one closes

    def enter(self) -> None:
        with self._lock:
            self._users += 1
            if self._users > 1 or _quiet:
                return
            if is_live():
                from rich.live import Live

                self._live = Live(get_renderable=self._render, console=console(stderr=True),
                                  refresh_per_second=LIVE_REFRESH, transient=True,
                                  redirect_stdout=True, redirect_stderr=True)
                self._live.start()
            else:
                self._stop.clear()
                self._ticker = threading.Thread(target=self._tick, name="console-ticker", daemon=True)
                self._ticker.start()

    def leave(self) -> None:
        with self._lock:
            self._users -= 1
            if self._users:
                return
            live, self._live = self._live, None
            ticker, self._ticker = self._ticker, None
            self._bars = None
        if live is not None:
            live.stop()
        if ticker is not None:
            self._stop.set()
            ticker.join()

    def add(self, line: _Line) -> None:
        with self._lock:
            self._lines.append(line)

    def remove(self, line: _Line) -> None:
        with self._lock:
            self._lines.remove(line)

    def bars(self) -> Any:
        """The rich ``Progress`` whose tasks are the bars (never started itself: drawn by the board)."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with self._lock:
            if self._bars is None:
                self._bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                      _rate_column(), TimeRemainingColumn(), console=console(stderr=True))
            return self._bars

    # drawing

    def _render(self) -> Any:
        from rich.console import Group
        from rich.text import Text

        now = time.monotonic()
        with self._lock:
            texts = [line.text() for line in self._lines if now - line.since >= LIVE_AFTER]
            bars = self._bars if self._bars is not None and any(t.visible for t in self._bars.tasks) else None
        parts: list[Any] = [Text(text) for text in texts]
        if bars is not None:
            parts.append(bars)
        return Group(*parts)

    def _tick(self) -> None:
        while not self._stop.wait(0.25):
            now = time.monotonic()
            with self._lock:
                due = [line for line in self._lines if line.plain_every is not None and now >= line.next_plain]
                for line in due:
                    line.next_plain = now + (line.plain_every or PLAIN_EVERY)
                texts = [line.text() for line in due]
            for text in texts:
                if not _quiet:
                    console(stderr=True).print(text, soft_wrap=True)


def _rate_column() -> Any:
    from rich.progress import ProgressColumn
    from rich.text import Text

    class _RateColumn(ProgressColumn):
        """Items per second (rich's own speed column counts bytes)."""

        def render(self, task: Any) -> Text:
            return Text(f"{task.speed:,.0f}/s" if task.speed else "")

    return _RateColumn()


_board = _Board()


@contextlib.contextmanager
def activity() -> Iterator[None]:
    """Keep the board open for a block (``invoke up`` holds it for the whole run); nested blocks share it."""
    _board.enter()
    try:
        yield
    finally:
        _board.leave()


@contextlib.contextmanager
def status_line(text: Callable[[], str], plain_every: float | None = PLAIN_EVERY) -> Iterator[None]:
    """A line about work in progress while the block runs; ``text`` is called each time it is drawn.

    In a terminal the line is live (redrawn, cleared at the end); otherwise it is
    printed every ``plain_every`` seconds, first after ``plain_every`` (never when None).
    """
    now = time.monotonic()
    line = _Line(text, now, plain_every, now + (plain_every or 0.0))
    with activity():
        _board.add(line)
        try:
            yield
        finally:
            _board.remove(line)


@contextlib.contextmanager
def progress(total: int | None, description: str, threshold: int = 0) -> Iterator[Callable[[int], None]]:
    """Show long work on ``total`` items: done of total, rate and time left; yields ``advance(count)``.

    Work on at most ``threshold`` items is quick and shows nothing. A known
    total is a bar in a terminal; an unknown one (None) a line counting items
    that shows once the work has lasted ``LIVE_AFTER``. Without a terminal,
    either is a plain line every ``PLAIN_EVERY`` seconds.
    """
    if _quiet or (total is not None and total <= threshold):
        yield lambda count: None
        return
    if not is_live():
        with _plain_progress(total, description) as advance:
            yield advance
        return
    with activity():
        bars = _board.bars()
        task_id = bars.add_task(description, total=total, visible=total is not None)

        def line() -> str:
            task = next(task for task in bars.tasks if task.id == task_id)
            return describe_progress(description, int(task.completed), total, task.speed, task.time_remaining)

        try:
            with contextlib.nullcontext() if is_live() and total is not None else status_line(line):
                yield lambda count: bars.advance(task_id, count)
        finally:
            bars.remove_task(task_id)


@contextlib.contextmanager
def _plain_progress(total: int | None, description: str) -> Iterator[Callable[[int], None]]:
    """Progress without a terminal: a plain line every ``PLAIN_EVERY`` seconds, counted here (no rich to import)."""
    lock = threading.Lock()
    began = time.monotonic()
    done = [0]

    def advance(count: int) -> None:
        with lock:
            done[0] += count

    def line() -> str:
        elapsed = time.monotonic() - began
        rate = done[0] / elapsed if elapsed > 0 and done[0] else None
        remaining = (total - done[0]) / rate if rate and total is not None else None
        return describe_progress(description, done[0], total, rate, remaining)

    with status_line(line):
        yield advance


def describe_progress(description: str, done: int, total: int | None, rate: float | None,
                      remaining: float | None) -> str:
    """The plain line for long work: ``writing t: 1,200/5,000 items, 800/s, 5s left`` (``1,200 items`` when unknown)."""
    text = f"{description}: {done:,}" + (f"/{total:,}" if total is not None else "") + " items"
    if rate:
        text += f", {rate:,.0f}/s"
    if remaining is not None:
        text += f", {remaining:,.0f}s left"
    return text
