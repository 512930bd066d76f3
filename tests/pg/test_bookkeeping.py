"""bootstrap.pg.bookkeeping: bootstrap_meta read, upserted and forgotten, against the real embedded Postgres."""

from __future__ import annotations

from bootstrap.config import Endpoints
from bootstrap.pg.bookkeeping import forget, read, read_meta, write_meta
from bootstrap.pg.connection import connect


def test_meta_is_empty_before_the_table_exists_and_upserts(endpoints: Endpoints) -> None:
    url = endpoints.postgres_url
    assert read_meta(url) == {}
    write_meta(url, {"a": "1", "b": "2"})
    write_meta(url, {"b": "3"})
    assert read_meta(url) == {"a": "1", "b": "3"}


def test_forget_removes_only_the_named_keys(endpoints: Endpoints) -> None:
    url = endpoints.postgres_url
    with connect(url) as conn:
        forget(conn, ["a"])  # no table yet: nothing to forget, and no error
    write_meta(url, {"a": "1", "b": "2"})
    with connect(url) as conn:
        forget(conn, ["a", "c"])
        assert read(conn) == {"b": "2"}
