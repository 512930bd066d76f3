"""bootstrap.pg.seed: pure planning with plain values, then the doing against the real embedded Postgres.

Every integration test gets a fresh empty database from the ``endpoints`` fixture.
"""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from bootstrap.config import PROJECT_ROOT, Endpoints
from bootstrap.errors import BootstrapError, DriftError
from bootstrap.fixtures.model import ActivityFixture, user_uuid
from bootstrap.fixtures.parse import load_fixtures
from bootstrap.fixtures.yamlfile import FixtureError
from bootstrap.meta import ACTIVITIES_FINGERPRINT, USERS_FINGERPRINT
from bootstrap.pg.bookkeeping import read_meta
from bootstrap.pg.connection import connect
from bootstrap.pg.database import table_row_counts
from bootstrap.pg.schema import load_schema
from bootstrap.pg.seed import ActivityRow, plan_activities, plan_users, seed, seed_state, setup_database
from bootstrap.pg.users import UserRow, fetch_users
from bootstrap.steps import Action

from .helpers import ADDITIVE, FIXTURES, SEEDS, T0, Edit, loaded, make_fixtures, snapshot, untouched


# --- pure planning -------------------------------------------------------------------------


def _row(handle: str, cognito: str | None = "MOCK", name: str | None = None, uuid: str | None = None) -> UserRow:
    user = FIXTURES.user(handle)
    return UserRow(uuid or user.uuid, handle, name or user.display_name, user.email, cognito)


def test_plan_users_inserts_new_users_with_deterministic_uuid_and_mock_id() -> None:
    plan = plan_users({}, FIXTURES.users)
    assert [(r.uuid, r.cognito_user_id) for r in plan.inserts] == [(user_uuid("andrew"), "MOCK"),
                                                                    (user_uuid("bayko"), "MOCK")]
    assert not plan.updates and not plan.unchanged


def test_plan_users_leaves_identical_rows_alone() -> None:
    existing = {"andrew": _row("andrew"), "bayko": _row("bayko")}
    plan = plan_users(existing, FIXTURES.users)
    assert len(plan.unchanged) == 2 and not plan.inserts and not plan.updates


def test_plan_users_keeps_a_synced_cognito_id_while_updating_other_columns() -> None:
    existing = {"andrew": _row("andrew", cognito="sub-123", name="Old Name"), "bayko": _row("bayko", cognito="sub-9")}
    plan = plan_users(existing, FIXTURES.users)
    assert plan.updates == (_row("andrew", cognito="sub-123"),)
    assert plan.unchanged == (_row("bayko", cognito="sub-9"),)


def test_plan_users_gives_a_null_cognito_id_the_placeholder() -> None:
    plan = plan_users({"andrew": _row("andrew", cognito=None)}, FIXTURES.users[:1])
    assert plan.updates[0].cognito_user_id == "MOCK"


def test_plan_users_keeps_an_existing_rows_uuid() -> None:
    foreign = "00000000-0000-0000-0000-000000000001"
    plan = plan_users({"andrew": _row("andrew", uuid=foreign)}, FIXTURES.users[:1])
    assert plan.unchanged[0].uuid == foreign and plan.uuid_by_handle == {"andrew": foreign}


def test_plan_users_refuses_a_uuid_that_belongs_to_another_handle() -> None:
    squatter = UserRow(user_uuid("andrew"), "renamed", "x", "x@example.test", "MOCK")
    with pytest.raises(DriftError, match="renamed"):
        plan_users({"renamed": squatter}, FIXTURES.users[:1])


def _activity_row(fixture: ActivityFixture, expires_at: datetime | None, message: str | None = None) -> ActivityRow:
    return ActivityRow(fixture.uuid, user_uuid(fixture.handle), message or fixture.message, expires_at, T0)


def test_plan_activities_compares_expiry_against_created_at() -> None:
    first, second, third = FIXTURES.activities
    existing = {
        first.uuid: _activity_row(first, None),
        second.uuid: _activity_row(second, T0 + timedelta(days=7)),
        third.uuid: _activity_row(third, T0 + timedelta(days=3)),
    }
    plan = plan_activities(existing, FIXTURES.activities, {"andrew": user_uuid("andrew"), "bayko": user_uuid("bayko")})
    assert [a.uuid for a in plan.unchanged] == [first.uuid, second.uuid]
    assert [(a.uuid, a.expires_in_days) for a in plan.updates] == [(third.uuid, 30)]


