"""The warm starter: a resident process that has already imported what ``invoke up`` needs.

Most of a warm ``invoke up`` is start-up: importing botocore, psycopg and rich
and loading botocore's service models is about 0.4 s of a 0.65 s run; the
reads that decide "nothing to do" and the spot checks take about 0.1 s. So
after an ``up``, a small background process (like the services, it outlives
``invoke`` and stops with ``invoke down``) imports all of that once and waits
on a Unix socket. The next ``invoke up`` hands it its settings inputs, its
environment, working folder and its stdin/stdout/stderr (file descriptors over
the socket); the starter forks, and the child, a copy with everything already
imported, runs ``up`` against the caller's terminal and sends back the exit
code. The caller forwards Ctrl-C and termination to the child.

A warm run may only be faster, never different: the child resolves the
settings from the caller's own inputs and environment, the starter refuses
(and exits) once any of our sources or the installed packages changed since
it started, and any failure before the child starts makes the caller run
in-process as if there were no starter. Turned off with ``CRUDDUR_WARM_START=0``.

Linux only: fork, abstract Unix sockets (no socket file to go stale) and
SCM_RIGHTS; the starter serves only its own user (SO_PEERCRED).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import signal
import socket
import struct
import sys
import sysconfig
import time
from pathlib import Path
from typing import Any

from .config import PROJECT_ROOT, Settings
from .state import StateDir

NAME = "warmstart"
# A starter nobody used for this long exits; the next `up` starts another.
IDLE_EXIT_SECONDS = 30 * 60.0
CONNECT_TIMEOUT = 1.0
# From connecting to the child's pid: the starter answers at once unless the machine is swamped.
HANDOVER_TIMEOUT = 10.0
OUT_OF_DATE = "the sources or packages changed since this starter started"
_HEADER = struct.Struct("!I")
_PEER = struct.Struct("3i")  # struct ucred: pid, uid, gid

# True in a forked child: its own `up` must run, not be handed on again.
_in_child = False


# --- identity --------------------------------------------------------------------------


def socket_address(state_root: Path) -> bytes:
    """The abstract socket of the starter of one state folder (no file, so nothing to clean up)."""
    digest = hashlib.sha256(str(state_root).encode()).hexdigest()[:32]
    return f"\0cruddur-bootstrap-{digest}".encode()


def code_fingerprint(root: Path = PROJECT_ROOT) -> str:
    """What a starter's imports depend on: the interpreter, our sources and the installed packages.

    The interpreter by its real path: a venv's ``python`` and ``python3`` are one
    interpreter, and ``invoke`` (python3) and ``python -m invoke`` must share a starter.
    """
    parts = [os.path.realpath(sys.executable), sys.version]
    packages = Path(sysconfig.get_paths()["purelib"])
    for path in sorted([root / "tasks.py", *(root / "bootstrap").glob("*.py")]) + [packages]:
        try:
            stat = path.stat()
        except FileNotFoundError:
            continue
        parts.append(f"{path}\0{stat.st_size}\0{stat.st_mtime_ns}")
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


# --- the caller's side ---------------------------------------------------------------------


def delegate(settings: Settings, request: dict[str, Any], fingerprint: str | None = None) -> int | None:
    """Run ``up`` in a warm child if a starter serves this state folder: its exit code, else None.

    ``request`` holds what the child needs to resolve the same settings and run
    the same task (settings inputs and task options); the environment, working
    folder, umask and standard streams are added here.
    """
    if _in_child or not settings.warm_start or settings.is_prod:
        return None
    connection = _hand_over(settings.state_dir, {
        **request,
        "fingerprint": fingerprint or code_fingerprint(),
        "env": dict(os.environ),
        "cwd": os.getcwd(),
        "umask": _current_umask(),
        "encoding": getattr(sys.stdout, "encoding", None) or "utf-8",
    })
    if connection is None:
        return None
    sock, pid = connection
    with sock, _forwarding_signals(pid):
        try:
            return int(_receive(sock)["exit"])
        except (OSError, ValueError, KeyError, EOFError):
            sys.stderr.write(f"error: the warm run of `invoke up` (pid {pid}) ended without an exit code; "
                             f"see {StateDir(settings.state_dir).log_file(NAME)}\n")
            return 1


def _hand_over(state_root: Path, request: dict[str, Any]) -> tuple[socket.socket, int] | None:
    """Send the request and our standard streams; the child's pid, or None when no child will run."""
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.settimeout(CONNECT_TIMEOUT)
        sock.connect(socket_address(state_root))
        sock.settimeout(HANDOVER_TIMEOUT)
        socket.send_fds(sock, [b"F"], [0, 1, 2])
        _send(sock, request)
        answer = _receive(sock)
        sock.settimeout(None)
    except (OSError, ValueError, EOFError):
        sock.close()
        return None
    if "pid" not in answer:
        sock.close()
        return None
    return sock, int(answer["pid"])


