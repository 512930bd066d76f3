"""What `invoke up` shows while it works: in a terminal (a real pseudo-terminal) and in a pipe.

The end-to-end tests read the output as it is written and check what is on
screen *before* the run ends: the line about a service that does not answer
(with its count of seconds going up), a step's row while later steps have not
run yet. They never time anything: the run's own deadline ends the silent-
listener runs, and the other runs are held at a known point (a stopped moto, a
locked table) until the test has looked.
"""

from __future__ import annotations

import fcntl
import os
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from typing import Callable

import pytest

from bootstrap import console
from bootstrap.readiness import Deadline, PostgresProbe, Waiting, describe_error
from bootstrap.up.steps import STEPS
from tests.helpers import PROJECT_ROOT, Cli
from tests.test_faults import Listener

ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
# A bound on waiting for output that must come; only a broken run gets near it.
PATIENCE = 120.0


class Run:
    """``invoke`` in a separate process whose output (a pseudo-terminal or a pipe) is read as it comes."""

    def __init__(self, cli: Cli, *args: str, terminal: bool, **extra_env: str) -> None:
        env = {**cli.env, "TERM": "xterm", **extra_env}
        if terminal:
            reader, writer = os.openpty()
            # A wide screen, so that a line is one line and the test can read it whole.
            fcntl.ioctl(writer, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
            streams = {"stdin": writer, "stdout": writer, "stderr": writer}
        else:
            reader, writer = os.pipe()
            streams = {"stdin": subprocess.DEVNULL, "stdout": writer, "stderr": writer}
        self.process = subprocess.Popen([sys.executable, "-m", "invoke", *args], cwd=PROJECT_ROOT, env=env,
                                        start_new_session=True, **streams)
        os.close(writer)
        self.reader = reader
        self.raw = ""

    @property
    def text(self) -> str:
        """What was written so far, without the terminal's control sequences."""
        return ESCAPES.sub("", self.raw).replace("\r", "")

    def read_until(self, seen: Callable[[str], bool]) -> bool:
        """Read until ``seen(text)`` holds (True) or the output ends (False)."""
        deadline = time.monotonic() + PATIENCE
        while not seen(self.text):
            if time.monotonic() > deadline:
                raise AssertionError(f"gave up waiting; output so far:\n{self.text}")
            ready, _, _ = select.select([self.reader], [], [], 1.0)
            if not ready:
                continue
            try:
                chunk = os.read(self.reader, 65536)
            except OSError:  # a pseudo-terminal whose other side closed
                chunk = b""
            if not chunk:
                return seen(self.text)
            self.raw += chunk.decode("utf-8", "replace")
        return True

    def finish(self) -> int:
        self.read_until(lambda _: False)
        os.close(self.reader)
        return self.process.wait(timeout=PATIENCE)

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def silent(cli: Cli) -> Callable[..., Run]:
    """``up`` against an external backend whose Postgres and AWS endpoints accept and never answer."""
    listeners: list[Listener] = []
    runs: list[Run] = []

    def start(timeout: str, terminal: bool) -> Run:
        listener = Listener()
        listeners.append(listener)
        run = Run(cli, "up", "--backend", "external", "--timeout", timeout, terminal=terminal,
                  CONNECTION_URL=f"postgresql://postgres:sekret@127.0.0.1:{listener.port}/cruddur",
                  AWS_ENDPOINT_URL=f"http://127.0.0.1:{listener.port}")
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.kill()
    for listener in listeners:
        listener.close()


# How the failure at the deadline begins (the lines before it say "last error:", never this).
FAILURE = "error: postgres at "
WAITED = r"postgres at postgresql://postgres:\*\*\*@127\.0\.0\.1:\d+/postgres: not ready, waited (\d+)s of {}s"


def test_terminal_names_the_silent_service_and_counts_up_to_the_failure(silent) -> None:
    run = silent("10", terminal=True)
    # Before the failure is reported: the service, its masked endpoint, seconds waited, the last error.
    assert run.read_until(lambda text: "last error: no answer within 2s (timeout)" in text), run.text
    assert FAILURE not in run.text, run.text
    assert run.finish() == 1
    before_failure, failure = run.text.split(FAILURE, 1)
    counts = [int(n) for n in re.findall(WAITED.format(10), before_failure)]
    assert counts and counts == sorted(counts) and counts[-1] > counts[0], before_failure
    assert re.search(r"dynamodb at http://127\.0\.0\.1:\d+: not ready", before_failure), before_failure
    assert failure.startswith("postgresql://postgres:***@127.0.0.1") and "was not ready after 10s" in failure
    assert "served by an external service" in failure and "env CONNECTION_URL" in failure
    assert "sekret" not in run.text


def test_pipe_gets_a_plain_line_about_the_silent_service_before_the_failure(silent) -> None:
    run = silent("7", terminal=False)
    assert run.read_until(lambda text: re.search(WAITED.format(7), text) is not None), run.text
    assert FAILURE not in run.text, run.text
    assert run.finish() == 1
    assert "\x1b[" not in run.raw  # no terminal control sequences in a log
    line = next(line for line in run.text.splitlines() if re.match(WAITED.format(7), line))
    assert line.endswith("of 7s; last error: no answer within 2s (timeout)"), line


def test_terminal_shows_a_service_slow_to_answer_then_the_steps(cli: Cli) -> None:
    """The session's moto stopped (SIGSTOP) answers nothing until the test has seen the line about it."""
    cli("up")
    moto_pid = int((cli.state_dir / "run" / "moto.pid").read_text())
    os.kill(moto_pid, signal.SIGSTOP)
    run = Run(cli, "up", terminal=True)
    try:
        assert run.read_until(lambda text: re.search(r"dynamodb at http://localhost:\d+: not ready", text)), run.text
    finally:
        os.kill(moto_pid, signal.SIGCONT)
    assert run.finish() == 0, run.text
    # Each step's row once, in order (live lines were drawn and erased around them).
    rows = re.findall(rf"({'|'.join(map(re.escape, STEPS))}) +(unchanged|passed) +\d", run.text)
    assert rows == [(step, "passed" if step == "verify" else "unchanged") for step in STEPS], run.text
    assert "ready in" in run.text.splitlines()[-1]


def test_pipe_gets_each_row_as_its_step_ends_and_quiet_only_the_summary(cli: Cli) -> None:
    """Observing the seeded users waits for the test's lock, after the services step: its row must be out already."""
    import psycopg

    cli("up")
    with psycopg.connect(cli.endpoints().postgres_url) as conn:
        conn.execute("lock table public.users in access exclusive mode")
        run = Run(cli, "up", terminal=False)
        assert run.read_until(lambda text: re.search(r"^services +unchanged", text, re.M) is not None), run.text
        assert "verify" not in run.text and "ready in" not in run.text, run.text
    assert run.finish() == 0, run.text
    assert re.search(r"^verify +passed .* spot checks passed", run.text, re.M), run.text

    quiet = cli("up", "--quiet")
    assert re.fullmatch(r"ready in \d+\.\d\ds \(0 writes\)\n", quiet.stdout) and quiet.stderr == "", quiet


# --- the lines themselves (plain values) -------------------------------------------------


def test_waiting_line_names_service_endpoint_seconds_and_last_error() -> None:
    probe = PostgresProbe("postgresql://postgres:sekret@db.example:5432/postgres")
    waiting = Waiting(probe, Deadline(15.0, started=100.0), started=100.0)
    assert waiting.line(now=101.2) == ("postgres at postgresql://postgres:***@db.example:5432/postgres: not ready, "
                                       "waited 1s of 15s; last error: no answer yet, 1.2s into the first try "
                                       "(a try gives up after 2s)")
    waiting.last_error = ConnectionRefusedError(111, "Connection refused")
    assert waiting.line(now=109.0).endswith("waited 9s of 15s; last error: connection refused")
    assert "waited 16s (deadline 15s passed, last try); last error" in waiting.line(now=116.5)


def test_errors_are_described_shortly() -> None:
    from botocore.exceptions import ClientError, ReadTimeoutError

    server_error = ClientError({"Error": {"Code": "InternalFailure"}, "ResponseMetadata": {"HTTPStatusCode": 500}},
                               "ListTables")
    assert describe_error(server_error) == "HTTP 500 InternalFailure"
    assert describe_error(ReadTimeoutError(endpoint_url="http://x")) == "no answer within 2s (timeout)"
    assert describe_error(RuntimeError("connection failed: ... port 5432 failed: Connection refused")) == \
        "connection refused"
    assert describe_error(RuntimeError("x" * 500)).startswith("RuntimeError: xxx")


def test_quiet_silences_progress_lines_but_not_warnings(capsys) -> None:
    console.console.cache_clear()
    with console.quiet():
        console.say("step done")
        console.warn("warning: data lost")
        with console.progress(10_000, "writing t") as advance:
            advance(10)
    assert capsys.readouterr().err == "warning: data lost\n"
    console.console.cache_clear()
