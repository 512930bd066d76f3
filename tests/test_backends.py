"""Which services serve the local target, and where tasks connect (bootstrap/backends.py).

On the local target with nothing started (a state folder of the test's own), then on the session's
running stack; prod's endpoints come from PROD_CONNECTION_URL alone.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from bootstrap.backends import endpoints_for, select_backend, start_all, status_of
from bootstrap.config import resolve_settings
from bootstrap.errors import ConfigError, LocalOnlyError, NotReadyError, ServiceError
from bootstrap.processes import free_port
from bootstrap.state import StateDir
from tests.conftest import Stack, engine_settings, make_settings

PROD_URL = "postgresql://cruddur:s3cret@db.invalid:5432/cruddur"


def test_the_embedded_backend_on_moto_serves_every_aws_role_from_one_server(tmp_path: Path) -> None:
    state = StateDir(tmp_path / ".cruddur")
    on_moto = select_backend(make_settings(state.root), state)
    assert (on_moto.name, on_moto.reason, on_moto.engine) == ("embedded", "chosen by flag --backend", "moto")
    assert [s.name for s in on_moto.services] == ["postgres", "moto"]
    assert {role: on_moto.serving(role).name for role in ("postgres", "dynamodb", "cognito")} == {
        "postgres": "postgres", "dynamodb": "moto", "cognito": "moto"}


def test_with_dynamodb_local_a_moto_server_serves_cognito_alone(tmp_path: Path) -> None:
    state = StateDir(tmp_path / ".cruddur")
    on_local = select_backend(make_settings(state.root, **engine_settings("dynamodb-local")), state)
    assert on_local.engine == "dynamodb-local"
    assert [(s.name, s.roles) for s in on_local.services] == [
        ("postgres", ("postgres",)), ("dynamodb", ("dynamodb",)), ("cognito", ("cognito",))]


def test_the_backend_chosen_at_the_last_start_is_remembered_for_auto_with_its_date_and_how_to_change_it(
    tmp_path: Path
) -> None:
    state = StateDir(tmp_path / ".cruddur")
    state.update("backend", value="embedded")
    backend = select_backend(make_settings(state.root, backend="auto"), state)
    how = "; `--backend` another one, or `invoke down --purge`, chooses again"
    assert (backend.name, backend.reason) == ("embedded", f"remembered from the last start{how}")
    state.update("started_at", value="2026-12-06T02:40:13+00:00")
    backend = select_backend(make_settings(state.root, backend="auto"), state)
    assert backend.reason == f"remembered from the start on 2026-12-06 02:40 UTC{how}"


def test_a_remembered_external_backend_without_its_urls_says_where_the_choice_came_from(tmp_path: Path) -> None:
    state = StateDir(tmp_path / ".cruddur")
    state.update("backend", value="external")
    state.update("started_at", value="2026-12-06T02:40:13+00:00")
    with pytest.raises(ConfigError, match=r"^backend 'external' \(remembered from the start on 2026-12-06 02:40 UTC; "
                                          r"`--backend` another one, or `invoke down --purge`, chooses again\) needs "
                                          "CONNECTION_URL and AWS_ENDPOINT_URL"):
        select_backend(make_settings(state.root, backend="auto"), state)


def test_the_external_backend_needs_both_urls_and_serves_every_role_from_them(tmp_path: Path) -> None:
    state = StateDir(tmp_path / ".cruddur")
    with pytest.raises(ConfigError, match=r"^backend 'external' \(chosen by flag --backend\) needs CONNECTION_URL and "
                                          "AWS_ENDPOINT_URL set to the running services; CONNECTION_URL and "
                                          "AWS_ENDPOINT_URL are not set$"):
        select_backend(make_settings(state.root, backend="external"), state)
    settings = make_settings(state.root, backend="external", connection_url="postgresql://u:p@db.example:5432/app",
                             aws_endpoint_url="http://aws.example:4566")
    backend = select_backend(settings, state)
    assert [(s.name, s.url()) for s in backend.services] == [
        ("postgres", "postgresql://u:p@db.example:5432/app"), ("dynamodb", "http://aws.example:4566")]
    assert backend.serving("cognito").name == "dynamodb"


def test_only_a_start_whose_services_are_all_ready_is_remembered(tmp_path: Path, stack: Stack) -> None:
    """Services that never answer (nothing listens on their ports): the start fails and nothing is remembered."""
    state = StateDir(tmp_path / ".cruddur")
    settings = make_settings(state.root, backend="external",
                             connection_url=f"postgresql://postgres:password@localhost:{free_port()}/cruddur",
                             aws_endpoint_url=f"http://localhost:{free_port()}")
    with pytest.raises(NotReadyError):
        start_all(select_backend(settings, state), state, 0.5)
    assert state.read() == {}
    # The session's stack started successfully: its backend and engine are remembered, dated.
    assert (stack.state.get("backend"), stack.state.get("ddb_engine")) == ("embedded", stack.engine)
    assert datetime.fromisoformat(stack.state.get("started_at")).tzinfo is not None


def test_stopped_local_services_are_a_named_error_unless_not_required(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / ".cruddur")
    with pytest.raises(ServiceError, match=r"^postgres, moto not running; start the services with `invoke up`$"):
        endpoints_for(settings)
    endpoints = endpoints_for(settings, require_running=False)
    assert endpoints.postgres_url.endswith(f"@localhost:{settings.pg_port}/cruddur")
    assert endpoints.aws_endpoint_url == f"http://localhost:{settings.ddb_port}"
    rows = status_of(select_backend(settings, StateDir(settings.state_dir)))
    assert [(row.name, row.pid, row.running) for row in rows] == [("postgres", None, False), ("moto", None, False)]
    assert rows[0].endpoint == endpoints.postgres_url.replace(":password@", ":***@")


def test_the_running_stack_is_where_tasks_connect(stack: Stack) -> None:
    assert endpoints_for(stack.settings) == stack.endpoints
    rows = status_of(select_backend(stack.settings, stack.state))
    assert all(row.running and row.pid for row in rows), rows


def test_prod_endpoints_come_from_prod_connection_url_and_reach_real_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    prod = resolve_settings({}, {"PROD_CONNECTION_URL": PROD_URL}, {"target": "prod"})
    endpoints = endpoints_for(prod)
    assert (endpoints.postgres_url, endpoints.aws_endpoint_url, endpoints.region) == (PROD_URL, None, "eu-west-1")
    with pytest.raises(LocalOnlyError, match="^choosing local services is local-only"):
        select_backend(prod, StateDir(Path("unused")))
    with pytest.raises(ConfigError, match=r"^the prod target needs PROD_CONNECTION_URL \(the RDS database URL\)$"):
        endpoints_for(resolve_settings({}, {}, {"target": "prod"}))
