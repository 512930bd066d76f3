"""bootstrap.pg.users: every statement on the users table, against the real embedded Postgres.

Seeding, the Cognito sync and verify use these through their own tests too; here
each statement is checked on its own, on rows written by ``db.seed``.
"""

from __future__ import annotations

import pytest

from bootstrap.config import Endpoints
from bootstrap.ddb.table import UserRef
from bootstrap.errors import BootstrapError, InputError
from bootstrap.pg.connection import connect
from bootstrap.pg.seed import seed
from bootstrap.pg.users import (MOCK_COGNITO_USER_ID, cognito_user_ids, count_seeded, duplicate_handles, fetch_users,
                                find_users, lock_users, set_cognito_user_ids, unknown_handles)

from .helpers import FIXTURES, loaded


@pytest.fixture
def users_seeded(endpoints: Endpoints) -> Endpoints:
    seed(loaded(endpoints), FIXTURES)
    return endpoints


def test_fetch_users_without_the_table_says_what_to_run(endpoints: Endpoints) -> None:
    with pytest.raises(BootstrapError, match=r"public.users does not exist; run `invoke db.setup`"):
        fetch_users(endpoints.postgres_url)


def test_find_users_reads_only_the_named_users_and_names_the_unknown_ones(users_seeded: Endpoints) -> None:
    with connect(users_seeded.postgres_url) as conn:  # a user the lookup must not return
        conn.execute("insert into public.users (handle, display_name) values ('other', 'Other')")
    andrew = fetch_users(users_seeded.postgres_url)["andrew"]
    found = find_users(users_seeded.postgres_url, ["andrew", "andrew"])
    assert found == {"andrew": UserRef(andrew.uuid, "andrew", andrew.display_name or "andrew")}
    with pytest.raises(InputError, match=r"^--from: no user 'ghost', 'nobody'; the known handles are andrew, bayko"):
        find_users(users_seeded.postgres_url, ["ghost", "andrew", "nobody"], flag="--from")


def test_find_users_without_the_table_says_what_to_run(endpoints: Endpoints) -> None:
    with pytest.raises(BootstrapError, match=r"public.users does not exist; run `invoke db.setup`"):
        find_users(endpoints.postgres_url, ["andrew"])


def test_cognito_ids_are_read_and_set_by_handle_and_only_where_they_differ(users_seeded: Endpoints) -> None:
    with connect(users_seeded.postgres_url) as conn:
        assert cognito_user_ids(conn) == {"andrew": MOCK_COGNITO_USER_ID, "bayko": MOCK_COGNITO_USER_ID}
        assert count_seeded(conn, ["andrew", "bayko", "nobody"]) == (2, 2)
        assert set_cognito_user_ids(conn, [("andrew", "sub-a"), ("nobody", "sub-n")]) == 1
        assert set_cognito_user_ids(conn, [("andrew", "sub-a")]) == 0
        assert set_cognito_user_ids(conn, []) == 0
        assert cognito_user_ids(conn, ["andrew"]) == {"andrew": "sub-a"}
        assert count_seeded(conn, ["andrew", "bayko"]) == (2, 1)


def test_rows_without_a_handle_are_not_listed_by_handle(users_seeded: Endpoints) -> None:
    with connect(users_seeded.postgres_url) as conn:
        conn.execute("insert into public.users (display_name, cognito_user_id) values ('no handle', 'sub-x')")
        assert set(cognito_user_ids(conn)) == {"andrew", "bayko"}
        assert duplicate_handles(conn) == []


def test_lock_users_finds_rows_by_handle_or_uuid(users_seeded: Endpoints) -> None:
    andrew = FIXTURES.user("andrew")
    with connect(users_seeded.postgres_url) as conn:
        assert set(lock_users(conn, ["bayko"], [andrew.uuid])) == {"andrew", "bayko"}
        assert lock_users(conn, ["nobody"], []) == {}


def test_duplicate_handles_are_named(endpoints: Endpoints) -> None:
    loaded(endpoints)
    with connect(endpoints.postgres_url) as conn:
        # The schema keeps handles unique; a database that lost that index is what the check is for.
        conn.execute("drop index public.users_handle_key")
        conn.execute("insert into public.users (handle) values ('twin'), ('twin'), ('solo')")
        assert duplicate_handles(conn) == ["twin"]


def test_unknown_handles_are_named_with_the_known_ones() -> None:
    assert unknown_handles(["nobody"], {"tobias_w": 1, "maren_kiln": 2}) == \
        "no user 'nobody'; the known handles are maren_kiln, tobias_w"
    assert "run `invoke db.seed` first" in unknown_handles(["nobody"], {})
