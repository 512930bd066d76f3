"""The pytest plugin for the app's own tests (entry point ``cruddur`` in the ``pytest11`` group).

Installing this project (``pip install -e path/to/cruddur-bootstrap``) is
enough: a test asks for the fixture ``cruddur_env`` and gets the local
environment in the seeded state, with ``postgres_url``, ``aws_endpoint_url``,
``cognito_endpoint_url``, ``user_pool_id``, ``table_name`` and
``boto3_session()``. The environment is brought up once per test session by
``up`` itself (a running one is reused, and ``up`` records ``seeded``); each
worker of pytest-xdist then works on a database, table and user pool of its
own, reset to the seeded state before each test only as far as the previous
test changed it (``bootstrap.states.worker``). The project is the folder
pytest runs in, or the one the ``cruddur_dir`` ini value or ``--cruddur-dir``
names; its ``invoke.yaml`` settings apply. Never on the prod target.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from .config import LOCAL_AWS_ACCESS_KEY_ID, LOCAL_AWS_SECRET_ACCESS_KEY, Settings

HELP = "the cruddur-bootstrap project folder (default: the folder pytest runs in)"


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini("cruddur_dir", HELP)
    # One word, `--cruddur-dir=PATH`: pytest takes a bare PATH argument as a place to look for its configuration too.
    parser.addoption("--cruddur-dir", default=None, help=f"{HELP}; give it as --cruddur-dir=PATH")


@dataclass(frozen=True)
class CruddurEnv:
    """What a test of the app needs to reach its own copy of the seeded environment."""

    postgres_url: str
    aws_endpoint_url: str | None
    cognito_endpoint_url: str | None
    user_pool_id: str | None
    table_name: str
    region: str

    def boto3_session(self) -> Any:
        """A boto3 session with the local credentials and region; pass ``endpoint_url`` to its clients."""
        import boto3  # type: ignore[import-untyped]  # boto3 ships no types; the session is used as Any

        return boto3.Session(aws_access_key_id=LOCAL_AWS_ACCESS_KEY_ID,
                             aws_secret_access_key=LOCAL_AWS_SECRET_ACCESS_KEY, region_name=self.region)


def project_settings(config: pytest.Config) -> Settings:
    """The project's settings: its invoke.yaml, then the environment, as `invoke` would resolve them."""
    import yaml

    from .config import resolve_settings
    from .errors import ConfigError
    from .guard import require_local
    from .pg.schema import SCHEMA_FILE

    if not SCHEMA_FILE.is_file():
        # A wheel holds the package alone; the SQL, fixtures and tasks stay in the clone.
        raise ConfigError(f"cruddur-bootstrap is installed without the clone's files ({SCHEMA_FILE} is missing): "
                          "install the clone editable (`pip install -e path/to/cruddur-bootstrap`)")
    folder = Path(config.getoption("--cruddur-dir") or config.getini("cruddur_dir") or os.getcwd()).resolve()
    file = folder / "invoke.yaml"
    values = (yaml.safe_load(file.read_text()) or {}).get("cruddur") or {} if file.is_file() else {}
    defaults = {"state_dir": str(folder / ".cruddur"), "seeds_dir": str(folder / "seeds")}
    settings = resolve_settings({**defaults, **values}, None, {})
    require_local(settings, "the cruddur pytest plugin")
    return settings


@pytest.fixture(scope="session")
def _cruddur_worker(request: pytest.FixtureRequest) -> Iterator[Any]:
    from .backends import endpoints_for
    from .console import quiet
    from .states import worker
    from .up.run import up

    from .errors import BootstrapError

    try:
        settings = project_settings(request.config)
        with quiet(True):
            up(settings)  # reuses a running environment; records `seeded`
        environment = worker.prepare(settings, endpoints_for(settings),
                                     os.environ.get("PYTEST_XDIST_WORKER", "main"))
    except BootstrapError as exc:
        pytest.fail(f"cruddur: {exc}", pytrace=False)
    yield environment
    environment.remove()


@pytest.fixture
def cruddur_env(_cruddur_worker: Any) -> CruddurEnv:
    """The local environment in the seeded state: this worker's own database, table and user pool."""
    _cruddur_worker.reset()
    endpoints = _cruddur_worker.endpoints
    return CruddurEnv(endpoints.postgres_url, endpoints.aws_endpoint_url, endpoints.endpoint_for("cognito-idp"),
                      endpoints.user_pool_id, _cruddur_worker.table_name, endpoints.region)
