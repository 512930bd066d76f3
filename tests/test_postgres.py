"""bootstrap.postgres: pure planning with plain values, then the doing against the real embedded Postgres.

Every integration test gets a fresh empty database from the ``endpoints`` fixture.
"""

from __future__ import annotations

import textwrap
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from bootstrap.meta import ACTIVITIES_FINGERPRINT, SCHEMA_CATALOG, SCHEMA_CHECKSUM, USERS_FINGERPRINT
from bootstrap import postgres
from bootstrap.config import PROJECT_ROOT, Endpoints, with_database
from bootstrap.errors import BootstrapError, DriftError
from bootstrap.fixtures import ActivityFixture, FixtureError, Fixtures, UserFixture, load_fixtures, user_uuid
from bootstrap.postgres import ActivityRow, UserRow, plan_activities, plan_users
from bootstrap.steps import Action

T0 = datetime(2025, 3, 1, 12, 0, 0)


def make_fixtures(users: list[tuple[str, str, str]], activities: list[tuple[str, str, int | None]]) -> Fixtures:
    ordinals: dict[str, int] = {}
    built = []
    for line, (handle, message, days) in enumerate(activities, start=1):
        built.append(ActivityFixture(handle, message, days, ordinals.get(handle, 0), line))
        ordinals[handle] = ordinals.get(handle, 0) + 1
    return Fixtures(
        tuple(UserFixture(h, name, email, line) for line, (h, name, email) in enumerate(users, start=1)),
        tuple(built),
        (),
    )


FIXTURES = make_fixtures(
    [("andrew", "Andrew Brown", "andrew@example.test"), ("bayko", "Andrew Bayko", "bayko@example.test")],
    [("andrew", "first post", None), ("andrew", "second post", 7), ("bayko", "hello", 30)],
)


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


def test_psql_command_keeps_the_password_off_the_command_line() -> None:
    command = postgres.psql_command("postgresql://app:p%40ss%3Aw0rd@db.example:5433/cruddur", "/usr/bin/psql")
    assert command.argv == ("/usr/bin/psql", "postgresql://app@db.example:5433/cruddur")
    assert command.env == {"PGPASSWORD": "p@ss:w0rd"}


# --- against the real embedded Postgres -----------------------------------------------------------


