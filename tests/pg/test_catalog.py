"""bootstrap.pg.catalog: the live tables and the declared ones, read alike, against the real embedded Postgres."""

from __future__ import annotations

import pytest

from bootstrap.config import Endpoints
from bootstrap.errors import InputError
from bootstrap.pg.bookkeeping import write_meta
from bootstrap.pg.connection import connect
from bootstrap.pg.catalog import compare, desired_catalog, live_catalog, row_counts

from .helpers import ORIGINAL, loaded


def test_the_declared_tables_read_like_the_loaded_ones_and_leave_nothing_behind(endpoints: Endpoints) -> None:
    with connect(endpoints.postgres_url) as conn:
        declared = desired_catalog(conn, ORIGINAL)
        assert live_catalog(conn).tables == ()
    assert sorted(t.name for t in declared.tables) == ["activities", "users"]
    loaded(endpoints)
    write_meta(endpoints.postgres_url, {"a": "1"})  # this tool's own table is not an app table
    with connect(endpoints.postgres_url) as conn:
        assert live_catalog(conn).fingerprint() == declared.fingerprint()
        live, desired, plan = compare(conn, ORIGINAL)
        assert plan.unchanged and live == desired
        assert row_counts(conn, ["users", "activities"]) == {"users": 0, "activities": 0}


def test_a_schema_that_does_not_run_names_its_line(endpoints: Endpoints) -> None:
    with connect(endpoints.postgres_url) as conn, pytest.raises(InputError, match=r"^sql/schema.sql:2: "):
        desired_catalog(conn, "create table a (id integer);\ncreate table b (id nosuchtype);\n")
