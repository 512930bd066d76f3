"""Which services serve the local target, starting and stopping them together, and where tasks connect.

The backend is chosen by the ``backend`` setting or, for ``auto``, remembered
from the last start, else Docker when an engine answers, else the embedded
processes; the embedded backend's DynamoDB engine likewise (``ddb_engine``).
``endpoints_for`` is the one place a task learns where to connect: prod's
endpoints, or the running local services'.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Callable

from .config import Endpoints, Settings, mask_url
from .errors import ConfigError, NotReadyError, ServiceError
from .guard import require_local
from .processes import process_alive
from .readiness import Deadline, raise_together
from .services.base import Backend, Service, ServiceStatus
from .services.dynamodb_local import DynamoDBLocal, availability, choose_engine
from .services.external import ExternalService
from .services.moto import Keeper, MotoServer
from .services.postgres import EmbeddedPostgres
from .state import StateDir


def select_backend(settings: Settings, state: StateDir, keeper: Keeper | None = None) -> Backend:
    """Decide which backend serves the local target, and say why.

    ``keeper``: what keeps an embedded moto server's in-memory data across down/up (``up`` and ``down`` pass it).
    """
    require_local(settings, "choosing local services")
    name, reason = _backend_name(settings, state)
    if name == "external":
        return Backend(name, reason, _external_services(settings, reason))
    if name == "docker":
        from .services.docker import docker_backend

        return docker_backend(settings, state, reason)
    engine, engine_reason = _engine(settings, state)
    postgres = EmbeddedPostgres(settings, state)
    services: tuple[Service, ...]
    if engine == "dynamodb-local":
        services = (postgres, DynamoDBLocal(settings, state),
                    MotoServer(settings, state, serves_dynamodb=False, keeper=keeper))
    else:
        services = (postgres, MotoServer(settings, state, keeper=keeper))
    return Backend(name, reason, services, engine, engine_reason)


def _engine(settings: Settings, state: StateDir) -> tuple[str, str]:
    """The DynamoDB engine of the embedded backend: a running one wins until `invoke down` stops it."""
    remembered = state.get("ddb_engine")
    left = None if remembered else _engine_left_running(state)
    source = settings.sources.get("ddb_engine", "setting")
    running_engine = remembered or left
    if running_engine and running_engine != settings.ddb_engine and settings.ddb_engine != "auto":
        running = (MotoServer(settings, state) if running_engine == "moto"
                   else DynamoDBLocal(settings, state)).is_running()
        if running:
            return running_engine, (f"{running_engine} runs since the last start; {settings.ddb_engine} ({source}) "
                                    "takes over after `invoke down`")
    if left and settings.ddb_engine == "auto":
        return left, "its process runs since a start that did not finish; `invoke down` stops it"
    return choose_engine(settings.ddb_engine, source, remembered, lambda: availability(settings),
                         since=_remembered_since(state), remembered_reason=state.get("ddb_engine_reason"))


def _backend_name(settings: Settings, state: StateDir) -> tuple[str, str]:
    if settings.backend != "auto":
        return settings.backend, f"chosen by {settings.sources.get('backend', 'setting')}"
    remembered = state.get("backend")
    if remembered in ("embedded", "external", "docker"):
        return remembered, (f"remembered from {_remembered_since(state)}; `--backend` another one, or "
                            "`invoke down --purge`, chooses again")
    if _left_running(state):
        return "embedded", ("auto: its processes run since a start that did not finish; `invoke down` stops them, "
                            "`invoke up` tries again")
    from .services.docker import engine_answers

    answers, why = engine_answers()
    if answers:
        return "docker", f"auto: {why}"
    return "embedded", f"auto: {why}; the embedded processes"


def _remembered_since(state: StateDir) -> str:
    """Which start the remembered choices come from: "the start on <date>" (started_at, UTC), as the user reads it."""
    started_at = state.get("started_at")
    try:
        return f"the start on {datetime.fromisoformat(started_at):%Y-%m-%d %H:%M} UTC"
    except (TypeError, ValueError):
        return "the last start"  # a state file written before starts were dated


def _left_running(state: StateDir) -> set[str]:
    """The embedded services whose processes run although no start finished (nothing remembered): by pid file."""
    if not state.run.is_dir():
        return set()
    running = set()
    for pid_file in state.run.glob("*.pid"):
        try:
            pid = int(pid_file.read_text().strip())
        except (OSError, ValueError):
            continue
        if process_alive(pid):
            running.add(pid_file.stem)
    return running


def _engine_left_running(state: StateDir) -> str | None:
    """The engine a start that did not finish left running, so that `down` and `status` find it."""
    running = _left_running(state)
    return "dynamodb-local" if DynamoDBLocal.name in running else "moto" if "moto" in running else None


def _external_services(settings: Settings, reason: str) -> tuple[Service, ...]:
    missing = [variable for variable, value in (("CONNECTION_URL", settings.connection_url),
                                                 ("AWS_ENDPOINT_URL", settings.aws_endpoint_url)) if not value]
    if missing:
        raise ConfigError(
            f"backend 'external' ({reason}) needs CONNECTION_URL and AWS_ENDPOINT_URL set to the running services; "
            f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set")
    assert settings.connection_url and settings.aws_endpoint_url  # for the type checker: `missing` is empty
    sources = settings.sources
    return (ExternalService("postgres", settings.connection_url, ("postgres",),
                            sources.get("connection_url", "CONNECTION_URL"), settings.region),
            ExternalService("dynamodb", settings.aws_endpoint_url, ("dynamodb", "cognito"),
                            sources.get("aws_endpoint_url", "AWS_ENDPOINT_URL"), settings.region))


def start_all(backend: Backend, state: StateDir, ready_timeout: float,
              on_ready: Callable[[Service], None] | None = None) -> list[str]:
    """Start every service of the backend concurrently, each until it answers within ``ready_timeout`` of its own
    start; return the names of those that were not running. ``on_ready`` hears each one as soon as it answers.

    Every failure is reported after all were tried (every service not ready, or the first other failure). When a
    service could not be started at all, what this call started is stopped again. Services that only did not
    answer in time keep running, for `invoke status` and their logs to show why (`down` and `status` find them by
    their pid files). The backend and engine are remembered, with the date, only after every service is ready: a
    start that failed must not choose for the next one (an external backend whose services were not there would
    stick).
    """
    not_running = [s.name for s in backend.services if s.is_running() is False]
    ports_before = state.get("ports", default={})

    def start(service: Service) -> None:
        service.start(Deadline(ready_timeout))  # one deadline per service, from when its own start begins
        if on_ready is not None:
            on_ready(service)

    with ThreadPoolExecutor(max_workers=len(backend.services)) as pool:
        futures = [pool.submit(start, service) for service in backend.services]
        errors = [f.exception() for f in futures]
    if any(error is not None for error in errors):
        if any(error is not None and not isinstance(error, NotReadyError) for error in errors):
            for service in backend.services:
                if service.name in not_running and service.is_running():
                    service.stop()
        _forget_ports_of_stopped(backend, state, ports_before)
        raise_together(errors)
    state.update("backend", value=backend.name)
    if backend.engine and state.get("ddb_engine") != backend.engine:
        # The reason it was chosen for, said again while it is kept (choose_engine).
        state.update("ddb_engine", value=backend.engine)
        state.update("ddb_engine_reason", value=backend.engine_reason)
    state.update("started_at", value=datetime.now(timezone.utc).isoformat(timespec="seconds"))
    return not_running


def _forget_ports_of_stopped(backend: Backend, state: StateDir, before: dict[str, int]) -> None:
    """After a failed start: the ports chosen for services that do not run now go back to what they were.

    A port is remembered while its service runs (the URL the app was given) or once a start succeeded; a port
    chosen by a start that failed (say a one-off CRUDDUR_PG_PORT) must not choose for the next one.
    """
    ports = state.get("ports", default={})
    running = {service.name for service in backend.services if service.is_running()}
    kept = {**{name: port for name, port in ports.items() if name in running},
            **{name: port for name, port in before.items() if name not in running}}
    if kept != ports:
        state.update("ports", value=kept)


def stop_all(backend: Backend, save: bool = False) -> list[str]:
    """Stop what we started; return the names of the services that were running.

    ``save``: services that hold data in memory only keep it for their next start first (``invoke down``).
    """
    stopped = []
    for service in backend.services:
        if service.is_running():
            service.stop(save=save)
            stopped.append(service.name)
    return stopped


def status_of(backend: Backend) -> list[ServiceStatus]:
    return [
        ServiceStatus(s.name, backend.name, mask_url(s.url()), s.pid(), s.is_running())
        for s in backend.services
    ]


def local_endpoints(settings: Settings, backend: Backend, state: StateDir) -> Endpoints:
    dynamodb, cognito = backend.serving("dynamodb"), backend.serving("cognito")
    return Endpoints(
        postgres_url=backend.serving("postgres").url(),
        aws_endpoint_url=dynamodb.url(),
        region=settings.region,
        user_pool_id=settings.user_pool_id or state.get("user_pool_id"),
        cognito_endpoint_url=cognito.url() if cognito is not dynamodb else None,
    )


def prod_line(settings: Settings) -> str:
    """Where a prod task acts, for its first line: the AWS region and where that came from."""
    return f"prod: AWS region {settings.region} (from {settings.sources.get('region', 'default')})"


def prod_endpoints(settings: Settings) -> Endpoints:
    if not settings.prod_connection_url:
        raise ConfigError("the prod target needs PROD_CONNECTION_URL (the RDS database URL)")
    return Endpoints(
        postgres_url=settings.prod_connection_url,
        aws_endpoint_url=None,
        region=settings.region,
        user_pool_id=settings.user_pool_id,
    )


def endpoints_for(settings: Settings, require_running: bool = True) -> Endpoints:
    """Where a task should connect: prod endpoints, or the local services (which must be running)."""
    if settings.is_prod:
        return prod_endpoints(settings)
    state = StateDir(settings.state_dir)
    backend = select_backend(settings, state)
    if require_running:
        stopped = [s.name for s in backend.services if s.is_running() is False]
        if stopped:
            raise ServiceError(f"{', '.join(stopped)} not running; start the services with `invoke up`")
    return local_endpoints(settings, backend, state)
