"""The production guard (bootstrap/guard.py): its three refusals as plain calls, then proven with the tasks
run as processes against a stand-in for production.

"Production" here is a database of the session's local Postgres named by
PROD_CONNECTION_URL; nothing ever reaches real AWS: the processes run without
AWS credentials (and without the instance-metadata lookup), so a refusal that
came after an AWS call would fail differently (exit 2 "no AWS credentials")
instead of exiting 3 with the refusal.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from bootstrap.config import Endpoints, resolve_settings, with_database
from bootstrap.errors import LocalOnlyError, RefusedError
from bootstrap.guard import ask_once, require_confirmation, require_local, require_prod
from tests.conftest import Stack
from tests.helpers import ENV_PREFIXES, PROJECT_ROOT, run_concurrently

TABLE = "cruddur-messages"
LOCAL = resolve_settings({}, {}, {})
PROD = resolve_settings({}, {"PROD_CONNECTION_URL": "postgresql://u@db.invalid/cruddur", "CRUDDUR_REGION": "eu-west-1"},
                        {"target": "prod"})


def test_a_destructive_operation_on_prod_needs_yes_and_names_what_it_would_destroy() -> None:
    with pytest.raises(RefusedError) as refused:
        require_confirmation(PROD, False, "drop database cruddur")
    assert str(refused.value) == ("refusing on the prod target: this would drop database cruddur. "
                                  "Re-run with --yes to confirm.")
    assert refused.value.exit_code == 3
    require_confirmation(PROD, True, "drop database cruddur")
    require_confirmation(LOCAL, False, "drop database cruddur")  # local data is the user's own to rebuild


def test_local_only_and_prod_only_work_refuse_on_the_other_target_even_with_yes() -> None:
    require_local(LOCAL, "invoke down")
    require_prod(PROD, "ddb.deploy-stream-worker")
    with pytest.raises(RefusedError, match="^invoke down is local-only and never runs against the prod target$"):
        require_local(PROD, "invoke down")
    with pytest.raises(RefusedError,
                       match="^ddb.deploy-stream-worker is prod-only and never runs against the local target$"):
        require_prod(LOCAL, "ddb.deploy-stream-worker")


def test_every_local_only_entry_refuses_prod_one_way_with_one_exit_code(tmp_path: Path) -> None:
    """The lifecycle's and the backends' entries: the same error type, exit code and wording as the tasks'."""
    from bootstrap import lifecycle
    from bootstrap.backends import select_backend
    from bootstrap.state import StateDir

    entries = {
        "up": lambda: lifecycle.start_services(PROD),
        "down": lambda: lifecycle.down(PROD), "status": lambda: lifecycle.status(PROD),
        "env": lambda: lifecycle.env_variables(PROD), "backend": lambda: select_backend(PROD, StateDir(tmp_path)),
    }
    for name, entry in entries.items():
        with pytest.raises(LocalOnlyError) as refused:
            entry()
        assert refused.value.exit_code == 3 and isinstance(refused.value, RefusedError), name
        assert "is local-only and never runs against the prod target" in str(refused.value), name


def test_ask_once_asks_only_a_person_at_the_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    """stdin is replaced: a test has no terminal of its own."""
    asked: list[str] = []
    answers = iter(["y", "no"])
    monkeypatch.setattr("builtins.input", lambda prompt: asked.append(prompt) or next(answers))
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    ask_once(False, "Rebuild?", "cancelled")  # a script: not asked
    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    ask_once(True, "Rebuild?", "cancelled")  # --yes: not asked
    assert asked == []
    ask_once(False, "Rebuild?", "cancelled")
    with pytest.raises(RefusedError, match="^cancelled$"):
        ask_once(False, "Rebuild?", "cancelled")
    assert asked == ["Rebuild? [y/N] ", "Rebuild? [y/N] "]


# --- the tasks as processes against a stand-in for production ---------------------------


@pytest.fixture(scope="module")
def prod(stack: Stack) -> Iterator[Endpoints]:
    """A seeded database standing in for production (5 users, 9 activities)."""
    import psycopg

    from bootstrap.fixtures.parse import load_fixtures
    from bootstrap.pg.database import create_database
    from bootstrap.pg.schema import load_schema
    from bootstrap.pg.seed import seed

    name = f"prod_{uuid.uuid4().hex[:10]}"
    endpoints = Endpoints(with_database(stack.endpoints.postgres_url, name), None, stack.endpoints.region)
    create_database(endpoints)
    load_schema(endpoints)
    seed(endpoints, load_fixtures(PROJECT_ROOT / "seeds"))
    yield endpoints
    with psycopg.connect(stack.endpoints.admin_postgres_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture
def prod_env(prod: Endpoints, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES)}
    env.update(
        PROD_CONNECTION_URL=prod.postgres_url,
        CRUDDUR_STATE_DIR=str(tmp_path / ".cruddur"),
        AWS_EC2_METADATA_DISABLED="true",
        AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-aws-credentials"),
        AWS_CONFIG_FILE=str(tmp_path / "no-aws-config"), AWS_DEFAULT_REGION="eu-west-1",
        NO_COLOR="1", COLUMNS="200",
    )
    return env


def _contents(endpoints: Endpoints) -> tuple:
    """The stand-in's rows with their xmin (any rewrite changes it): equal results mean nothing was written."""
    import psycopg

    with psycopg.connect(endpoints.postgres_url) as conn:
        return tuple(conn.execute(f"select t.*::text, t.xmin::text from public.{table} t order by 1").fetchall()
                     for table in ("users", "activities"))