def test_plan_activities_inserts_missing_and_updates_changed_messages() -> None:
    first, second, _ = FIXTURES.activities
    existing = {first.uuid: _activity_row(first, None, message="edited")}
    plan = plan_activities(existing, FIXTURES.activities, {"andrew": "u-a", "bayko": "u-b"})
    assert [a.uuid for a in plan.updates] == [first.uuid]
    assert len(plan.inserts) == 2 and plan.inserts[1].user_uuid == "u-b"


# --- against the real embedded Postgres -----------------------------------------------------------


def test_seed_twice_gives_the_same_rows_and_writes_nothing_the_second_time(endpoints: Endpoints) -> None:
    loaded(endpoints)
    first = seed(endpoints, FIXTURES)
    assert first.action is Action.CREATED and first.writes == 2 + 3 + 2
    before = snapshot(endpoints.postgres_url)
    second = seed(endpoints, FIXTURES)
    assert (second.action, second.writes) == (Action.UNCHANGED, 0)
    assert "users 0 created, 0 updated, 2 unchanged" in second.detail
    assert snapshot(endpoints.postgres_url) == before

    users = fetch_users(endpoints.postgres_url)
    assert {h: u.uuid for h, u in users.items()} == {"andrew": user_uuid("andrew"), "bayko": user_uuid("bayko")}
    assert {u.cognito_user_id for u in users.values()} == {"MOCK"}
    meta = read_meta(endpoints.postgres_url)
    assert meta[USERS_FINGERPRINT] == FIXTURES.users_fingerprint
    assert meta[ACTIVITIES_FINGERPRINT] == FIXTURES.activities_fingerprint


def test_up_observations_follow_seeding_and_cognito_sync(endpoints: Endpoints) -> None:
    url = endpoints.postgres_url
    empty = seed_state(url, FIXTURES)
    assert (empty.meta, empty.rows_present, empty.unsynced_users) == ({}, False, 0)
    loaded(endpoints)
    assert not seed_state(url, FIXTURES).rows_present
    seed(endpoints, FIXTURES)
    state = seed_state(url, FIXTURES)
    assert state.rows_present and state.unsynced_users == 2
    assert state.meta[USERS_FINGERPRINT] == FIXTURES.users_fingerprint
    with connect(url) as conn:
        conn.execute("update public.users set cognito_user_id = 'sub-andrew' where handle = 'andrew'")
    assert seed_state(url, FIXTURES).unsynced_users == 1


def test_seed_sets_expiry_from_days(endpoints: Endpoints) -> None:
    loaded(endpoints)
    seed(endpoints, FIXTURES)
    with connect(endpoints.postgres_url) as conn:
        rows = dict(conn.execute("select message, expires_at - created_at from public.activities").fetchall())
    assert rows == {"first post": None, "second post": timedelta(days=7), "hello": timedelta(days=30)}


def test_reseed_keeps_a_synced_cognito_id_and_applies_fixture_edits(endpoints: Endpoints) -> None:
    loaded(endpoints)
    seed(endpoints, FIXTURES)
    with connect(endpoints.postgres_url) as conn:
        conn.execute("update public.users set cognito_user_id = 'sub-andrew' where handle = 'andrew'")
    edited = make_fixtures(
        [("andrew", "Andrew B.", "andrew@example.test"), ("bayko", "Andrew Bayko", "bayko@example.test")],
        [("andrew", "first post", None), ("andrew", "second post", 7), ("bayko", "hello", 30)],
    )
    result = seed(endpoints, edited)
    assert (result.action, result.writes) == (Action.UPDATED, 1 + 1)
    andrew = fetch_users(endpoints.postgres_url)["andrew"]
    assert (andrew.display_name, andrew.cognito_user_id) == ("Andrew B.", "sub-andrew")


