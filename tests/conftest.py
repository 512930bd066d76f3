"""Shared fixtures: real embedded Postgres and real DynamoDB engines, started once per test session.

DynamoDB-facing tests are marked ``both_engines`` and run twice: on moto, and
on AWS's DynamoDB Local (``ddb_engine``). The DynamoDB Local half skips, saying
why, where Java 17+ or DynamoDB Local's files are missing (``.ci/run`` installs
both). Other tests run on moto only.

A test whose part (Java, DynamoDB Local, Docker, a Python version) is missing
calls ``skip_missing``: outside CI it skips, saying what is missing; on CI
(``CI`` set and not "false"/"0") or with ``CRUDDUR_REQUIRE_ALL=1`` it fails,
naming it, so that a green run cannot hide half of the behaviour never ran.

Every test runs with a clean environment: the contract's variables are removed
and the state folder points into a temp dir, so no test touches the user's own
``.cruddur/`` or services. As root, the system folder (where Postgres's system
user gets what it cannot reach in the 0700 temp folders) is one of the
session's own under /tmp, removed at the end.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping, NoReturn

import pytest

from bootstrap.services import dynamodb_local
from bootstrap.config import Endpoints, Settings, resolve_settings, with_database
from bootstrap.lifecycle import running_services
from bootstrap.processes import free_port
from bootstrap.services.base import Backend
from bootstrap.state import StateDir
from tests.helpers import ENV_PREFIXES, Cli, invoke_environment


def requires_all(environ: Mapping[str, str]) -> bool:
    """Whether a missing part fails a test instead of skipping it: on CI, or with CRUDDUR_REQUIRE_ALL=1."""
    ci = environ.get("CI", "").strip().lower()
    return ci not in ("", "false", "0") or environ.get("CRUDDUR_REQUIRE_ALL", "").strip() == "1"


# Read once at import: each test's environment is cleaned of CRUDDUR_* variables (_isolated_environment).
REQUIRE_ALL = requires_all(os.environ)


def skip_missing(missing: str) -> NoReturn:
    """Skip the calling test because ``missing`` names a part this machine lacks; on CI, fail naming it instead."""
    if REQUIRE_ALL:
        pytest.fail(f"missing on this machine: {missing} (CI or CRUDDUR_REQUIRE_ALL=1 requires every part; "
                    "outside CI this test would skip)", pytrace=False)
    pytest.skip(missing)


@pytest.fixture(scope="session", autouse=True)
def _session_system_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The session's own system folder (setting system_dir), outside the temp folders that are closed (0700).

    Set up before, and so torn down after, every other session fixture: their services are stopped by then.
    """
    digest = hashlib.sha256(str(tmp_path_factory.getbasetemp()).encode()).hexdigest()[:12]
    folder = Path("/tmp") / f"cruddur-test-{digest}"
    os.environ["CRUDDUR_SYSTEM_DIR"] = str(folder)  # for the session; each test's environment keeps it
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    system_dir = os.environ["CRUDDUR_SYSTEM_DIR"]
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CRUDDUR_SYSTEM_DIR", system_dir)
    monkeypatch.setenv("CRUDDUR_STATE_DIR", str(tmp_path / ".cruddur"))
    monkeypatch.setenv("CRUDDUR_CACHE_DIR", str(_session_cache_dir(tmp_path)))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))


def _session_cache_dir(tmp_path: Path) -> Path:
    """One cache folder per test session (shared by its tests), never the user's own ~/.cache."""
    return tmp_path.parent / "cruddur-cache"


# --- the DynamoDB engines ---------------------------------------------------------------

ENGINES = ("moto", "dynamodb-local")


def _dynamodb_local() -> tuple[dict[str, str], str | None]:
    """The settings that reach this machine's DynamoDB Local from a test, or why it cannot run here.

    Looked up with the user's own defaults (their cache folder, where
    ``ddb.install-local`` and .ci/run put it), before any test isolates the environment.
    """
    settings = resolve_settings({}, {k: v for k, v in os.environ.items() if k.startswith(("CRUDDUR_", "JAVA"))}, {})
    available, why = dynamodb_local.availability(settings)
    if not available:
        return {}, f"DynamoDB Local cannot run here: {why}"
    installation = dynamodb_local.find_installation(settings)
    assert installation is not None
    return ({"dynamodb_local_path": str(installation.jar_dir)} if installation.jar_dir else {}), None


