"""Ports and detached processes (bootstrap/processes.py), with real sockets and real processes.

The detached server here is a small Python program of the test's own that
listens on its port until stopped; started, found and stopped as the services are.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import socket
import sys
import time
from pathlib import Path
from typing import Iterator, Sequence

import psutil
import pytest

from bootstrap import processes
from bootstrap.processes import (
    BIND_ADDRESS, DetachedServer, choose_port, command_line, describe_listeners, describe_process,
    find_owned_process, flag_value, free_port, log_size, log_tail, port_is_free, port_listeners, process_alive,
    process_tree, start_detached, stop_process,
)
from bootstrap.state import StateDir

_LISTENER = """# cruddur-test-listener
import signal, socket, sys
if "--stubborn" in sys.argv:
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
server = socket.socket()
server.bind(("127.0.0.1", int(sys.argv[sys.argv.index("--port") + 1])))
server.listen()
print("listening", flush=True)
server.accept()
"""


class Listener(DetachedServer):
    """The test's own detached server; its command line carries the marker and its port after ``--port``."""

    name, marker, what = "listener", "cruddur-test-listener", "the test's listener"
    roles, port_flags = ("test",), ("--port",)

    def command(self, port: int) -> Sequence[str]:
        return [sys.executable, "-c", _LISTENER, "--port", str(port)]


@contextlib.contextmanager
def _taken(port: int = 0) -> Iterator[int]:
    """A port something else listens on, while the block runs."""
    with contextlib.closing(socket.socket()) as sock:
        sock.bind((BIND_ADDRESS, port))
        sock.listen()
        yield sock.getsockname()[1]


def _wait_for_log(state: StateDir, name: str, text: str) -> None:
    """Until the detached process wrote ``text`` to its log (it has started); a failure names the log."""
    for _ in range(600):
        if text in log_tail(state.log_file(name)):
            return
        time.sleep(0.05)
    raise AssertionError(f"{name} never wrote {text!r}; its log: {log_tail(state.log_file(name))!r}")


def _said(capsys: pytest.CaptureFixture[str]) -> str:
    """What was said on stderr since the last look, as one line (the console wraps at its width)."""
    return " ".join(capsys.readouterr().err.split())


# --- ports -------------------------------------------------------------------


def test_a_port_something_listens_on_is_not_free() -> None:
    with _taken() as port:
        assert not port_is_free(port)
    assert port_is_free(port)
    assert port_is_free(free_port())