def test_a_bad_fixture_set_writes_nothing(endpoints: Endpoints, tmp_path: Path) -> None:
    loaded(endpoints)
    seed(endpoints, FIXTURES)
    before = snapshot(endpoints.postgres_url)
    (tmp_path / "users.yaml").write_text(textwrap.dedent("""\
        users:
          - {handle: andrew, display_name: Someone Else, email: andrew@example.test}
          - {handle: zed, display_name: Zed, email: zed@example.test}
    """))
    (tmp_path / "activities.yaml").write_text(textwrap.dedent("""\
        activities:
          - {handle: andrew, message: fine}
          - {handle: nobody, message: this handle does not exist}
          - {handle: zed, message: also fine}
    """))
    with pytest.raises(FixtureError) as raised:
        seed(endpoints, load_fixtures(tmp_path))
    assert raised.value.exit_code == 2 and "activities.yaml:3" in str(raised.value)
    assert snapshot(endpoints.postgres_url) == before


def test_a_failure_in_the_middle_of_seeding_rolls_everything_back(endpoints: Endpoints) -> None:
    loaded(endpoints)
    seed(endpoints, FIXTURES)
    with connect(endpoints.postgres_url) as conn:
        conn.execute("alter table public.activities add constraint no_boom check (message <> 'boom')")
    before = snapshot(endpoints.postgres_url)
    broken = make_fixtures(
        [("andrew", "Changed", "andrew@example.test"), ("carol", "Carol", "carol@example.test")],
        [("andrew", "edited", None), ("carol", "boom", None)],
    )
    with pytest.raises(BootstrapError, match="nothing was changed.*no_boom"):
        seed(endpoints, broken)
    assert snapshot(endpoints.postgres_url) == before


def test_hostile_strings_round_trip_exactly(endpoints: Endpoints) -> None:
    loaded(endpoints)
    texts = [
        "'; drop table users; --",
        'O\'Brien "the \\ quoter" %s %(x)s $1 {}',
        "emoji 🔥🥣👩🏽‍🔬 and RTL \u202eدرس\u202c نور",
        "  leading and trailing spaces  ",
        "line one\nline two\ttabbed",
    ]
    hostile = make_fixtures(
        [("q_user", texts[1], "o'brien+%s@example.test"), ("rtl_user", texts[2], "noor@example.test")],
        [("q_user", text, None) for text in texts],
    )
    seed(endpoints, hostile)
    users = fetch_users(endpoints.postgres_url)
    assert (users["q_user"].display_name, users["q_user"].email) == (texts[1], "o'brien+%s@example.test")
    assert users["rtl_user"].display_name == texts[2]
    with connect(endpoints.postgres_url) as conn:
        messages = [m for (m,) in conn.execute("select message from public.activities").fetchall()]
    assert sorted(messages) == sorted(texts)
    assert seed(endpoints, hostile).writes == 0


def test_seed_without_the_schema_says_what_to_run(endpoints: Endpoints) -> None:
    with pytest.raises(BootstrapError, match="db.schema-load"):
        seed(endpoints, FIXTURES)


def test_the_real_seed_files_load_and_seed(endpoints: Endpoints) -> None:
    fixtures = load_fixtures(PROJECT_ROOT / "seeds")
    results = setup_database(endpoints, fixtures)
    assert [r.action for r in results] == [Action.UNCHANGED, Action.CREATED, Action.CREATED]
    assert table_row_counts(endpoints) == {"users": len(fixtures.users),
                                                    "activities": len(fixtures.activities)}


def test_fixtures_fill_a_new_column_once_the_schema_has_it(seeded: Endpoints, edit_schema: Edit) -> None:
    from dataclasses import replace

    from bootstrap.errors import InputError

    first = SEEDS.users[0]
    fixtures = replace(SEEDS, users=(replace(first, columns=(("bio", "Throws stoneware"), ("karma", 7))),
                                        *SEEDS.users[1:]))
    before = untouched(seeded)
    with pytest.raises(InputError, match=rf"users.yaml line {first.line}: 'bio' is not a column of public.users"):
        seed(seeded, fixtures)
    assert untouched(seeded) == before

    edit_schema(*ADDITIVE)
    load_schema(seeded)
    result = seed(seeded, fixtures)
    assert (result.action, result.writes) == (Action.UPDATED, 1 + 1)  # the row, and the users fingerprint
    assert result.detail.endswith("`columns:` set on 1 rows")
    with connect(seeded.postgres_url) as conn:
        assert conn.execute("select bio, karma from users where handle = %s", (first.handle,)).fetchone() == (
            "Throws stoneware", 7)
    again = seed(seeded, fixtures)
    assert (again.action, again.writes) == (Action.UNCHANGED, 0)