def _refusals(prod_env: dict[str, str], cases: dict[str, tuple[list[str], dict[str, str], str]]) -> dict[str, str]:
    """Run every case; the ones that did not exit 3 with their message, with what they printed instead."""
    results = dict(zip(cases, run_concurrently(prod_env, [(command, extra) for command, extra, _ in cases.values()])))
    return {
        name: f"exit {result.returncode}: {result.stderr[-600:]}"
        for name, result in results.items()
        if result.returncode != 3 or cases[name][2] not in result.stderr
    }


@pytest.mark.slow  # `invoke` processes
def test_destructive_tasks_refuse_on_prod_without_yes_and_name_what_they_would_destroy(
    prod: Endpoints, prod_env: dict[str, str]
) -> None:
    name = prod.database_name
    contents = f"database {name} with public.users (5 rows), public.activities (9 rows)"
    confirm = ". Re-run with --yes to confirm."
    cases = {
        "db.drop": (["db.drop", "--target", "prod"], {}, f"this would drop {contents}{confirm}"),
        "db.schema-load --force": (["db.schema-load", "--force", "--target", "prod"], {},
                                   f"this would drop the values or rebuild the tables that sql/schema.sql cannot "
                                       f"change in place, in {contents}{confirm}"),
        "db.setup --fresh": (["db.setup", "--fresh", "--target", "prod"], {},
                             f"this would drop and rebuild {contents}, then write the demo fixtures into "),
        "db.kill-sessions": (["db.kill-sessions", "--target", "prod"], {},
                             f"this would end every other session on database {name}{confirm}"),
        "ddb.drop": (["ddb.drop", "--target", "prod"], {},
                     f"this would delete the DynamoDB table {TABLE} and every item in it{confirm}"),
        "ddb.schema-load --recreate": (["ddb.schema-load", "--recreate", "--target", "prod"], {},
                                       f"this would drop and recreate the DynamoDB table {TABLE} when its key "
                                       f"schema differs (every item in it is lost){confirm}"),
        "up --fresh": (["up", "--fresh", "--target", "prod"], {},
                       f"this would drop the Postgres database, drop the DynamoDB table {TABLE} and delete the Cognito user "
                       f"pool"),
        "target from the environment": (["db.drop"], {"CRUDDUR_TARGET": "prod"}, f"this would drop {contents}"),
    }
    before = _contents(prod)
    assert _refusals(prod_env, cases) == {}
    assert _contents(prod) == before


@pytest.mark.slow  # `invoke` processes
def test_local_only_tasks_refuse_on_prod_even_with_yes(prod: Endpoints, prod_env: dict[str, str]) -> None:
    local_only = "is local-only and never runs against the prod target"
    as_prod = {"CRUDDUR_TARGET": "prod"}
    cases = {
        "up": (["up", "--target", "prod"], {}, "invoke up (it starts local services and seeds fixtures;"),
        "up --fresh --yes": (["up", "--fresh", "--yes", "--target", "prod"], {}, local_only),
        "up --dry-run": (["up", "--dry-run", "--target", "prod"], {}, local_only),
        "down": (["down"], as_prod, f"`invoke down` (it stops local services) {local_only}"),
        "status": (["status"], as_prod, f"`invoke status` (it shows local services) {local_only}"),
        "env": (["env"], as_prod, f"`invoke env` (it describes the local services) {local_only}; prod variables "
                                  "come from your deployment"),
        "cognito.seed-users": (["cognito.seed-users", "--target", "prod"], {}, f"cognito.seed-users {local_only}"),
        "ddb.seed --synthetic": (["ddb.seed", "--synthetic", "10:10", "--target", "prod"], {},
                                 f"ddb.seed --synthetic (generated load-test data) {local_only}"),
        "ddb.stream-worker": (["ddb.stream-worker", "--once"], as_prod, f"ddb.stream-worker (production runs the stream Lambda) {local_only}"),
    }
    before = _contents(prod)
    assert _refusals(prod_env, cases) == {}
    assert _contents(prod) == before
    state = Path(prod_env["CRUDDUR_STATE_DIR"])
    assert not (state / "postgres").exists() and not (state / "run" / "moto.pid").exists(), "a service was started"


@pytest.mark.slow  # `invoke` processes
def test_yes_lets_a_destructive_task_through(endpoints: Endpoints, prod_env: dict[str, str]) -> None:
    """The guard is a confirmation, not a wall: with --yes the stand-in database is dropped."""
    from bootstrap.pg.database import database_exists

    [result] = run_concurrently({**prod_env, "PROD_CONNECTION_URL": endpoints.postgres_url},
                        [(["db.drop", "--target", "prod", "--yes"], {})])
    assert result.returncode == 0, result.stderr
    assert not database_exists(endpoints)


@pytest.mark.slow  # `invoke` processes
def test_local_endpoint_with_the_prod_target_is_an_error_before_anything_runs(
    prod: Endpoints, prod_env: dict[str, str]
) -> None:
    """Chosen: an error, not a warning (see config._check_prod_endpoint): even --yes does not get past it."""
    from bootstrap.pg.database import database_exists

    [drop, listing] = run_concurrently(prod_env, [
        (["db.drop", "--target", "prod", "--yes"], {"AWS_ENDPOINT_URL": "http://localhost:8000"}),
        (["ddb.list-tables"], {"AWS_ENDPOINT_URL": "http://127.0.0.1:8000", "CRUDDUR_TARGET": "prod"}),
    ])
    for result in (drop, listing):
        assert result.returncode == 2, result.stderr
        assert "is a local endpoint, but the target is prod" in result.stderr
        assert "unset AWS_ENDPOINT_URL" in result.stderr
    assert "(flag --target)" in drop.stderr and "(env CRUDDUR_TARGET)" in listing.stderr
    assert database_exists(prod)
