"""bootstrap.pg.connection: connecting and reporting failures, against the real embedded Postgres."""

from __future__ import annotations

import pytest

from bootstrap.config import Endpoints, with_database
from bootstrap.errors import BootstrapError
from bootstrap.pg.connection import APP_TABLES, arrays, connect, existing_tables

from .helpers import loaded


def test_connecting_to_a_missing_database_names_the_masked_url(endpoints: Endpoints) -> None:
    url = with_database(endpoints.postgres_url, "t_never_created")
    with pytest.raises(BootstrapError, match=r"\*\*\*.*db\.create") as raised:
        connect(url)
    assert "password" not in str(raised.value)


def test_existing_tables_names_only_the_app_tables_present(endpoints: Endpoints) -> None:
    with connect(endpoints.postgres_url) as conn:
        assert existing_tables(conn, APP_TABLES) == set()
    loaded(endpoints)
    with connect(endpoints.postgres_url) as conn:
        assert existing_tables(conn, [*APP_TABLES, "likes"]) == set(APP_TABLES)


def test_arrays_gives_one_list_per_attribute() -> None:
    from bootstrap.pg.users import UserRow

    rows = [UserRow("u1", "a", None, "a@x.test", "MOCK"), UserRow("u2", "b", "B", None, None)]
    assert arrays(rows, "uuid", "display_name") == (["u1", "u2"], [None, "B"])
