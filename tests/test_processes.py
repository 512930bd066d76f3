"""Ports and detached processes (bootstrap/processes.py), with real sockets and real processes.

The detached server here is a small Python program of the test's own that
listens on its port until stopped; started, found and stopped as the services are.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import time
from pathlib import Path
from typing import Iterator, Sequence

import pytest

from bootstrap.processes import (
    BIND_ADDRESS, DetachedServer, choose_port, command_line, find_owned_process, flag_value, free_port, log_tail,
    port_is_free, process_alive, start_detached, stop_process,
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
    with _taken(remembered):
        assert choose_port(state, "moto", preferred) == preferred
        assert state.get("ports", "moto") == preferred
        with _taken(preferred):
            chosen = choose_port(state, "moto", preferred)
    assert chosen not in (remembered, preferred) and state.get("ports", "moto") == chosen
    # Moving to another port is said, once, in the user's words.
    assert capsys.readouterr().err.count(f"port {preferred} was taken; moto listens on {chosen}") == 1


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
    assert log_tail(None) == "" and log_tail(log) == ""
    log.write_text("".join(f"line {n}\n" for n in range(100)))
    assert log_tail(log, lines=3) == "line 97\nline 98\nline 99"
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
