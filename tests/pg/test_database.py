"""bootstrap.pg.database: create, drop, sessions and psql, against the real embedded Postgres.

Every test gets a fresh empty database from the ``endpoints`` fixture.
"""

from __future__ import annotations

from typing import Any

import pytest

from bootstrap.config import Endpoints, with_database
from bootstrap.errors import BootstrapError
from bootstrap.pg.connection import connect
from bootstrap.pg.database import (create_database, database_exists, drop_database, kill_sessions, list_sessions,
                                   psql_command)
from bootstrap.steps import Action

from .helpers import loaded


def test_psql_command_keeps_the_password_off_the_command_line() -> None:
    command = psql_command("postgresql://app:p%40ss%3Aw0rd@db.example:5433/cruddur", "/usr/bin/psql")
    assert command.argv == ("/usr/bin/psql", "postgresql://app@db.example:5433/cruddur")
    assert command.env == {"PGPASSWORD": "p@ss:w0rd"}


def test_create_twice_creates_once(endpoints: Endpoints) -> None:
    other = Endpoints(with_database(endpoints.postgres_url, endpoints.database_name + "_c"), None, "us-east-1")
    try:
        assert create_database(other).action is Action.CREATED
        assert create_database(other).action is Action.UNCHANGED
        assert database_exists(other)
    finally:
        drop_database(other)


def test_drop_of_a_missing_database_is_not_an_error(endpoints: Endpoints) -> None:
    missing = Endpoints(with_database(endpoints.postgres_url, "t_never_created"), None, "us-east-1")
    assert drop_database(missing).action is Action.UNCHANGED


def test_drop_ends_other_sessions(endpoints: Endpoints) -> None:
    other = connect(endpoints.postgres_url, autocommit=True)
    result = drop_database(endpoints)
    assert result.action is Action.REMOVED and "1 other sessions" in result.detail
    assert not database_exists(endpoints)
    other.close()


def test_drop_refuses_a_system_database(endpoints: Endpoints) -> None:
    admin = Endpoints(endpoints.admin_postgres_url, None, "us-east-1")
    with pytest.raises(BootstrapError, match="system database"):
        drop_database(admin)


def test_sessions_lists_and_kill_sessions_ends_another_connection(endpoints: Endpoints) -> None:
    import psycopg

    assert list_sessions(endpoints) == []
    assert kill_sessions(endpoints).action is Action.UNCHANGED
    with psycopg.connect(endpoints.postgres_url, autocommit=True, application_name="other-app") as other:
        other_pid = other.info.backend_pid
        sessions = list_sessions(endpoints)
        assert [(s.pid, s.application) for s in sessions] == [(other_pid, "other-app")]
        result = kill_sessions(endpoints)
        assert (result.action, result.writes) == (Action.REMOVED, 1)
        with pytest.raises(psycopg.OperationalError):
            other.execute("select 1")
    assert list_sessions(endpoints) == []


# --- the prod guard, through the task itself ------------------------------------------------------------


def test_prod_drop_refuses_without_yes(prod_context: Any, endpoints: Endpoints) -> None:
    from invoke import Exit

    import tasks

    loaded(endpoints)
    with pytest.raises(Exit) as raised:
        tasks.db_drop(prod_context, target="prod")
    assert raised.value.code == 3
    assert endpoints.database_name in raised.value.message and "***" not in raised.value.message
    assert database_exists(endpoints)

    tasks.db_drop(prod_context, target="prod", yes=True)
    assert not database_exists(endpoints)
