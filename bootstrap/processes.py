"""Ports and detached processes: the ground floor every embedded service stands on.

A detached server is started in its own session with its output appended to a
log file, and carries two environment variables naming the state folder and
the service it was started for, so that it can be found (and stopped) even
when the state folder with its pid file is gone. Stopping is gentle, then
firm: terminate, wait, kill, wait.

Assumes Linux (psutil reads other processes' environments).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
from pathlib import Path
from typing import Sequence

from .console import say
from .errors import os_errors
from .state import StateDir


BIND_ADDRESS = "127.0.0.1"

# Set in the environment of every process we start, so that our processes can
# be found (and stopped) even when the state folder with their pid files is gone.
OWNER_VARIABLE = "CRUDDUR_SERVICE_OWNER"
SERVICE_VARIABLE = "CRUDDUR_SERVICE_NAME"


# --- ports -------------------------------------------------------------------


def port_is_free(port: int) -> bool:
    """True when nothing listens on ``port`` of the loopback interface."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((BIND_ADDRESS, port))
        except OSError:
            return False
    return True


def free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind((BIND_ADDRESS, 0))
        return sock.getsockname()[1]


def choose_port(state: StateDir, service: str, preferred: int) -> int:
    """The remembered port if still usable, else ``preferred`` if free, else any free port; remembered."""
    remembered = state.get("ports", service)
    for candidate in (remembered, preferred):
        if candidate and port_is_free(candidate):
            port = candidate
            break
    else:
        port = free_port()
        say(f"port {preferred} was taken; {service} listens on {port}")
    if port != remembered:
        state.update("ports", service, value=port)
    return port


# --- processes ---------------------------------------------------------------


def process_alive(pid: int) -> bool:
    import psutil

    try:
        process = psutil.Process(pid)
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def command_line(pid: int) -> str:
    import psutil

    try:
        return " ".join(psutil.Process(pid).cmdline())
    except psutil.Error:
        return ""


def find_owned_process(state_root: Path, service: str) -> int | None:
    """The pid of ``service`` started by ``start_detached`` for ``state_root``, found by scanning processes."""
    import psutil

    for process in psutil.process_iter(["pid"]):
        try:
            environ = process.environ()
        except psutil.Error:
            continue
        if environ.get(OWNER_VARIABLE) == str(state_root) and environ.get(SERVICE_VARIABLE) == service:
            return process.info["pid"]
    return None


def flag_value(pid: int, flags: Sequence[str]) -> int | None:
    """The number after one of ``flags`` (``-p``, ``-port``) on a running process's command line."""
    words = command_line(pid).split()
    for flag, value in zip(words, words[1:]):
        if flag in flags and value.isdigit():
            return int(value)
    return None


def start_detached(command: Sequence[str], state: StateDir, service: str) -> int:
    """Start ``command`` in its own session, logging to the service's log file; write and return its pid."""
    with open(state.log_file(service), "ab") as log_file:
        process = subprocess.Popen(
            list(command), stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True,
            env={**os.environ, OWNER_VARIABLE: str(state.root), SERVICE_VARIABLE: service},
        )
    state.pid_file(service).write_text(f"{process.pid}\n")
    return process.pid


def stop_process(pid: int, grace: float = 5.0) -> None:
    """Stop gently, then firmly: terminate, wait, kill, wait."""
    import psutil

    try:
        process = psutil.Process(pid)
        process.terminate()
        try:
            process.wait(grace)
        except psutil.TimeoutExpired:
            process.kill()
            process.wait(grace)
    except psutil.NoSuchProcess:
        return


def log_tail(path: Path | None, lines: int = 15) -> str:
    if path is None or not path.exists():
        return ""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(0, handle.tell() - 8192))
        text = handle.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


class LocalProcess:
    """A service that runs as a local process of ours: its log file and its port, chosen once and remembered.

    Subclasses name the service, the roles it serves ("postgres", "dynamodb",
    "cognito"), the flag that carries the port on its command line, and how
    to find their running process (``pid``).
    """

    name: str
    roles: tuple[str, ...]
    port_flags: tuple[str, ...]
    what: str  # what serves the endpoint, as a readiness failure names it

    def __init__(self, state: StateDir, preferred_port: int) -> None:
        self.state = state
        self.preferred_port = preferred_port
        self._port: int | None = state.get("ports", self.name)

    def pid(self) -> int | None:
        raise NotImplementedError

    @property
    def log_path(self) -> Path:
        return self.state.log_file(self.name)

    @property
    def port(self) -> int:
        if self._port is None and not self.state.state_file.exists():
            # The state file is gone; a running server still knows its port.
            pid = self.pid()
            self._port = flag_value(pid, self.port_flags) if pid else None
        return self._port or self.preferred_port

    def hint(self) -> str:
        """What serves the endpoint and the next step, for a readiness failure."""
        return (f"served by {self.what} on port {self.port}; see `invoke status` and the log above; "
                "`invoke down` then `invoke up` restarts it")

    def purge(self) -> None:
        """Nothing to do: a local process keeps all its data in the state folder."""


class DetachedServer(LocalProcess):
    """A server we start detached with a pid file of ours, and stop gently then firmly.

    Subclasses add a ``marker`` that its command line contains (so a recycled
    pid is not taken for ours) and the ``command`` that starts it on a port.
    ``launch`` only starts the process: the service classes (``bootstrap.services``)
    wait for it to answer, under their one deadline.
    """

    marker: str

    def command(self, port: int) -> Sequence[str]:
        raise NotImplementedError

    def url(self) -> str:
        return f"http://localhost:{self.port}"

    def pid(self) -> int | None:
        try:
            pid = int(self.state.pid_file(self.name).read_text().strip())
        except (FileNotFoundError, ValueError):
            return find_owned_process(self.state.root, self.name)
        return pid if process_alive(pid) and self.marker in command_line(pid) else None

    def is_running(self) -> bool:
        return self.pid() is not None

    def launch(self) -> bool:
        """Start the process unless it runs; whether it was started now. Readiness is the service's to wait for."""
        self.state.ensure()
        if self.is_running():
            return False
        with os_errors(f"{self.name}: starting"):
            self.state.pid_file(self.name).unlink(missing_ok=True)
            self._port = choose_port(self.state, self.name, self.preferred_port)
            start_detached(self.command(self._port), self.state, self.name)
        return True

    def stop(self, save: bool = False) -> None:
        """Stop gently, then firmly. ``save`` is for servers that hold data in memory only (moto); here nothing to save."""
        pid = self.pid()
        if pid is not None:
            stop_process(pid)
        if self.state.run.exists():
            self.state.pid_file(self.name).unlink(missing_ok=True)