class _forwarding_signals:
    """While the child runs: Ctrl-C, hang-up and termination of the caller go to the child."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)

    def __init__(self, pid: int) -> None:
        self.pid = pid
        self.previous: dict[int, Any] = {}

    def _forward(self, signum: int, _frame: Any) -> None:
        try:
            os.kill(self.pid, signum)
        except ProcessLookupError:
            pass

    def __enter__(self) -> None:
        for signum in self.SIGNALS:
            self.previous[signum] = signal.signal(signum, self._forward)

    def __exit__(self, *_exc: Any) -> None:
        for signum, handler in self.previous.items():
            signal.signal(signum, handler)


def _current_umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


# --- starting and stopping -----------------------------------------------------------------


def pid(state: StateDir) -> int | None:
    """The running starter of this state folder, from its pid file."""
    from .processes import command_line, process_alive

    try:
        found = int(state.pid_file(NAME).read_text().strip())
    except (FileNotFoundError, ValueError):
        return None
    return found if process_alive(found) and "bootstrap.warmstart" in command_line(found) else None


def ensure_running(settings: Settings) -> None:
    """Start a starter for this state folder unless one runs (or warm starts are off)."""
    import subprocess

    from .processes import OWNER_VARIABLE

    if _in_child or not settings.warm_start or settings.is_prod:
        return
    state = StateDir(settings.state_dir).ensure()
    if pid(state) is not None:
        return
    # The starter writes its pid file itself once it listens: of two started at
    # once (two concurrent `up`s), the one that could not listen just exits.
    with open(state.log_file(NAME), "ab") as log:
        subprocess.Popen(
            [sys.executable, "-m", "bootstrap.warmstart", str(settings.state_dir)],
            cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True, close_fds=True, env={**os.environ, OWNER_VARIABLE: str(state.root)},
        )


def stop(state: StateDir) -> bool:
    """Stop this state folder's starters (also one still starting, found by its owner mark); whether any ran."""
    import psutil

    from .processes import OWNER_VARIABLE, stop_process

    found = {pid(state)} - {None}
    for process in psutil.process_iter(["pid", "cmdline"]):
        try:
            if "bootstrap.warmstart" in (process.info["cmdline"] or []) and \
                    process.environ().get(OWNER_VARIABLE) == str(state.root):
                found.add(process.info["pid"])
        except psutil.Error:
            continue
    for running in found:
        stop_process(running)
    state.pid_file(NAME).unlink(missing_ok=True)
    return bool(found)


# --- the starter ---------------------------------------------------------------------------


def preload() -> None:
    """Import everything a warm ``up`` uses and load botocore's models, without opening anything."""
    import botocore.config  # noqa: F401
    import psutil  # noqa: F401
    import psycopg  # noqa: F401
    import rich.console  # noqa: F401
    import rich.table  # noqa: F401
    import rich.text  # noqa: F401
    import tenacity  # noqa: F401
    import yaml  # noqa: F401

    from . import cognito, config, dynamo, fixtures, lifecycle, messaging, postgres, up, verify  # noqa: F401

    config.preload_aws_models(("dynamodb", "cognito-idp"))


def serve(state_root: Path) -> None:
    """Accept runs until idle for ``IDLE_EXIT_SECONDS``, the code changes or the state folder goes."""
    # Taken before importing: a source changed meanwhile makes this starter refuse, not serve old code.
    fingerprint = code_fingerprint()
    preload()
    state = StateDir(state_root)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        listener.bind(socket_address(state_root))
    except OSError as exc:
        _log(f"not starting: another starter serves {state_root} ({exc})")
        return
    listener.listen(16)
    listener.settimeout(1.0)
    state.pid_file(NAME).write_text(f"{os.getpid()}\n")
    _log(f"ready (pid {os.getpid()})")
    last_used = time.monotonic()
    while state.root.exists() and time.monotonic() - last_used < IDLE_EXIT_SECONDS:
        _reap_children()
        try:
            connection, _ = listener.accept()
        except TimeoutError:
            continue
        last_used = time.monotonic()
        if not _serve_one(listener, connection, fingerprint):
            break
    listener.close()
    with contextlib.suppress(FileNotFoundError, ValueError):
        if int(state.pid_file(NAME).read_text()) == os.getpid():
            state.pid_file(NAME).unlink()
    _log("exiting")


def _serve_one(listener: socket.socket, connection: socket.socket, fingerprint: str) -> bool:
    """Fork a child for one request; False when this starter should exit (its code is out of date)."""
    fds: list[int] = []
    with connection:
        try:
            connection.settimeout(5.0)
            _, fds, _, _ = socket.recv_fds(connection, 1, 3)
            request = _receive(connection)
            refusal = _refusal(connection, request, fds, fingerprint)
            if refusal:
                _send(connection, {"refused": refusal})
                _log(f"refused a run: {refusal}")
                return refusal != OUT_OF_DATE
            _fork_child(listener, connection, fds, request)
        except (OSError, ValueError, EOFError) as exc:
            _log(f"could not take a run: {exc}")
        finally:
            for fd in fds:
                os.close(fd)
    return True


