"""Shared fixtures: real embedded Postgres and a real moto server, started once per test session.

Every test runs with a clean environment: the contract's variables are removed
and the state folder points into a temp dir, so no test touches the user's own
``.cruddur/`` or services.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pytest

from bootstrap.config import Endpoints, Settings, resolve_settings, with_database
from bootstrap.lifecycle import running_services
from bootstrap.services import EmbeddedPostgres, MotoServer, free_port
from bootstrap.state import StateDir

ENV_PREFIXES = ("CRUDDUR_", "AWS_", "CONNECTION_URL", "PROD_CONNECTION_URL", "INVOKE_")


@pytest.fixture(autouse=True)
def _isolated_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.startswith(ENV_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("CRUDDUR_STATE_DIR", str(tmp_path / ".cruddur"))
    monkeypatch.setenv("CRUDDUR_CACHE_DIR", str(_session_cache_dir(tmp_path)))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-aws-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-aws-config"))


def _session_cache_dir(tmp_path: Path) -> Path:
    """One cache folder per test session (shared by its tests), never the user's own ~/.cache."""
    return tmp_path.parent / "cruddur-cache"


@dataclass(frozen=True)
class Stack:
    """The session's running services and how to reach them."""

    settings: Settings
    state: StateDir
    endpoints: Endpoints
    postgres: EmbeddedPostgres
    moto: MotoServer


def make_settings(state_dir: Path, **flags: object) -> Settings:
    values = {"state_dir": str(state_dir), "pg_port": free_port(), "ddb_port": free_port(), "backend": "embedded",
              "cache_dir": str(state_dir.parent.parent / "cruddur-cache")}
    values.update(flags)
    return resolve_settings({}, {}, values)


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    settings = make_settings(tmp_path_factory.mktemp("stack") / ".cruddur")
    with running_services(settings) as (backend, endpoints):
        postgres, moto = backend.services
        yield Stack(settings, StateDir(settings.state_dir), endpoints, postgres, moto)


@pytest.fixture
def endpoints(stack: Stack, request: pytest.FixtureRequest) -> Iterator[Endpoints]:
    """Endpoints whose Postgres URL names a fresh, empty database of this test's own."""
    import psycopg

    name = f"t_{uuid.uuid4().hex[:12]}"
    admin = stack.endpoints.admin_postgres_url
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'create database "{name}"')
    yield Endpoints(with_database(stack.endpoints.postgres_url, name), stack.endpoints.aws_endpoint_url,
                    stack.endpoints.region)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def table_name() -> str:
    """A DynamoDB table name of this test's own, so tests can share one moto server."""
    return f"cruddur-messages-{uuid.uuid4().hex[:8]}"


PROJECT_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class Cli:
    """Runs ``invoke`` tasks as a separate process, the way a user does, against one state folder."""

    state_dir: Path
    env: dict[str, str]

    def __call__(self, *args: str, check: bool = True, timeout: float = 180, **extra_env: str):
        import subprocess
        import sys

        env = {**self.env, **extra_env}
        result = subprocess.run(
            [sys.executable, "-m", "invoke", *args], cwd=PROJECT_ROOT, env=env,
            capture_output=True, text=True, timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"invoke {' '.join(args)} exited {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"
            )
        return result

    def exported(self) -> dict[str, str]:
        """The variables `invoke env` prints, as the shell would see them after `eval`."""
        import shlex

        values = {}
        for line in self("env").stdout.splitlines():
            name, _, value = line.removeprefix("export ").partition("=")
            values[name] = shlex.split(value)[0] if value else ""
        return values


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[Cli]:
    """An ``invoke`` runner with its own state folder and free ports; stops what it started afterwards."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES)}
    env.update(
        CRUDDUR_STATE_DIR=str(tmp_path / "cli" / ".cruddur"),
        CRUDDUR_PG_PORT=str(free_port()),
        CRUDDUR_DDB_PORT=str(free_port()),
        CRUDDUR_BACKEND="embedded",
        CRUDDUR_CACHE_DIR=str(_session_cache_dir(tmp_path)),
        NO_COLOR="1",
        COLUMNS="200",
    )
    runner = Cli(tmp_path / "cli" / ".cruddur", env)
    yield runner
    runner("down", check=False)