def test_the_remembered_port_wins_then_the_preferred_one_then_any_free_one_which_is_remembered(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    state = StateDir(tmp_path)
    remembered, preferred = free_port(), free_port()
    state.update("ports", "moto", value=remembered)
    assert choose_port(state, "moto", preferred) == remembered
    assert _said(capsys) == ""
    with _taken(remembered):
        assert choose_port(state, "moto", preferred) == preferred
        assert state.get("ports", "moto") == preferred
        # The app's URL changes: one line says so.
        assert _said(capsys) == (f"moto: port {remembered} (from its last start) is taken by another program; "
                                 f"using port {preferred}")
        with _taken(preferred):
            chosen = choose_port(state, "moto", preferred)
    assert chosen not in (remembered, preferred) and state.get("ports", "moto") == chosen
    assert _said(capsys) == (f"moto: port {preferred} (from its last start) is taken by another program; "
                             f"using port {chosen}")


def test_a_taken_preferred_port_of_a_first_start_is_said_too(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    with _taken() as preferred:
        chosen = choose_port(StateDir(tmp_path), "postgres", preferred)
    assert _said(capsys) == f"postgres: port {preferred} is taken by another program; using port {chosen}"


# --- who listens on a port ----------------------------------------------------------


def test_the_listener_on_a_port_is_our_process_or_a_stranger(tmp_path: Path) -> None:
    state = StateDir(tmp_path / ".cruddur")
    server = Listener(state, free_port())
    try:
        server.launch()
        _wait_for_log(state, "listener", "listening")
        pid = server.pid()
        assert pid is not None and process_tree(pid) == {pid}
        assert port_listeners(server.port, pid) == {pid}
        # A stranger: here, this test's own process.
        with _taken() as taken:
            assert port_listeners(taken, pid) == {None}
            assert describe_listeners(taken, pid) == f"{psutil.Process().name()} (pid {os.getpid()})"
        assert port_listeners(free_port(), pid) == set()
    finally:
        server.stop()
    assert process_tree(pid) == set()
    assert describe_process(None) == "a program this user may not look into"


def _wrapped_listener(state: StateDir, port: int) -> int:
    """A shell that runs the listener as its child (``; :`` keeps the shell from exec'ing it): a wrapper's server."""
    command = f"{shlex.quote(sys.executable)} -c {shlex.quote(_LISTENER)} --port {port}; :"
    pid = start_detached(["sh", "-c", command], state, "wrapped")
    _wait_for_log(state, "wrapped", "listening")
    return pid


@pytest.fixture
def wrapped(tmp_path: Path) -> Iterator[tuple[int, int]]:
    """A wrapper of ours whose child listens: (the wrapper's pid, the port)."""
    port = free_port()
    pid = _wrapped_listener(StateDir(tmp_path).ensure(), port)
    yield pid, port
    stop_process(pid)


def test_a_child_of_our_process_listening_counts_as_ours(wrapped: tuple[int, int]) -> None:
    pid, port = wrapped
    tree = process_tree(pid)
    assert len(tree) == 2 and pid in tree
    assert port_listeners(port, pid) == tree - {pid}


@pytest.fixture
def without_kernel_tables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A system without Linux's socket tables (macOS): here, the tables are looked for where there are none."""
    monkeypatch.setattr(processes, "SOCKET_TABLES", (tmp_path / "no-such-table",))


def test_without_the_kernels_tables_psutil_finds_ours_and_strangers(wrapped: tuple[int, int],
                                                                     without_kernel_tables: None) -> None:
    pid, port = wrapped
    assert port_listeners(port, pid) == process_tree(pid) - {pid}
    with _taken() as taken:
        assert port_listeners(taken, pid) == {None}


def test_where_the_socket_table_needs_privileges_only_our_own_processes_are_asked(
        wrapped: tuple[int, int], without_kernel_tables: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """On macOS a user who is not root may not read the system's socket table (psutil raises AccessDenied).

    That system cannot run here, so its refusal is a stand-in; the processes asked instead are real.
    """
    pid, port = wrapped

    def refused(kind: str = "inet") -> list[object]:
        raise psutil.AccessDenied()

    monkeypatch.setattr(psutil, "net_connections", refused)
    assert port_listeners(port, pid) == process_tree(pid) - {pid}
    with _taken() as taken:
        assert port_listeners(taken, pid) == set()  # the stranger goes unseen: ours does not listen there
        assert describe_listeners(taken, pid) == "a program this user may not look into"


def test_a_socket_the_table_shows_without_its_process_is_ours_when_our_process_holds_it(
        wrapped: tuple[int, int], without_kernel_tables: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """psutil's table reads the processes before the sockets: a socket opened meanwhile shows with no pid.

    That moment cannot be caught on purpose, so the table here is the real one with every pid taken out.
    """
    pid, port = wrapped
    every_socket = psutil.net_connections
    monkeypatch.setattr(psutil, "net_connections",
                        lambda kind="inet": [c._replace(pid=None) for c in every_socket(kind)])
    assert port_listeners(port, pid) == process_tree(pid) - {pid}
    with _taken() as taken:
        assert port_listeners(taken, pid) == {None}  # a stranger stays one


# --- detached processes --------------------------------------------------------


def test_a_detached_server_is_started_once_found_and_stopped(tmp_path: Path) -> None:
    state = StateDir(tmp_path / ".cruddur")
    server = Listener(state, free_port())
    try:
        assert server.launch() is True
        pid = server.pid()
        assert pid is not None and state.pid_file("listener").read_text() == f"{pid}\n"
        _wait_for_log(state, "listener", "listening")
        assert server.launch() is False and server.pid() == pid
        assert server.port == state.get("ports", "listener") and not port_is_free(server.port)
        assert process_alive(pid) and "cruddur-test-listener" in command_line(pid)
        assert server.url() == f"http://localhost:{server.port}"
        assert server.hint().startswith(f"served by the test's listener on port {server.port}; ")

        # With the state folder gone, the process is still found by what its environment says, its port by its flags.
        state.pid_file("listener").unlink()
        state.state_file.unlink()
        again = Listener(state, free_port())
        assert find_owned_process(state.root, "listener") == pid and again.pid() == pid
        assert flag_value(pid, ("--port",)) == server.port == again.port
        again.stop()
        assert not process_alive(pid) and again.pid() is None and find_owned_process(state.root, "listener") is None
    finally:
        server.stop()


def test_a_pid_file_naming_another_program_is_not_taken_for_the_server(tmp_path: Path) -> None:
    """A recycled pid: alive, but not our server (its command line lacks the marker)."""
    state = StateDir(tmp_path).ensure()
    state.pid_file("listener").write_text(f"{os.getpid()}\n")
    assert Listener(state, free_port()).pid() is None


def test_a_process_that_ignores_terminate_is_killed_after_the_grace(tmp_path: Path) -> None:
    state = StateDir(tmp_path).ensure()
    pid = start_detached([sys.executable, "-c", _LISTENER, "--port", str(free_port()), "--stubborn"], state, "stubborn")
    _wait_for_log(state, "stubborn", "listening")
    stop_process(pid, grace=0.5)
    assert not process_alive(pid)
    stop_process(pid)  # already gone: nothing to do


def test_a_log_tail_is_the_last_lines_and_empty_without_a_log(tmp_path: Path) -> None:
    log = tmp_path / "service.log"
    assert log_tail(None) == "" and log_tail(log) == "" and log_size(log) == 0
    log.write_text("".join(f"line {n}\n" for n in range(100)))
    assert log_tail(log, lines=3) == "line 97\nline 98\nline 99"
    start = log_size(log)
    assert log_tail(log, start=start) == ""  # one start's lines only: none yet
    with open(log, "a") as handle:
        handle.write("this start\n")
    assert log_tail(log, start=start) == "this start"
    log.write_bytes(b"x" * 20_000 + b"\nbad byte \xff\nlast\n")
    assert log_tail(log, lines=2) == "bad byte \ufffd\nlast"


@pytest.mark.parametrize("words, expected", [(["--port", "8001"], 8001), (["-p", "x"], None), ([], None)])
def test_a_flag_value_is_the_number_after_the_flag_on_the_command_line(tmp_path: Path, words: list[str],
                                                                        expected: int | None) -> None:
    state = StateDir(tmp_path).ensure()
    pid = start_detached([sys.executable, "-c", "import time; time.sleep(600)", *words], state, "reader")
    try:
        assert flag_value(pid, ("--port", "-p")) == expected
    finally:
        stop_process(pid)


def test_stopping_a_wrapper_stops_the_server_it_runs_too(tmp_path: Path) -> None:
    state = StateDir(tmp_path).ensure()
    pid = _wrapped_listener(state, free_port())
    family = process_tree(pid)
    stop_process(pid)
    assert not any(process_alive(member) for member in family)
