"""The docker backend: the services of docker-compose.yml as containers, through the docker SDK.

docker-compose.yml (plus override files, ``CRUDDUR_COMPOSE_FILES``) says what
runs; ``bootstrap.services.compose`` reads it. Three compose services play our roles:
``db`` is "postgres", ``dynamodb-local`` is "dynamodb" (the DynamoDB endpoint) and
``cognito`` serves Cognito on its own URL. For each, ``start`` observes the
container, plans (pure: create, recreate, start or reuse, by the config hash
label, ``bootstrap.services.containers``) and acts, pulling a missing image
with progress shown, then waits for the container's own healthcheck and then
for the same probe as the embedded backend's service of that role: both under
the service's ONE deadline, so a container that never gets healthy fails at
``ready_timeout``, not at twice it.

Containers and named volumes belong to one project per state folder (so two
checkouts never share containers): ``cruddur-<digest of the state folder>``.
Host ports are the compose file's (``pg_port``/``ddb_port``, when set, move
the db and DynamoDB ports); a port taken by something else is replaced by a
free one, remembered in the state file like the embedded backend's.

Assumes a Docker engine reachable the way the docker CLI finds it by default
(``DOCKER_HOST``, else /var/run/docker.sock); the engine's published ports
answer on localhost, or on the host of a ``tcp://`` DOCKER_HOST.
"""

from __future__ import annotations

import logging
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from .compose import ComposeProject, PortSpec, load_compose
from ..config import Settings, postgres_url
from ..console import say
from ..errors import ConfigError, ServiceError
from ..processes import free_port, port_is_free
from ..readiness import Deadline, Probe, wait_all, wait_until_ready
from ..state import StateDir
from .base import LOCAL_HOST, Backend, role_probe
from .containers import (
    LABEL_HASH, LABEL_PROJECT, LABEL_SERVICE, ContainerAction, ContainerSpec, ObservedContainer, container_spec,
    create_kwargs, plan_container, project_name,
)

log = logging.getLogger(__name__)

DEFAULT_SOCKET = "unix:///var/run/docker.sock"
PING_TIMEOUT = 1.0
STOP_TIMEOUT = 10
LOG_LINES = 200


@dataclass(frozen=True)
class Role:
    """Which compose service plays which of our roles (also its service name), and which setting may move its host port."""

    name: str
    compose_service: str
    port_setting: str | None


ROLES = (
    Role("postgres", "db", "pg_port"),
    Role("dynamodb", "dynamodb-local", "ddb_port"),
    Role("cognito", "cognito", None),
)


# --- the engine ------------------------------------------------------------------


def engine_address(environ: Mapping[str, str] | None = None) -> str:
    environ = os.environ if environ is None else environ
    return environ.get("DOCKER_HOST") or DEFAULT_SOCKET


def engine_host(environ: Mapping[str, str] | None = None) -> str:
    """Where published ports answer: the host of a tcp:// engine, else this machine."""
    address = engine_address(environ)
    if address.startswith(("tcp://", "http://", "https://")):
        return urlsplit(address).hostname or LOCAL_HOST
    return LOCAL_HOST


def engine_answers(environ: Mapping[str, str] | None = None, timeout: float = PING_TIMEOUT) -> tuple[bool, str]:
    """Whether a Docker engine answers a ping within ``timeout`` seconds, and a reason for ``invoke status``."""
    environ = os.environ if environ is None else environ
    address = engine_address(environ)
    if address.startswith("unix://") and not Path(address.removeprefix("unix://")).exists():
        return False, f"no Docker engine ({address} does not exist)"
    try:
        import docker

        client = docker.DockerClient.from_env(
            timeout=timeout,  # type: ignore[arg-type]  # requests takes a float; the stubs say int
            environment=dict(environ))
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:  # any failure to reach the engine means "no engine" here
        log.debug("docker ping at %s failed: %r", address, exc)
        return False, f"no Docker engine answers at {address}"
    return True, f"a Docker engine answers at {address}"


class DockerProject:
    """What the services of one backend share: settings, state, the compose files, one engine client."""

    def __init__(self, settings: Settings, state: StateDir, compose: ComposeProject) -> None:
        self.settings = settings
        self.state = state
        self.compose = compose
        self.name = project_name(state.root)
        self._lock = threading.Lock()
        self._client: Any = None

    def client(self) -> Any:
        with self._lock:
            if self._client is None:
                self._client = _connect()
            return self._client

    def find_container(self, compose_service: str) -> Any | None:
        containers = self.client().containers.list(
            all=True, filters={"label": [f"{LABEL_PROJECT}={self.name}", f"{LABEL_SERVICE}={compose_service}"]},
        )
        return containers[0] if containers else None


def _connect() -> Any:
    import docker

    try:
        return docker.from_env()
    except docker.errors.DockerException as exc:
        raise ServiceError(
            f"no Docker engine answers at {engine_address()}: {exc}\n"
            "  hint: start the engine (or set DOCKER_HOST), or use --backend embedded"
        ) from None


