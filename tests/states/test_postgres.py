"""A state's database on real embedded Postgres: saved as a copy, loaded back, its sessions ended, deleted."""

from __future__ import annotations

import psycopg
import pytest

from bootstrap.config import Endpoints
from bootstrap.states.postgres import delete_database, load_database, save_database, saved_sizes, state_database


def _rows(endpoints: Endpoints) -> list[tuple]:
    with psycopg.connect(endpoints.postgres_url) as conn:
        return conn.execute("select id, name from things order by id").fetchall()


def test_saved_database_comes_back_and_replaces_the_changed_one(endpoints: Endpoints) -> None:
    with psycopg.connect(endpoints.postgres_url) as conn:
        conn.execute("create table things (id int primary key, name text)")
        conn.execute("insert into things values (1, 'one'), (2, 'two')")
    # A session of the app's stays open: saving ends it (Postgres copies only a database no one uses).
    app = psycopg.connect(endpoints.postgres_url, autocommit=True)
    assert save_database(endpoints, "mine") > 0
    with pytest.raises(psycopg.OperationalError):
        app.execute("select 1")
    with psycopg.connect(endpoints.postgres_url) as conn:
        conn.execute("delete from things where id = 1")
        conn.execute("insert into things values (3, 'three')")
    load_database(endpoints, "mine")
    assert _rows(endpoints) == [(1, "one"), (2, "two")]
    # The saved copy takes no connections, so nothing can change it.
    assert "mine" in saved_sizes(endpoints)
    with psycopg.connect(endpoints.admin_postgres_url) as conn:
        allowed = conn.execute("select datallowconn from pg_database where datname = %s",
                               (state_database(endpoints, "mine"),)).fetchone()[0]
    assert allowed is False
    assert delete_database(endpoints, "mine") is True
    assert delete_database(endpoints, "mine") is False
    assert "mine" not in saved_sizes(endpoints)


def test_saving_again_replaces_the_older_copy(endpoints: Endpoints) -> None:
    with psycopg.connect(endpoints.postgres_url) as conn:
        conn.execute("create table things (id int primary key, name text)")
    save_database(endpoints, "again")
    with psycopg.connect(endpoints.postgres_url) as conn:
        conn.execute("insert into things values (1, 'one')")
    save_database(endpoints, "again")
    with psycopg.connect(endpoints.postgres_url) as conn:
        conn.execute("delete from things")
    load_database(endpoints, "again")
    assert _rows(endpoints) == [(1, "one")]
    delete_database(endpoints, "again")
