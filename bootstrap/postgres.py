"""The app database in Postgres: create/drop, schema, seeding, sessions.

All SQL that defines tables lives in ``sql/``; every query here is
parameterised. psycopg is imported lazily.
"""

from __future__ import annotations

from typing import Any

from .config import Endpoints
from .steps import Action, StepResult


def connect(url: str, autocommit: bool = False) -> Any:
    import psycopg

    return psycopg.connect(url, autocommit=autocommit, connect_timeout=10)


def database_exists(endpoints: Endpoints) -> bool:
    with connect(endpoints.admin_postgres_url, autocommit=True) as conn:
        row = conn.execute("select 1 from pg_database where datname = %s", (endpoints.database_name,)).fetchone()
    return row is not None


def create_database(endpoints: Endpoints) -> StepResult:
    """Create the app database if it is missing."""
    from psycopg import errors, sql

    if database_exists(endpoints):
        return StepResult("db.create", Action.UNCHANGED, f"database {endpoints.database_name} exists")
    with connect(endpoints.admin_postgres_url, autocommit=True) as conn:
        try:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(endpoints.database_name)))
        except errors.DuplicateDatabase:
            return StepResult("db.create", Action.UNCHANGED, f"database {endpoints.database_name} exists")
    return StepResult("db.create", Action.CREATED, f"database {endpoints.database_name}", writes=1)
