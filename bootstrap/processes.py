"""Ports and detached processes: the ground floor every embedded service stands on.

A detached server is started in its own session with its output appended to a
log file, and carries two environment variables naming the state folder and
the service it was started for, so that it can be found (and stopped) even
when the state folder with its pid file is gone. Stopping is gentle, then
firm: terminate, wait, kill, wait.

A port is ours only while the process we started (or one of its children)
holds the listening socket on it: ``port_listeners`` matches the kernel's
socket tables with our processes' open files, and readiness
(``bootstrap.readiness.OwnProcess``) trusts an answer on the port only then. A port another program took between
choosing it and binding it is given up for a free one (``start_until_ready``).

Assumes Linux (psutil reads other processes' environments).
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import time
from pathlib import Path
from typing import Callable, Sequence

from .console import say
from .errors import PortLostError, os_errors
from .state import StateDir

BIND_ADDRESS = "127.0.0.1"
# What a server writes to its log when another program holds its port (Postgres, moto, Java alike: strerror).
ADDRESS_IN_USE = "Address already in use"

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
    # The app's URL changes with the port: one line says so, and why.
    if remembered and port != remembered:
        say(f"{service}: port {remembered} (from its last start) is taken by another program; using port {port}")
    elif not remembered and port != preferred:
        say(f"{service}: port {preferred} is taken by another program; using port {port}")
    if port != remembered:
        state.update("ports", service, value=port)
    return port


def lost_port(service: str, port: int) -> PortLostError:
    """The error for a server whose port another program took between choosing and binding it (its log says so)."""
    return PortLostError(f"{service}: port {port} was taken by another program before the server started for it "
                         f"could listen there ({ADDRESS_IN_USE})")


# The kernel's tables of TCP sockets (Linux): one line per socket, with its local address, state and inode.
SOCKET_TABLES = (Path("/proc/net/tcp"), Path("/proc/net/tcp6"))
LISTEN_STATE = "0A"


def port_listeners(port: int, pid: int) -> set[int | None]:
    """Who holds a listening TCP socket on ``port`` (any address): ``pid`` or one of its children (a wrapper's
    server) when it does, and None for every other program (``describe_listeners`` names them, slowly).

    On Linux: the listening sockets' inodes from the kernel's tables, readable by anyone, matched with the socket
    inodes of our own processes' open files, which a user may always read. psutil's table of every socket would
    read every process's open files (1.4 s here with 365 processes), and needs privileges on some systems.
    The tables are read first: a socket of ours opened after them is not listening yet, never a stranger.
    """
    inodes = _listening_inodes(port)
    if inodes is None:
        return _port_listeners_elsewhere(port, process_tree(pid))
    owner = dict.fromkeys(_socket_inodes(pid) & inodes, pid)
    if inodes - owner.keys():  # someone else, or a child of ours (looking at children reads every process)
        owner.update({inode: child for child in process_tree(pid) - {pid}
                      for inode in _socket_inodes(child) & inodes})
    return {owner.get(inode) for inode in inodes}


def _listening_inodes(port: int) -> set[int] | None:
    """The inodes of the listening TCP sockets on ``port``; None without the kernel's tables (not Linux)."""
    inodes, read = set(), False
    for table in SOCKET_TABLES:
        try:
            lines = table.read_text().splitlines()[1:]
        except FileNotFoundError:  # no IPv6, or not Linux
            continue
        read = True
        for line in lines:
            # sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode ...
            fields = line.split()
            if fields[3] == LISTEN_STATE and int(fields[1].rsplit(":", 1)[1], 16) == port:
                inodes.add(int(fields[9]))
    return inodes if read else None


def _socket_inodes(pid: int) -> set[int]:
    """The inodes of the sockets process ``pid`` holds open (none when it is gone)."""
    folder = f"/proc/{pid}/fd"
    try:
        fds = os.listdir(folder)
    except OSError:
        return set()
    inodes = set()
    for fd in fds:
        try:
            target = os.readlink(f"{folder}/{fd}")
        except OSError:  # closed meanwhile
            continue
        if target.startswith("socket:["):
            inodes.add(int(target[len("socket:["):-1]))
    return inodes


def _port_listeners_elsewhere(port: int, ours: set[int]) -> set[int | None]:
    """``port_listeners`` without the kernel's tables (macOS): psutil's table of every socket, whose pids need
    privileges there, and our own processes asked directly, after it (a socket opened meanwhile shows without its
    process). Without privileges a stranger goes unseen, and ours is simply not listening until it can."""
    import psutil

    try:
        # A socket without an address has an empty tuple as its laddr: getattr passes over it.
        every = {tuple(c.laddr): c.pid for c in psutil.net_connections("tcp")
                 if c.status == psutil.CONN_LISTEN and getattr(c.laddr, "port", None) == port}
    except psutil.AccessDenied:
        every = {}
    own = {tuple(address): pid for pid in ours for address in _listening(pid, port)}
    return {own.get(address) for address in every} | set(own.values())