def _engine_errors() -> tuple[type[BaseException], ...]:
    import docker.errors
    import requests

    return docker.errors.DockerException, requests.exceptions.RequestException


# --- images and volumes --------------------------------------------------------------


def ensure_image(client: Any, image: str) -> str:
    """The id of ``image``, pulled first when the engine does not have it."""
    import docker.errors

    try:
        return client.images.get(image).id
    except docker.errors.ImageNotFound:
        pull_image(client, image)
        return client.images.get(image).id


def pull_image(client: Any, image: str) -> None:
    """Pull with one progress line per change in finished layers; a failure names the image and the reason."""
    import docker.errors
    from docker.utils import parse_repository_tag

    repository, tag = parse_repository_tag(image)
    say(f"pulling {image} ...")
    layers: dict[str, str] = {}
    shown = ""
    try:
        for event in client.api.pull(repository, tag=tag or "latest", stream=True, decode=True):
            if "error" in event:
                raise ServiceError(_pull_failure(image, event["error"]))
            if event.get("id") and event.get("status"):
                layers[event["id"]] = event["status"]
            done = sum(status in ("Pull complete", "Already exists") for status in layers.values())
            line = f"pulling {image}: {done}/{len(layers)} layers done"
            if layers and line != shown:
                say(line)
                shown = line
    except docker.errors.APIError as exc:
        raise ServiceError(_pull_failure(image, exc.explanation or str(exc))) from None


def _pull_failure(image: str, reason: str) -> str:
    return (
        f"could not pull image {image}: {' '.join(str(reason).split())}\n"
        "  hint: check the image name and that the registry is reachable (or `docker pull` it yourself)"
    )


def ensure_volume(client: Any, name: str, project: str) -> None:
    import docker.errors

    try:
        client.volumes.get(name)
    except docker.errors.NotFound:
        client.volumes.create(name=name, labels={LABEL_PROJECT: project})


# --- the service ------------------------------------------------------------------


@dataclass(frozen=True)
class HealthProbe:
    """The container's own healthcheck reports healthy (a readiness probe for ``wait_until_ready``)."""

    container: Any
    service: str
    endpoint: str
    log_path: Path | None
    hint: str = "the container's healthcheck does not pass; see its log"

    def probe(self) -> None:
        self.container.reload()
        state = self.container.attrs["State"]
        health = state.get("Health") or {}
        if health.get("Status") == "healthy":
            return
        _save_logs(self.container, self.log_path)
        if state.get("Status") != "running":
            raise ServiceError(f"container {self.container.name} is {state.get('Status')} (exit {state.get('ExitCode')})")
        last = (health.get("Log") or [{}])[-1].get("Output", "").strip()
        raise ServiceError(f"healthcheck {health.get('Status', 'not run yet')}" + (f": {last}" if last else ""))


def _save_logs(container: Any, path: Path | None) -> None:
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(container.logs(tail=LOG_LINES))


