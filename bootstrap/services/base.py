"""What every service is: the protocol that ``up``, ``down`` and ``status`` use, and the set of one backend.

A service owns its endpoint knowledge: nobody else builds its URL, and it
says which roles it serves ("postgres", "dynamodb", "cognito"): one moto
server serves DynamoDB and Cognito, or DynamoDB Local serves DynamoDB and a
moto server Cognito only (the embedded backend's ``ddb_engine``). It also
owns its readiness: ``start`` returns once its own probes answer, and
launching it and every probe share ONE deadline (``readiness.Deadline``), so a
service that never answers fails at ``ready_timeout``, not at a multiple of it.

The services themselves live beside this module, one per file: ``postgres``
(embedded Postgres), ``moto``, ``dynamodb_local``, ``external`` and ``docker``.
Which of them serve the local target is ``bootstrap.backends``'s choice.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ..config import Endpoints, local_key_id_problem, with_database
from ..processes import LocalProcess
from ..readiness import Deadline, OwnProcess, PostgresProbe, Probe, cognito_probe, dynamodb_probe

LOCAL_HOST = "localhost"


class Service(Protocol):
    """What ``up``, ``down``, ``status`` and ``doctor`` need from any service of any backend.

    ``name`` and ``roles`` are read-only: a class attribute or a property of the service's own matches.
    """

    @property
    def name(self) -> str: ...

    @property
    def roles(self) -> tuple[str, ...]: ...

    def start(self, deadline: Deadline) -> "Service":
        """Start the service (or find it running) and return once it answers; ``NotReadyError`` at the deadline."""

    def stop(self, save: bool = False) -> None:
        """Stop what we started. ``save``: first keep what it holds in memory only for its next start (``down``)."""

    def purge(self) -> None:
        """Remove the service's data that lives outside the state folder (``down --purge``)."""

    def is_running(self) -> bool | None: ...

    def pid(self) -> int | None: ...

    def url(self) -> str: ...

    def probes(self) -> list[Probe]:
        """What says the service answers: ``start`` waits for them, ``status`` asks them once."""

    def hint(self) -> str:
        """What serves this endpoint and the next step when it does not answer (ends a readiness failure)."""

    @property
    def log_path(self) -> Path | None: ...


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    backend: str
    endpoint: str
    pid: int | None
    running: bool | None


@dataclass(frozen=True)
class Backend:
    """The services of one backend; ``engine`` says what serves DynamoDB, and ``engine_reason`` why."""

    name: str
    reason: str
    services: tuple[Service, ...]
    engine: str | None = None
    engine_reason: str = ""

    def serving(self, role: str) -> Service:
        """The service that serves ``role`` ("postgres", "dynamodb" or "cognito")."""
        return next(s for s in self.services if role in s.roles)


def aws_endpoints(url: str, region: str) -> Endpoints:
    """Endpoints that reach one AWS-compatible server only: a service's own probes and data keeping."""
    return Endpoints("", url, region)


def role_probe(role: str, url: str, region: str, log_path: Path | None, hint: str) -> Probe:
    """The probe of one role served at ``url``: Postgres answers ``select 1``, AWS a cheap list call."""
    if role == "postgres":
        return PostgresProbe(with_database(url, "postgres"), log_path, hint=hint)
    if role == "dynamodb":
        return dynamodb_probe(aws_endpoints(url, region), log_path, hint, _credentials_hint())
    return cognito_probe(aws_endpoints(url, region), log_path, hint)


def own_probes(service: LocalProcess, region: str) -> list[Probe]:
    """The probes of a process this workspace starts, one per role: each asks the port only while that process
    is alive and the one listening there (``readiness.OwnProcess``)."""
    return [OwnProcess(role_probe(role, service.url(), region, service.log_path, service.hint()),
                       service.name, service.pid, service.port, service.log_start)
            for role in service.roles]


def _credentials_hint() -> str | None:
    """This shell's own AWS key id, when DynamoDB Local would refuse it: the app run from here would fail."""
    return local_key_id_problem(os.environ.get("AWS_ACCESS_KEY_ID"))
