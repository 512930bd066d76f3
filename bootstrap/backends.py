"""Which services serve the local target, starting and stopping them together, and where tasks connect.

The backend is chosen by the ``backend`` setting or, for ``auto``, remembered
from the last start, else Docker when an engine answers, else the embedded
processes; the embedded backend's DynamoDB engine likewise (``ddb_engine``).
``endpoints_for`` is the one place a task learns where to connect: prod's
endpoints, or the running local services'.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Callable

from .config import Endpoints, Settings, mask_url
from .errors import ConfigError, NotReadyError, ServiceError
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
    if settings.is_prod:
        raise ConfigError("the prod target has no local services; start/stop tasks are local-only")
    name, reason = _backend_name(settings, state)
    if name == "external":
        return Backend(name, reason, _external_services(settings))
    if name == "docker":
        from .services.docker import docker_backend

        return docker_backend(settings, state, reason)
    engine, engine_reason = _engine(settings, state)
    postgres = EmbeddedPostgres(settings, state)
    if engine == "dynamodb-local":
        services = (postgres, DynamoDBLocal(settings, state),
                    MotoServer(settings, state, serves_dynamodb=False, keeper=keeper))
    else:
        services = (postgres, MotoServer(settings, state, keeper=keeper))
    return Backend(name, reason, services, engine, engine_reason)


def _engine(settings: Settings, state: StateDir) -> tuple[str, str]:
    """The DynamoDB engine of the embedded backend: a running one wins until `invoke down` stops it."""
    remembered = state.get("ddb_engine")
    source = settings.sources.get("ddb_engine", "setting")
    if remembered and remembered != settings.ddb_engine and settings.ddb_engine != "auto":
        running = (MotoServer(settings, state) if remembered == "moto" else DynamoDBLocal(settings, state)).is_running()
        if running:
            return remembered, (f"{remembered} runs since the last start; {settings.ddb_engine} ({source}) "
                                "takes over after `invoke down`")
    return choose_engine(settings.ddb_engine, source, remembered, lambda: availability(settings))


def _backend_name(settings: Settings, state: StateDir) -> tuple[str, str]:
    if settings.backend != "auto":
        return settings.backend, f"chosen by {settings.sources.get('backend', 'setting')}"
    remembered = state.get("backend")
    if remembered in ("embedded", "external", "docker"):
        return remembered, "remembered from the last start"
    from .services.docker import engine_answers

    answers, why = engine_answers()
    if answers:
        return "docker", f"auto: {why}"
    return "embedded", f"auto: {why}; the embedded processes"


def _external_services(settings: Settings) -> tuple[Service, ...]:
    if not settings.connection_url or not settings.aws_endpoint_url:
        raise ConfigError(
            "backend 'external' needs CONNECTION_URL and AWS_ENDPOINT_URL set to the running services"
        )
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
    service could not be started at all, what this call started is stopped again: the backend and engine are
    remembered only after a full start, so a later `down` might not find it. Services that only did not answer in
    time keep running, for `invoke status` and their logs to show why.
    """
    not_running = [s.name for s in backend.services if s.is_running() is False]

    def start(service: Service) -> None:
        service.start(Deadline(ready_timeout))  # one deadline per service, from when its own start begins
        if on_ready is not None:
            on_ready(service)

    with ThreadPoolExecutor(max_workers=len(backend.services)) as pool:
        futures = [pool.submit(start, service) for service in backend.services]
        errors = [f.exception() for f in futures]
    if any(error is not None and not isinstance(error, NotReadyError) for error in errors):
        for service in backend.services:
            if service.name in not_running and service.is_running():
                service.stop()
        raise_together(errors)
    # Remembered before a readiness failure is raised: what runs now is this backend's, for `down` to find.
    state.update("backend", value=backend.name)
    if backend.engine:
        state.update("ddb_engine", value=backend.engine)
    raise_together(errors)
    return not_running


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