def _listening(pid: int, port: int) -> list[tuple[str, int]]:
    """The addresses on ``port`` where process ``pid`` listens (none when it is gone)."""
    import psutil

    try:
        connections = psutil.Process(pid).net_connections("tcp")
    except psutil.Error:
        return []
    return [c.laddr for c in connections if c.status == psutil.CONN_LISTEN and c.laddr.port == port]


def describe_listeners(port: int, pid: int) -> str:
    """The other programs than ``pid`` and its children listening on ``port``, for an error: program and pid each
    (a slow look, at every process's sockets: only once something is wrong)."""
    import psutil

    try:
        pids = {c.pid for c in psutil.net_connections("tcp")
                if c.status == psutil.CONN_LISTEN and getattr(c.laddr, "port", None) == port} - process_tree(pid)
    except psutil.AccessDenied:
        pids = set()
    return ", ".join(sorted(describe_process(pid) for pid in pids or {None}))


def process_tree(pid: int) -> set[int]:
    """``pid`` and its descendants (a wrapper's server, Postgres's backends); empty when ``pid`` is gone."""
    import psutil

    try:
        return {pid, *(child.pid for child in psutil.Process(pid).children(recursive=True))}
    except psutil.Error:
        return set()


def describe_process(pid: int | None) -> str:
    """A stranger on a port, as an error names it: its pid and program, or that it is another user's."""
    import psutil

    if pid is None:
        return "a program this user may not look into"
    try:
        return f"{psutil.Process(pid).name()} (pid {pid})"
    except psutil.Error:
        return f"pid {pid}"


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
    _until_it_shows_its_command_line(process)
    return process.pid


def _until_it_shows_its_command_line(process: subprocess.Popen[bytes], limit: float = 5.0) -> None:
    """Until the new process shows its command line (or exits), at most ``limit`` seconds.

    For a few milliseconds after exec the system shows an empty command line; our processes are recognised by
    theirs (a recycled pid is not ours), so until then a started server would be taken for one that is gone.
    """
    import psutil

    deadline = time.monotonic() + limit
    while time.monotonic() < deadline and process.poll() is None:
        try:
            if psutil.Process(process.pid).cmdline():
                return
        except psutil.Error:
            return
        time.sleep(0.005)


def stop_process(pid: int, grace: float = 5.0) -> None:
    """Stop gently, then firmly: terminate, wait, kill, wait; its children too (a wrapper's server outlives it)."""
    import psutil

    try:
        process = psutil.Process(pid)
        family = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return
    for signal_them in (psutil.Process.terminate, psutil.Process.kill):
        for member in family:
            with contextlib.suppress(psutil.NoSuchProcess):
                signal_them(member)
        _, family = psutil.wait_procs(family, timeout=grace)
        if not family:
            return


def log_size(path: Path) -> int:
    """Where the next lines of a log will begin: its size now (0 when there is none yet)."""
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def log_tail(path: Path | None, lines: int = 15, start: int = 0) -> str:
    """The last ``lines`` of a log, of what was written from byte ``start`` on (one start's lines, not an earlier's)."""
    if path is None or not path.exists():
        return ""
    with open(path, "rb") as handle:
        handle.seek(0, os.SEEK_END)
        handle.seek(max(start, handle.tell() - 8192))
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

    # A start that lost its port to another program tries again on a free one, this many times in all.
    PORT_TRIES = 3

    def __init__(self, state: StateDir, preferred_port: int) -> None:
        self.state = state
        self.preferred_port = preferred_port
        self._port: int | None = state.get("ports", self.name)
        # Where this start's lines begin in the log (None: not started by this run); a failure shows only those.
        self.log_start: int | None = None

    def pid(self) -> int | None:
        raise NotImplementedError

    def url(self) -> str:
        raise NotImplementedError

    def stop(self, save: bool = False) -> None:
        raise NotImplementedError

    def mark_log(self) -> None:
        """A start begins now: what its log says from here on is this start's."""
        self.log_start = log_size(self.log_path)

    def start_until_ready(self, launch: Callable[[], bool], wait: Callable[[], None]) -> bool:
        """``launch`` (which starts the process unless it runs, and says whether it did), then ``wait`` for it.

        When another program took the port first (``PortLostError``), what was started is stopped and started
        again on a free port, which is remembered and named in one line. Returns whether it was started now.
        """
        started, tries = False, 1
        while True:
            try:
                started = launch() or started
                wait()
                return started
            except PortLostError as lost:
                if tries == self.PORT_TRIES:
                    raise
                tries += 1
                self.stop()
                self._port = free_port()
                self.state.update("ports", self.name, value=self._port)
                say(f"{str(lost).splitlines()[0]}; starting it again on port {self._port}")

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
            self.mark_log()
            start_detached(self.command(self._port), self.state, self.name)
        return True

    def stop(self, save: bool = False) -> None:
        """Stop gently, then firmly. ``save`` is for servers that hold data in memory only (moto); here nothing to save."""
        pid = self.pid()
        if pid is not None:
            stop_process(pid)
        if self.state.run.exists():
            self.state.pid_file(self.name).unlink(missing_ok=True)