class DockerService:
    """One of our services as the container of one compose service."""

    def __init__(self, role: Role, project: DockerProject) -> None:
        self.name = role.name
        self.roles = (role.name,)
        self.role = role
        self.project = project
        self.spec = project.compose.service(role.compose_service)
        if not self.spec.ports:
            raise ConfigError(f"{', '.join(project.compose.files)}: services.{self.spec.name} publishes no port")
        self.endpoint_port = self.spec.ports[0]

    @property
    def log_path(self) -> Path:
        return self.project.state.log_file(self.name)

    def url(self) -> str:
        settings = self.project.settings
        port = self._current_port() or self.project.state.get("ports", self.name) or self._preferred_port()
        if self.name == "postgres":
            return postgres_url(engine_host(), port or self.endpoint_port.target,
                                settings.pg_user, settings.pg_password, settings.pg_database)
        return f"http://{engine_host()}:{port or self.endpoint_port.target}"

    def pid(self) -> int | None:
        # The container's process lives in the engine's namespace (maybe on another host): no pid of ours.
        return None

    def hint(self) -> str:
        container = container_spec(self.spec, self.project.name, "", {}).name
        return (f"served by the container {container} (compose service {self.spec.name}, image {self.spec.image}); "
                f"its last log lines: `docker logs --tail 20 {container}`; see also `invoke status`")

    def is_running(self) -> bool | None:
        try:
            container = self.project.find_container(self.spec.name)
        except (ServiceError, *_engine_errors()):  # type: ignore[misc]  # mypy does not read a starred except tuple
            return None
        return container is not None and container.status == "running"

    def start(self, deadline: Deadline) -> "DockerService":
        client = self.project.client()
        try:
            image_id = ensure_image(client, self.spec.image)
            for _, name in container_spec(self.spec, self.project.name, image_id, {}).volume_names:
                ensure_volume(client, name, self.project.name)
            existing = self.project.find_container(self.spec.name)
            host_ports = {self.endpoint_port: self._choose_port(existing)}
            wanted = container_spec(self.spec, self.project.name, image_id, host_ports)
            action = plan_container(wanted, _observe(existing))
            container = self._act(client, action, wanted, existing)
        except _engine_errors() as exc:
            raise ServiceError(f"{self.name} ({self.spec.name}): the Docker engine refused: {_explain(exc)}") from None
        say(f"{self.name}: container {wanted.name} {action.value}")
        if self.spec.healthcheck is not None and self.spec.healthcheck.test[0] != "NONE":
            # The same deadline as the probe below: together they wait at most ready_timeout.
            wait_until_ready(HealthProbe(container, self.name, wanted.name, self.log_path), deadline)
        container.reload()
        _save_logs(container, self.log_path)
        port = _published_port(container, self.endpoint_port)
        if port is not None:
            self.project.state.update("ports", self.name, value=port)
        wait_all(self.probes(), deadline)
        return self

    def probes(self) -> list[Probe]:
        return [role_probe(self.name, self.url(), self.project.settings.region, self.log_path, self.hint())]

    def stop(self, save: bool = False) -> None:
        """Stop the container; its data is in named volumes, so there is nothing to ``save``."""
        try:
            container = self.project.find_container(self.spec.name)
            if container is not None and container.status == "running":
                _save_logs(container, self.log_path)
                container.stop(timeout=STOP_TIMEOUT)
        except _engine_errors() as exc:
            raise ServiceError(f"{self.name} ({self.spec.name}): stopping: the Docker engine did not answer: "
                               f"{_explain(exc)}; hint: start the engine (or set DOCKER_HOST) and run the same "
                               "command again") from None

    def purge(self) -> None:
        """Remove the container and its named volumes (the data): ``invoke down --purge``."""
        import docker.errors

        client = self.project.client()
        container = self.project.find_container(self.spec.name)
        if container is not None:
            container.remove(force=True)
        for _, name in container_spec(self.spec, self.project.name, "", {}).volume_names:
            try:
                client.volumes.get(name).remove()
            except docker.errors.NotFound:
                continue

    def _act(self, client: Any, action: ContainerAction, wanted: ContainerSpec, existing: Any | None) -> Any:
        if action is ContainerAction.REUSE:
            return existing
        if action is ContainerAction.START:
            assert existing is not None  # plan_container starts only a container it found
            existing.start()
            return existing
        if action is ContainerAction.RECREATE:
            assert existing is not None  # plan_container recreates only a container it found
            existing.remove(force=True)
        container = client.containers.create(**create_kwargs(wanted, self.project.state.root))
        container.start()
        return container

    def _preferred_port(self) -> int | None:
        settings = self.project.settings
        setting = self.role.port_setting
        if setting and settings.sources.get(setting, "default") != "default":
            return int(getattr(settings, setting))
        return self.endpoint_port.published

    def _current_port(self) -> int | None:
        try:
            container = self.project.find_container(self.spec.name)
        except (ServiceError, *_engine_errors()):  # type: ignore[misc]  # mypy does not read a starred except tuple
            return None
        if container is None or container.status != "running":
            return None
        return _published_port(container, self.endpoint_port)

    def _choose_port(self, existing: Any | None) -> int | None:
        """The remembered or preferred host port when usable (free, or held by our own container), else a free one."""
        preferred = self._preferred_port()
        if preferred is None:
            return None  # the file leaves the host port to the engine
        held = _published_port(existing, self.endpoint_port) if existing is not None and existing.status == "running" else None
        remembered = self.project.state.get("ports", self.name)
        for candidate in (remembered, preferred):
            if candidate and (candidate == held or port_is_free(candidate)):
                return int(candidate)
        port = free_port()
        log.info("port %s for %s is taken; using %s", preferred, self.name, port)
        return port


def _observe(container: Any | None) -> ObservedContainer | None:
    if container is None:
        return None
    return ObservedContainer(container.labels.get(LABEL_HASH), container.status == "running")


def _published_port(container: Any, port: PortSpec) -> int | None:
    bindings = (container.attrs.get("NetworkSettings") or {}).get("Ports") or {}
    for binding in bindings.get(f"{port.target}/{port.protocol}") or []:
        if binding.get("HostPort"):
            return int(binding["HostPort"])
    return None


def _explain(exc: BaseException) -> str:
    return " ".join(str(getattr(exc, "explanation", None) or exc).split())


def docker_backend(settings: Settings, state: StateDir, reason: str) -> Backend:
    """The docker backend's services, from the compose files."""
    project = DockerProject(settings, state, load_compose(list(settings.compose_files)))
    return Backend("docker", reason, tuple(DockerService(role, project) for role in ROLES))
