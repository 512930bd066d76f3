"""The protocol's promise that lifecycle relies on: each service gives its own probes, hinting at what serves them."""

from __future__ import annotations

from pathlib import Path

from bootstrap.config import resolve_settings
from bootstrap.processes import free_port
from bootstrap.services.base import Backend
from bootstrap.services.external import ExternalService
from bootstrap.services.moto import MotoServer
from bootstrap.services.postgres import EmbeddedPostgres
from bootstrap.state import StateDir


def _hints(backend: Backend) -> dict[str, str]:
    return {probe.service: probe.hint for service in backend.services for probe in service.probes()}


def test_readiness_hints_come_from_the_service_that_serves_the_endpoint(tmp_path: Path) -> None:
    url = f"postgresql://postgres:x@localhost:{free_port()}/cruddur"
    external = Backend("external", "test", (
        ExternalService("postgres", url, ("postgres",), "env CONNECTION_URL", "us-east-1"),
        ExternalService("dynamodb", "http://localhost:1", ("dynamodb", "cognito"), "flag", "us-east-1")))
    hints = _hints(external)
    assert "external service" in hints["postgres"] and "env CONNECTION_URL" in hints["postgres"]
    assert "external service" in hints["dynamodb"] and "from flag" in hints["cognito"]

    settings = resolve_settings({}, {}, {"state_dir": str(tmp_path / ".cruddur"), "pg_port": 5999, "ddb_port": 5998})
    state = StateDir(settings.state_dir)
    embedded = Backend("embedded", "test", (EmbeddedPostgres(settings, state), MotoServer(settings, state)))
    hints = _hints(embedded)
    assert "embedded Postgres" in hints["postgres"] and "port 5999" in hints["postgres"]
    assert "moto server" in hints["dynamodb"] and "port 5998" in hints["cognito"]


def test_each_service_probes_its_own_endpoint(tmp_path: Path) -> None:
    settings = resolve_settings({}, {}, {"state_dir": str(tmp_path / ".cruddur"), "pg_port": 5999, "ddb_port": 5998})
    state = StateDir(settings.state_dir)
    endpoints = {probe.service: probe.endpoint
                 for service in (EmbeddedPostgres(settings, state), MotoServer(settings, state))
                 for probe in service.probes()}
    # Postgres is probed on its admin database: the app's may not exist yet.
    assert endpoints == {"postgres": "postgresql://postgres:***@localhost:5999/postgres",
                         "dynamodb": "http://localhost:5998", "cognito": "http://localhost:5998"}