def _refusal(connection: socket.socket, request: dict[str, Any], fds: list[int], fingerprint: str) -> str | None:
    _, uid, _ = _PEER.unpack(connection.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, _PEER.size))
    if uid != os.getuid():
        return f"uid {uid} is not this starter's user"
    if len(fds) != 3:
        return "the standard streams did not arrive"
    if request.get("fingerprint") != fingerprint:
        return OUT_OF_DATE
    return None


def _fork_child(listener: socket.socket, connection: socket.socket, fds: list[int], request: dict[str, Any]) -> None:
    """Fork the run; it starts only once the caller has its pid, so the caller never runs it a second time.

    A caller that got no pid (it gave up waiting, or went away) runs in-process;
    a child whose pid could not be delivered is killed before it does anything.
    """
    go_read, go_write = os.pipe()
    child = os.fork()
    if child == 0:
        os.close(go_write)
        if os.read(go_read, 1) != b"1":
            os._exit(1)
        os.close(go_read)
        _run_child(listener, connection, fds, request)
    os.close(go_read)
    try:
        _send(connection, {"pid": child})
    except OSError:
        os.kill(child, signal.SIGKILL)
        os.close(go_write)
        raise
    os.write(go_write, b"1")
    os.close(go_write)
    chosen = [f"--{name.replace('_', '-')}" for name, value in sorted(request["options"].items()) if value]
    _log(f"run in pid {child}: invoke up {' '.join(chosen)}".rstrip())


def _run_child(listener: socket.socket, connection: socket.socket, fds: list[int], request: dict[str, Any]) -> None:
    """In the forked child: become the caller, run ``up``, report the exit code; never returns."""
    global _in_child
    _in_child = True
    code = 1
    try:
        listener.close()
        os.setsid()
        _adopt_caller(fds, request)
        code = _run_up(request)
    except BaseException:  # noqa: BLE001 - reported, and the exit code says it failed
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (OSError, ValueError):
                pass
        try:
            _send(connection, {"exit": code})
        except OSError:
            pass
        os._exit(code)


def _adopt_caller(fds: list[int], request: dict[str, Any]) -> None:
    """Take on the caller's streams, folder, umask and environment, as if started by it."""
    import random

    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    os.chdir(request["cwd"])
    os.umask(int(request["umask"]))
    os.environ.clear()
    os.environ.update(request["env"])
    encoding = request.get("encoding") or "utf-8"
    sys.stdin = open(0, encoding=encoding, closefd=False)  # noqa: SIM115 - the process's own stream
    sys.stdout = open(1, "w", encoding=encoding, closefd=False, buffering=1 if os.isatty(1) else -1)  # noqa: SIM115
    sys.stderr = open(2, "w", encoding=encoding, closefd=False, buffering=1)  # noqa: SIM115
    sys.argv = ["invoke", "up"]
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGHUP, signal.SIG_DFL)
    random.seed()


def _run_up(request: dict[str, Any]) -> int:
    """The ``up`` task as ``tasks.py`` runs it, with our errors turned into a message and an exit code."""
    from . import up
    from .config import resolve_settings
    from .errors import exit_status

    try:
        settings = resolve_settings(request["file_values"], os.environ, request["flags"], request["flag_names"])
        up.run_task(settings, **request["options"])
    except BaseException as exc:  # noqa: BLE001 - mapped like tasks.py maps them; others re-raised
        status = exit_status(exc)
        if status is None:
            raise
        code, message = status
        sys.stderr.write(message + "\n")
        return code
    return 0


def _reap_children() -> None:
    while True:
        try:
            child, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if child == 0:
            return


def _log(message: str) -> None:
    sys.stdout.write(f"{time.strftime('%Y-%m-%d %H:%M:%S')} warmstart: {message}\n")
    sys.stdout.flush()


# --- the wire: length-prefixed JSON ---------------------------------------------------------


def _send(sock: socket.socket, message: dict[str, Any]) -> None:
    body = json.dumps(message).encode()
    sock.sendall(_HEADER.pack(len(body)) + body)


def _receive(sock: socket.socket) -> dict[str, Any]:
    (size,) = _HEADER.unpack(_read_exactly(sock, _HEADER.size))
    return json.loads(_read_exactly(sock, size))


def _read_exactly(sock: socket.socket, size: int) -> bytes:
    chunks: list[bytes] = []
    while size:
        chunk = sock.recv(size)
        if not chunk:
            raise EOFError("the other side closed the connection")
        chunks.append(chunk)
        size -= len(chunk)
    return b"".join(chunks)


if __name__ == "__main__":
    # Through the package's module, not this __main__ copy, so that there is one `_in_child`.
    from bootstrap import warmstart

    warmstart.serve(Path(sys.argv[1]))