DYNAMODB_LOCAL_SETTINGS, DYNAMODB_LOCAL_MISSING = _dynamodb_local()


def engine_settings(engine: str) -> dict[str, str]:
    """The setting values that run ``engine`` (skipping the test where it cannot run; failing on CI)."""
    if engine == "dynamodb-local" and DYNAMODB_LOCAL_MISSING:
        skip_missing(DYNAMODB_LOCAL_MISSING)
    return {"ddb_engine": engine, **(DYNAMODB_LOCAL_SETTINGS if engine == "dynamodb-local" else {})}


def engine_environment(engine: str) -> dict[str, str]:
    """``engine_settings`` as the environment variables an ``invoke`` process reads."""
    return {f"CRUDDUR_{name.upper()}": value for name, value in engine_settings(engine).items()}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses a ``cli`` fixture runs ``invoke`` as a process, as a user does: it is ``slow`` (end-to-end).

    Tests that run ``invoke`` some other way carry the marker themselves.
    """
    for item in items:
        if "cli" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "ddb_engine" in metafunc.fixturenames and metafunc.definition.get_closest_marker("both_engines"):
        metafunc.parametrize("ddb_engine", ENGINES, indirect=True, scope="session")


@pytest.fixture(scope="session")
def ddb_engine(request: pytest.FixtureRequest) -> str:
    """The DynamoDB engine of this test: both, for tests marked ``both_engines``; else moto."""
    return getattr(request, "param", "moto")


@dataclass(frozen=True)
class Stack:
    """The session's running services and how to reach them."""

    settings: Settings
    state: StateDir
    endpoints: Endpoints
    backend: Backend
    engine: str


def make_settings(state_dir: Path, **flags: object) -> Settings:
    values = {"state_dir": str(state_dir), "pg_port": free_port(), "ddb_port": free_port(), "backend": "embedded",
              "cognito_port": free_port(), "ddb_engine": "moto",
              "cache_dir": str(state_dir.parent.parent / "cruddur-cache"),
              "system_dir": os.environ["CRUDDUR_SYSTEM_DIR"]}
    values.update(flags)
    return resolve_settings({}, {}, values)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory, ddb_engine: str) -> Iterator[Stack]:
    settings = make_settings(tmp_path_factory.mktemp("stack") / ".cruddur", **engine_settings(ddb_engine))
    with running_services(settings) as (backend, endpoints):
        yield Stack(settings, StateDir(settings.state_dir), endpoints, backend, ddb_engine)


@pytest.fixture
def endpoints(stack: Stack, request: pytest.FixtureRequest) -> Iterator[Endpoints]:
    """Endpoints whose Postgres URL names a fresh, empty database of this test's own."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = stack.endpoints.admin_postgres_url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    yield Endpoints(with_database(stack.endpoints.postgres_url, name), stack.endpoints.aws_endpoint_url,
                    stack.endpoints.region, cognito_endpoint_url=stack.endpoints.cognito_endpoint_url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def table_name() -> str:
    """A DynamoDB table name of this test's own, so tests can share one moto server."""
    return f"cruddur-messages-{uuid.uuid4().hex[:8]}"


def session_cli(state_dir: Path, cache_dir: Path, **values: str) -> Cli:
    """An ``invoke`` runner for ``state_dir`` (tests.helpers) that also has the session's system folder."""
    return Cli(state_dir, invoke_environment(state_dir, **{
        "CRUDDUR_SYSTEM_DIR": os.environ["CRUDDUR_SYSTEM_DIR"], "CRUDDUR_CACHE_DIR": str(cache_dir), **values}))


@pytest.fixture
def cli(tmp_path: Path, ddb_engine: str) -> Iterator[Cli]:
    """An ``invoke`` runner with its own state folder and free ports; stops what it started afterwards."""
    runner = session_cli(tmp_path / "cli" / ".cruddur", _session_cache_dir(tmp_path), COLUMNS="200",
                         **engine_environment(ddb_engine))
    yield runner
    runner("down", check=False)
