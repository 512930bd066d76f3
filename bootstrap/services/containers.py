"""The containers of the docker backend, planned: what each should be and what to do about it. Pure.

A container is the compose service (``bootstrap.services.compose``) plus what is
resolved at run time (the image id, host ports, named volumes); its config
hash, kept as a label, says whether a running container still is what the
files ask for: reuse it, start it, or recreate it. Containers and volumes
belong to one project per state folder (``cruddur-<digest>``), so two
checkouts never share them.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Mapping

from .compose import PortSpec, ServiceSpec, config_hash

LABEL_PROJECT = "cruddur-bootstrap.project"
LABEL_SERVICE = "cruddur-bootstrap.service"
LABEL_HASH = "cruddur-bootstrap.config-hash"
LABEL_STATE = "cruddur-bootstrap.state-dir"


class ContainerAction(str, Enum):
    CREATE = "created"
    RECREATE = "recreated"
    START = "started"
    REUSE = "reused"


@dataclass(frozen=True)
class ContainerSpec:
    """The container a service should be: the compose service plus what was resolved at run time."""

    name: str
    project: str
    service: ServiceSpec
    image_id: str
    host_ports: tuple[tuple[PortSpec, int | None], ...]
    volume_names: tuple[tuple[str, str], ...]

    @property
    def config_hash(self) -> str:
        return config_hash(
            self.service, name=self.name, project=self.project, image_id=self.image_id,
            host_ports=[(asdict(port), host) for port, host in self.host_ports],
            volume_names=list(self.volume_names),
        )


@dataclass(frozen=True)
class ObservedContainer:
    config_hash: str | None
    running: bool


def plan_container(spec: ContainerSpec, existing: ObservedContainer | None) -> ContainerAction:
    """Reuse a running container that already is ``spec``, start a stopped one, recreate a changed one."""
    if existing is None:
        return ContainerAction.CREATE
    if existing.config_hash != spec.config_hash:
        return ContainerAction.RECREATE
    return ContainerAction.REUSE if existing.running else ContainerAction.START


def project_name(state_root: Path) -> str:
    return f"cruddur-{hashlib.sha256(str(state_root).encode()).hexdigest()[:8]}"


def container_spec(
    service: ServiceSpec, project: str, image_id: str, host_ports: Mapping[PortSpec, int | None],
) -> ContainerSpec:
    volumes = tuple(
        (mount.source, f"{project}_{mount.source}") for mount in service.volumes if mount.kind == "volume"
    )
    ports = tuple((port, host_ports.get(port, port.published)) for port in service.ports)
    return ContainerSpec(f"{project}-{service.name}", project, service, image_id, ports, volumes)


def create_kwargs(spec: ContainerSpec, state_root: Path) -> dict[str, Any]:
    """The docker SDK's ``containers.create`` arguments for ``spec``."""
    service = spec.service
    volume_names = dict(spec.volume_names)
    kwargs: dict[str, Any] = {
        "image": service.image,
        "name": spec.name,
        "detach": True,
        "environment": dict(service.environment),
        "labels": {
            LABEL_PROJECT: spec.project,
            LABEL_SERVICE: service.name,
            LABEL_HASH: spec.config_hash,
            LABEL_STATE: str(state_root),
        },
        "ports": {f"{port.target}/{port.protocol}": _binding(port.host_ip, host) for port, host in spec.host_ports},
        "volumes": {
            volume_names.get(mount.source, mount.source): {"bind": mount.target, "mode": "ro" if mount.read_only else "rw"}
            for mount in service.volumes
        },
    }
    if service.command is not None:
        kwargs["command"] = list(service.command)
    if service.user is not None:
        kwargs["user"] = service.user
    if service.working_dir is not None:
        kwargs["working_dir"] = service.working_dir
    if service.healthcheck is not None:
        check = service.healthcheck
        kwargs["healthcheck"] = {
            key: value
            for key, value in (
                ("test", list(check.test)),
                ("interval", _nanoseconds(check.interval)),
                ("timeout", _nanoseconds(check.timeout)),
                ("retries", check.retries),
                ("start_period", _nanoseconds(check.start_period)),
            )
            if value is not None
        }
    return kwargs


def _binding(host_ip: str, host_port: int | None) -> Any:
    if host_ip:
        return (host_ip, host_port) if host_port is not None else (host_ip,)
    return host_port


def _nanoseconds(seconds: float | None) -> int | None:
    return None if seconds is None else int(seconds * 1_000_000_000)