def _snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every column of every row of the app tables and bootstrap_meta, in a stable order."""
    with postgres.connect(url) as conn:
        return {
            table: conn.execute(f"select * from public.{table} order by 1").fetchall()
            for table in ("users", "activities", "bootstrap_meta")
        }


def _loaded(endpoints: Endpoints) -> Endpoints:
    postgres.load_schema(endpoints)
    return endpoints


def test_create_twice_creates_once(endpoints: Endpoints) -> None:
    other = Endpoints(with_database(endpoints.postgres_url, endpoints.database_name + "_c"), None, "us-east-1")
    try:
        assert postgres.create_database(other).action is Action.CREATED
        assert postgres.create_database(other).action is Action.UNCHANGED
        assert postgres.database_exists(other)
    finally:
        postgres.drop_database(other)


def test_drop_of_a_missing_database_is_not_an_error(endpoints: Endpoints) -> None:
    missing = Endpoints(with_database(endpoints.postgres_url, "t_never_created"), None, "us-east-1")
    assert postgres.drop_database(missing).action is Action.UNCHANGED


def test_drop_ends_other_sessions(endpoints: Endpoints) -> None:
    other = postgres.connect(endpoints.postgres_url, autocommit=True)
    result = postgres.drop_database(endpoints)
    assert result.action is Action.REMOVED and "1 other sessions" in result.detail
    assert not postgres.database_exists(endpoints)
    other.close()


def test_drop_refuses_a_system_database(endpoints: Endpoints) -> None:
    admin = Endpoints(endpoints.admin_postgres_url, None, "us-east-1")
    with pytest.raises(BootstrapError, match="system database"):
        postgres.drop_database(admin)


def test_connecting_to_a_missing_database_names_the_masked_url(endpoints: Endpoints) -> None:
    url = with_database(endpoints.postgres_url, "t_never_created")
    with pytest.raises(BootstrapError, match=r"\*\*\*.*db\.create") as raised:
        postgres.read_meta(url)
    assert "password" not in str(raised.value)


def test_schema_load_twice_reports_unchanged_and_keeps_data(endpoints: Endpoints) -> None:
    assert postgres.load_schema(endpoints).action is Action.CREATED
    postgres.seed(endpoints, FIXTURES)
    before = _snapshot(endpoints.postgres_url)
    second = postgres.load_schema(endpoints)
    assert (second.action, second.writes) == (Action.UNCHANGED, 0)
    assert _snapshot(endpoints.postgres_url) == before
    meta = postgres.read_meta(endpoints.postgres_url)
    assert meta[SCHEMA_CHECKSUM] == postgres.schema_checksum()
    assert meta[SCHEMA_CATALOG] == postgres.seed_state(endpoints.postgres_url, FIXTURES).catalog_fingerprint


def test_meta_is_empty_before_the_table_exists_and_upserts(endpoints: Endpoints) -> None:
    url = endpoints.postgres_url
    assert postgres.read_meta(url) == {}
    postgres.write_meta(url, {"a": "1", "b": "2"})
    postgres.write_meta(url, {"b": "3"})
    assert postgres.read_meta(url) == {"a": "1", "b": "3"}


def test_seed_twice_gives_the_same_rows_and_writes_nothing_the_second_time(endpoints: Endpoints) -> None:
    _loaded(endpoints)
    first = postgres.seed(endpoints, FIXTURES)
    assert first.action is Action.CREATED and first.writes == 2 + 3 + 2
    before = _snapshot(endpoints.postgres_url)
    second = postgres.seed(endpoints, FIXTURES)
    assert (second.action, second.writes) == (Action.UNCHANGED, 0)
    assert "users 0 created, 0 updated, 2 unchanged" in second.detail
    assert _snapshot(endpoints.postgres_url) == before

    users = postgres.fetch_users(endpoints.postgres_url)
    assert {h: u.uuid for h, u in users.items()} == {"andrew": user_uuid("andrew"), "bayko": user_uuid("bayko")}
    assert {u.cognito_user_id for u in users.values()} == {"MOCK"}
    meta = postgres.read_meta(endpoints.postgres_url)
    assert meta[USERS_FINGERPRINT] == FIXTURES.users_fingerprint
    assert meta[ACTIVITIES_FINGERPRINT] == FIXTURES.activities_fingerprint


def test_up_observations_follow_seeding_and_cognito_sync(endpoints: Endpoints) -> None:
    url = endpoints.postgres_url
    empty = postgres.seed_state(url, FIXTURES)
    assert (empty.meta, empty.rows_present, empty.unsynced_users) == ({}, False, 0)
    _loaded(endpoints)
    assert not postgres.seed_state(url, FIXTURES).rows_present
    postgres.seed(endpoints, FIXTURES)
    state = postgres.seed_state(url, FIXTURES)
    assert state.rows_present and state.unsynced_users == 2
    assert state.meta[USERS_FINGERPRINT] == FIXTURES.users_fingerprint
    with postgres.connect(url) as conn:
        conn.execute("update public.users set cognito_user_id = 'sub-andrew' where handle = 'andrew'")
    assert postgres.seed_state(url, FIXTURES).unsynced_users == 1


def test_seed_sets_expiry_from_days(endpoints: Endpoints) -> None:
    _loaded(endpoints)
    postgres.seed(endpoints, FIXTURES)
    with postgres.connect(endpoints.postgres_url) as conn:
        rows = dict(conn.execute("select message, expires_at - created_at from public.activities").fetchall())
    assert rows == {"first post": None, "second post": timedelta(days=7), "hello": timedelta(days=30)}


def test_reseed_keeps_a_synced_cognito_id_and_applies_fixture_edits(endpoints: Endpoints) -> None:
    _loaded(endpoints)
    postgres.seed(endpoints, FIXTURES)
    with postgres.connect(endpoints.postgres_url) as conn:
        conn.execute("update public.users set cognito_user_id = 'sub-andrew' where handle = 'andrew'")
    edited = make_fixtures(
        [("andrew", "Andrew B.", "andrew@example.test"), ("bayko", "Andrew Bayko", "bayko@example.test")],
        [("andrew", "first post", None), ("andrew", "second post", 7), ("bayko", "hello", 30)],
    )
    result = postgres.seed(endpoints, edited)
    assert (result.action, result.writes) == (Action.UPDATED, 1 + 1)
    andrew = postgres.fetch_users(endpoints.postgres_url)["andrew"]
    assert (andrew.display_name, andrew.cognito_user_id) == ("Andrew B.", "sub-andrew")


def test_a_bad_fixture_set_writes_nothing(endpoints: Endpoints, tmp_path: Path) -> None:
    _loaded(endpoints)
    postgres.seed(endpoints, FIXTURES)
    before = _snapshot(endpoints.postgres_url)
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
        postgres.seed(endpoints, load_fixtures(tmp_path))
    assert raised.value.exit_code == 2 and "activities.yaml:3" in str(raised.value)
    assert _snapshot(endpoints.postgres_url) == before


def test_a_failure_in_the_middle_of_seeding_rolls_everything_back(endpoints: Endpoints) -> None:
    _loaded(endpoints)
    postgres.seed(endpoints, FIXTURES)
    with postgres.connect(endpoints.postgres_url) as conn:
        conn.execute("alter table public.activities add constraint no_boom check (message <> 'boom')")
    before = _snapshot(endpoints.postgres_url)
    broken = make_fixtures(
        [("andrew", "Changed", "andrew@example.test"), ("carol", "Carol", "carol@example.test")],
        [("andrew", "edited", None), ("carol", "boom", None)],
    )
    with pytest.raises(BootstrapError, match="nothing was changed.*no_boom"):
        postgres.seed(endpoints, broken)
    assert _snapshot(endpoints.postgres_url) == before


def test_hostile_strings_round_trip_exactly(endpoints: Endpoints) -> None:
    _loaded(endpoints)
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
    postgres.seed(endpoints, hostile)
    users = postgres.fetch_users(endpoints.postgres_url)
    assert (users["q_user"].display_name, users["q_user"].email) == (texts[1], "o'brien+%s@example.test")
    assert users["rtl_user"].display_name == texts[2]
    with postgres.connect(endpoints.postgres_url) as conn:
        messages = [m for (m,) in conn.execute("select message from public.activities").fetchall()]
    assert sorted(messages) == sorted(texts)
    assert postgres.seed(endpoints, hostile).writes == 0


def test_seed_without_the_schema_says_what_to_run(endpoints: Endpoints) -> None:
    with pytest.raises(BootstrapError, match="db.schema-load"):
        postgres.seed(endpoints, FIXTURES)


def test_the_real_seed_files_load_and_seed(endpoints: Endpoints) -> None:
    fixtures = load_fixtures(PROJECT_ROOT / "seeds")
    results = postgres.setup_database(endpoints, fixtures)
    assert [r.action for r in results] == [Action.UNCHANGED, Action.CREATED, Action.CREATED]
    assert postgres.table_row_counts(endpoints) == {"users": len(fixtures.users),
                                                    "activities": len(fixtures.activities)}


def test_sessions_lists_and_kill_sessions_ends_another_connection(endpoints: Endpoints) -> None:
    import psycopg

    assert postgres.list_sessions(endpoints) == []
    assert postgres.kill_sessions(endpoints).action is Action.UNCHANGED
    with psycopg.connect(endpoints.postgres_url, autocommit=True, application_name="other-app") as other:
        other_pid = other.info.backend_pid
        sessions = postgres.list_sessions(endpoints)
        assert [(s.pid, s.application) for s in sessions] == [(other_pid, "other-app")]
        result = postgres.kill_sessions(endpoints)
        assert (result.action, result.writes) == (Action.REMOVED, 1)
        with pytest.raises(psycopg.OperationalError):
            other.execute("select 1")
    assert postgres.list_sessions(endpoints) == []


# --- the prod guard, through the tasks themselves ---------------------------------------------


@pytest.fixture
def prod_context(endpoints: Endpoints, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An invoke Context whose settings resolve to the prod target, with this test's database as 'prod'."""
    from invoke import Config, Context

    monkeypatch.setenv("PROD_CONNECTION_URL", endpoints.postgres_url)
    return Context(Config(overrides={"cruddur": {}}))


def test_prod_drop_refuses_without_yes(prod_context: Any, endpoints: Endpoints) -> None:
    from invoke import Exit

    import tasks

    _loaded(endpoints)
    with pytest.raises(Exit) as raised:
        tasks.db_drop(prod_context, target="prod")
    assert raised.value.code == 3
    assert endpoints.database_name in raised.value.message and "***" not in raised.value.message
    assert postgres.database_exists(endpoints)

    tasks.db_drop(prod_context, target="prod", yes=True)
    assert not postgres.database_exists(endpoints)


def test_prod_schema_force_and_fresh_setup_refuse_without_yes(prod_context: Any, endpoints: Endpoints) -> None:
    from invoke import Exit

    import tasks

    _loaded(endpoints)
    postgres.seed(endpoints, FIXTURES)
    before = _snapshot(endpoints.postgres_url)
    for call in (lambda: tasks.db_schema_load(prod_context, target="prod", force=True),
                 lambda: tasks.db_setup(prod_context, target="prod", fresh=True)):
        with pytest.raises(Exit) as raised:
            call()
        assert raised.value.code == 3 and "public.users (2 rows)" in raised.value.message
    assert _snapshot(endpoints.postgres_url) == before
