"""Readiness: what a probe's failure says, and one deadline shared by everything that waits for one service."""

from __future__ import annotations

import contextlib
import os
import socket
import sys
from pathlib import Path

import pytest

from bootstrap.config import Endpoints
from bootstrap.errors import NotReadyError, PortLostError, ServiceError, ServiceExitedError
from bootstrap.processes import free_port, log_size, process_alive, start_detached, stop_process
from bootstrap.readiness import (
    Deadline, OwnProcess, PostgresProbe, dynamodb_probe, raise_together, wait_until_ready,
)
from bootstrap.state import StateDir


def test_readiness_timeout_names_service_endpoint_error_and_log(tmp_path) -> None:
    log = tmp_path / "postgres.log"
    log.write_text("FATAL: something the user should see\n")
    port = free_port()
    probe = PostgresProbe(f"postgresql://postgres:sekret@localhost:{port}/postgres", log)
    with pytest.raises(NotReadyError) as caught:
        wait_until_ready(probe, Deadline(0.5))
    message = str(caught.value)
    assert f"postgres at postgresql://postgres:***@localhost:{port}/postgres was not ready after 0.5s" in message
    assert "last error: OperationalError" in message
    assert str(log) in message and "something the user should see" in message
    assert "sekret" not in message


def test_dynamodb_probe_reports_the_endpoint() -> None:
    endpoint = f"http://localhost:{free_port()}"
    with pytest.raises(NotReadyError, match=f"dynamodb at {endpoint} was not ready"):
        wait_until_ready(dynamodb_probe(Endpoints("postgresql://x@h/db", endpoint, "us-east-1")), Deadline(0.3))


class _Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class _RefusingProbe:
    """Refuses every try, and each try moves the test's clock on by ``cost`` seconds."""

    service, endpoint, log_path, hint = "x", "http://x", None, "start x"

    def __init__(self, clock: _Clock, cost: float) -> None:
        self.clock, self.cost, self.tries = clock, cost, []

    def probe(self) -> None:
        self.tries.append(self.clock.now)
        self.clock.now += self.cost
        raise ConnectionRefusedError(111, "Connection refused")


def test_the_probe_after_a_start_gets_only_what_remains_of_the_one_deadline() -> None:
    """The service's start used 9.5 s of its 10: the probe after it stops at the same deadline, and says so.

    The probe is the test's own (a stand-in no real server can be): it moves the deadline's clock, so the
    arithmetic is exact and nothing is timed.
    """
    clock = _Clock(100.0)
    deadline = Deadline(10.0, started=100.0, clock=clock)
    clock.now = 109.5  # launching the service took 9.5 s
    probe = _RefusingProbe(clock, cost=0.3)
    with pytest.raises(NotReadyError) as caught:
        wait_until_ready(probe, deadline, show=False)
    assert probe.tries == [109.5, 109.8]  # the third would start after the deadline: no second full wait
    message = str(caught.value)
    assert message.startswith("x at http://x was not ready after 10s.\n")
    assert "  waited 10.1s of 10s (9.5s of it starting the service, before this check)\n" in message
    assert "last error: ConnectionRefusedError" in message and message.endswith("hint: start x")


def test_a_probe_tries_once_even_when_the_start_used_up_the_deadline() -> None:
    """Then the error says why that try failed, not only that time ran out (the probe is the test's own, as above)."""
    clock = _Clock(0.0)
    deadline = Deadline(5.0, started=0.0, clock=clock)
    clock.now = 6.0
    probe = _RefusingProbe(clock, cost=0.1)
    with pytest.raises(NotReadyError, match=r"waited 6.1s of 5s .*\n  last error: ConnectionRefusedError"):
        wait_until_ready(probe, deadline, show=False)
    assert probe.tries == [6.0]


def test_failures_are_raised_together() -> None:
    raise_together([None, None])
    with pytest.raises(NotReadyError) as caught:
        raise_together([NotReadyError("postgres at a"), None, NotReadyError("moto at b")])
    assert str(caught.value) == "postgres at a\n\nmoto at b"
    with pytest.raises(ServiceError, match="pull failed"):
        raise_together([NotReadyError("postgres at a"), ServiceError("pull failed")])


def test_a_server_whose_port_was_taken_before_it_bound_says_so(tmp_path: Path) -> None:
    """moto's own words when another program bound its port first; the readiness error turns them into a fix."""
    log = tmp_path / "moto.log"
    log.write_text("OSError: [Errno 98] Address already in use\n")
    endpoints = Endpoints("postgresql://u:p@localhost:1/db", f"http://localhost:{free_port()}", "us-east-1")
    with pytest.raises(NotReadyError) as caught:
        wait_until_ready(dynamodb_probe(endpoints, log), Deadline(0.5))
    assert "hint: another program took the port: run `invoke up` again, it chooses a free port" in str(caught.value)


# --- our own process: alive, and the one listening ------------------------------------------------


def _server(tmp_path: Path, script: str) -> tuple[StateDir, int, int]:
    """A process of ours running ``script``; its log begins with an earlier start's line about a taken port."""
    state = StateDir(tmp_path / ".cruddur").ensure()
    state.log_file("server").write_text("an earlier start: OSError: [Errno 98] Address already in use\n")
    start = log_size(state.log_file("server"))
    return state, start_detached([sys.executable, "-c", script], state, "server"), start


def _own(state: StateDir, pid: int, start: int, port: int) -> OwnProcess:
    inner = dynamodb_probe(Endpoints("", f"http://localhost:{port}", "us-east-1"), state.log_file("server"))
    return OwnProcess(inner, "server", lambda: pid if process_alive(pid) else None, port, start)


def test_a_process_of_ours_that_exits_is_said_at_once_with_its_starts_log(tmp_path: Path) -> None:
    state, pid, start = _server(tmp_path, "import sys; print('FATAL: boom', flush=True); sys.exit(3)")
    deadline = Deadline(600)
    with pytest.raises(ServiceExitedError) as caught:
        wait_until_ready(_own(state, pid, start, free_port()), deadline, show=False)
    message = str(caught.value)
    assert not isinstance(caught.value, PortLostError)
    assert "the process this workspace started for it is gone (it exited during its start)" in message
    assert "| FATAL: boom" in message and str(state.log_file("server")) in message
    assert "Address already in use" not in message  # an earlier start's line is not this one's
    assert deadline.elapsed() < 60, "the exit was waited out instead of said at once"


def test_a_process_of_ours_that_could_not_bind_its_port_lost_it(tmp_path: Path) -> None:
    state, pid, start = _server(tmp_path, "print('OSError: [Errno 98] Address already in use')")
    port = free_port()
    with pytest.raises(PortLostError, match=f"^server: port {port} was taken by another program before the server "
                                            "started for it could listen there"):
        wait_until_ready(_own(state, pid, start, port), Deadline(600), show=False)


def test_a_stranger_on_our_port_is_said_at_once_and_never_asked(tmp_path: Path) -> None:
    state, pid, start = _server(tmp_path, "import time; time.sleep(600)")
    try:
        with contextlib.closing(socket.socket()) as stranger:
            stranger.bind(("127.0.0.1", 0))
            stranger.listen()
            port = stranger.getsockname()[1]
            with pytest.raises(PortLostError, match=f"^server: port {port} is held by another program, .*"
                                                    f"\\(pid {os.getpid()}\\), not by the process this workspace "
                                                    "started$"):
                wait_until_ready(_own(state, pid, start, port), Deadline(600), show=False)
            stranger.setblocking(False)
            with pytest.raises(BlockingIOError):
                stranger.accept()  # nobody connected: the stranger was never asked
    finally:
        stop_process(pid)
