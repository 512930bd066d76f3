"""Evolving the app tables in place, against the real embedded Postgres.

Each test gets its own database (the ``endpoints`` fixture), loads the
project's ``sql/schema.sql``, seeds the project's fixtures and adds rows "the
app created". Then ``postgres.SCHEMA_FILE`` is pointed at an edited copy of
schema.sql (the one input these tests change; monkeypatched because the file
is a module constant, not a setting) and db.schema-load runs as a function or
as the task itself. The prod target is this test's database named by
PROD_CONNECTION_URL, as in test_postgres.py.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Callable

import pytest

from bootstrap.meta import SCHEMA_CATALOG, SCHEMA_CHECKSUM
from bootstrap import postgres, schemaload
from bootstrap.config import PROJECT_ROOT, Endpoints, resolve_settings
from bootstrap.errors import RefusedError
from bootstrap.fixtures import load_fixtures
from bootstrap.steps import Action

FIXTURES = load_fixtures(PROJECT_ROOT / "seeds")
ORIGINAL = (PROJECT_ROOT / "sql" / "schema.sql").read_text(encoding="utf-8")
USER_COLUMNS = "uuid, display_name, email, handle, cognito_user_id, created_at"
ACTIVITY_COLUMNS = "uuid, user_uuid, message, replies_count, likes_count, expires_at, created_at"

ADDITIVE = (
    [("  handle text,\n", "  handle text,\n  bio text,\n  karma integer not null default 0,\n"),
     ("  expires_at timestamp,\n", "  expires_at timestamp,\n  quoted_uuid uuid references activities (uuid),\n")],
    """
create index activities_created_at_idx on activities (created_at);
create table likes (
  user_uuid uuid not null references users (uuid) on delete cascade,
  activity_uuid uuid not null references activities (uuid) on delete cascade,
  created_at timestamp not null default current_timestamp,
  primary key (user_uuid, activity_uuid)
);
""",
)

Edit = Callable[..., None]


@pytest.fixture
def edit_schema(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Edit:
    """Make sql/schema.sql read as the original with ``replacements`` made and ``append`` added."""

    def edit(replacements: list[tuple[str, str]] = (), append: str = "") -> None:  # type: ignore[assignment]
        text = ORIGINAL
        for old, new in replacements:
            assert old in text, old
            text = text.replace(old, new)
        path = tmp_path / "schema.sql"
        path.write_text(text + append, encoding="utf-8")
        monkeypatch.setattr(postgres, "SCHEMA_FILE", path)

    return edit


@pytest.fixture
def loaded(endpoints: Endpoints) -> Endpoints:
    """The project's schema and fixtures, plus one user and two activities the app created."""
    postgres.load_schema(endpoints)
    postgres.seed(endpoints, FIXTURES)
    with postgres.connect(endpoints.postgres_url) as conn:
        conn.execute("insert into users (handle, display_name, email) values ('from_app', null, 'app@example.test')")
        # Longer than any fixture's message, so that narrowing the column below fits the fixtures only.
        conn.execute("insert into activities (user_uuid, message)"
                     " select uuid, 'written in the app ' || repeat('x', 200)"
                     " from users where handle in ('from_app', %s)", (FIXTURES.users[0].handle,))
    return endpoints


def _rows(endpoints: Endpoints) -> dict[str, list[tuple[Any, ...]]]:
    """The original columns of every row, in a stable order."""
    with postgres.connect(endpoints.postgres_url) as conn:
        return {
            "users": conn.execute(f"select {USER_COLUMNS} from users order by uuid").fetchall(),
            "activities": conn.execute(f"select {ACTIVITY_COLUMNS} from activities order by uuid").fetchall(),
        }


def _untouched(endpoints: Endpoints) -> tuple[Any, ...]:
    """Every row with its xmin (any write changes it), the bookkeeping, and the tables' catalog."""
    with postgres.connect(endpoints.postgres_url) as conn:
        rows = tuple(conn.execute(f"select t::text, t.xmin::text from {table} t order by 1").fetchall()
                     for table in ("users", "activities", "bootstrap_meta"))
    return rows, postgres.seed_state(endpoints.postgres_url, FIXTURES).catalog_fingerprint


def _prod_settings(endpoints: Endpoints, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("PROD_CONNECTION_URL", endpoints.postgres_url)
    return resolve_settings({}, None, {"target": "prod"})


def test_additive_changes_are_applied_in_place_keeping_every_row(loaded: Endpoints, edit_schema: Edit) -> None:
    before = _rows(loaded)
    edit_schema(*ADDITIVE)
    result = postgres.load_schema(loaded)
    assert result.action is Action.UPDATED
    assert result.detail.startswith("6 changes: public.activities: add column quoted_uuid uuid;")
    for part in ("add foreign key activities_quoted_uuid_fkey", "add index activities_created_at_idx",
                 "public.likes: create table (3 columns, 3 constraints, 0 indexes)", "add column bio text",
                 "add column karma integer default 0 not null"):
        assert part in result.detail
    assert _rows(loaded) == before
    with postgres.connect(loaded.postgres_url) as conn:
        assert conn.execute("select count(*), count(bio), min(karma), max(karma) from users").fetchone() == (6, 0, 0, 0)
        assert conn.execute("select count(*) from likes").fetchone() == (0,)

    again = postgres.load_schema(loaded)
    assert (again.action, again.writes) == (Action.UNCHANGED, 0)
    assert postgres.schema_report(loaded).plan.unchanged


def test_an_edit_that_changes_no_table_is_unchanged_and_recorded(loaded: Endpoints, edit_schema: Edit) -> None:
    edit_schema([], append="\n-- a comment, and a statement that declares nothing new\n"
                           "create index if not exists activities_user_uuid_idx on activities (user_uuid);\n")
    before = _rows(loaded)
    result = postgres.load_schema(loaded)
    assert (result.action, result.writes, result.detail) == (Action.UNCHANGED, 0, "the tables match sql/schema.sql")
    assert postgres.read_meta(loaded.postgres_url)[SCHEMA_CHECKSUM] == postgres.schema_checksum()
    assert _rows(loaded) == before


def test_fixtures_fill_a_new_column_once_the_schema_has_it(loaded: Endpoints, edit_schema: Edit) -> None:
    from dataclasses import replace

    from bootstrap.errors import InputError

    first = FIXTURES.users[0]
    fixtures = replace(FIXTURES, users=(replace(first, columns=(("bio", "Throws stoneware"), ("karma", 7))),
                                        *FIXTURES.users[1:]))
    before = _untouched(loaded)
    with pytest.raises(InputError, match=rf"users.yaml line {first.line}: 'bio' is not a column of public.users"):
        postgres.seed(loaded, fixtures)
    assert _untouched(loaded) == before

    edit_schema(*ADDITIVE)
    postgres.load_schema(loaded)
    result = postgres.seed(loaded, fixtures)
    assert (result.action, result.writes) == (Action.UPDATED, 1 + 1)  # the row, and the users fingerprint
    assert result.detail.endswith("`columns:` set on 1 rows")
    with postgres.connect(loaded.postgres_url) as conn:
        assert conn.execute("select bio, karma from users where handle = %s", (first.handle,)).fetchone() == (
            "Throws stoneware", 7)
    again = postgres.seed(loaded, fixtures)
    assert (again.action, again.writes) == (Action.UNCHANGED, 0)


def test_the_sql_a_dry_run_prints_is_the_sql_applied(loaded: Endpoints, edit_schema: Edit,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    edit_schema(*ADDITIVE)
    planned = postgres.schema_report(loaded).plan.statements()
    caplog.set_level(logging.DEBUG, logger="bootstrap.postgres")
    postgres.load_schema(loaded)
    applied = [r.args[0] for r in caplog.records if r.msg == "db.schema-load: %s"]
    assert applied == planned and len(planned) == 9


DESTRUCTIVE = {
    "drop a column": ([("  likes_count integer default 0,\n", "")],
                      "public.activities: drop column likes_count (11 rows with a value in likes_count)"),
    "narrow a type": ([("  message text not null,", "  message varchar(100) not null,")],
                      "public.activities: column message: type text -> character varying(100) (narrows or rewrites) "
                      "(11 rows with a value in message)"),
    "NOT NULL on a column with nulls": ([("  display_name text,", "  display_name text not null,")],
                                        "public.users: column display_name: set not null (1 row with NULL in "
                                        "display_name)"),
    "a unique index the data violates": ([], "add unique index users_email_key USING btree (email) (the data "
                                             "violates it: could not create unique index"),
}


@pytest.mark.parametrize("case", DESTRUCTIVE)
def test_destructive_changes_are_refused_with_the_difference_and_nothing_written(
        case: str, loaded: Endpoints, edit_schema: Edit) -> None:
    replacements, shown = DESTRUCTIVE[case]
    if case == "a unique index the data violates":
        with postgres.connect(loaded.postgres_url) as conn:
            conn.execute("update users set email = 'same@example.test' where handle = 'from_app'")
            conn.execute("update users set email = 'same@example.test' where handle = %s", (FIXTURES.users[0].handle,))
    edit_schema(replacements, append="\ncreate unique index users_email_key on users (email);\n"
                if case == "a unique index the data violates" else "")
    before = _untouched(loaded)
    with pytest.raises(RefusedError) as raised:
        postgres.load_schema(loaded)
    message = " ".join(str(raised.value).split())
    assert shown in message and "[needs --force]" in message and "nothing was written" in message
    assert raised.value.exit_code == 3
    assert _untouched(loaded) == before


@pytest.mark.parametrize("case, kept_app_rows", [
    ("drop a column", (1, 2)),  # dropped in place: only that column's values go
    ("narrow a type", (1, 0)),  # the values do not fit: activities is rebuilt, users kept
    ("NOT NULL on a column with nulls", (0, 0)),  # users rebuilt, and activities, which references it
])
def test_force_says_what_it_loses_then_rebuilds_and_reseeds(
        case: str, kept_app_rows: tuple[int, int], loaded: Endpoints, edit_schema: Edit,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    edit_schema(DESTRUCTIVE[case][0])
    settings = _prod_settings(loaded, monkeypatch)
    results = schemaload.run(settings, force=True, yes=True)
    said = " ".join(capsys.readouterr().err.split())
    assert said.startswith("--force would: ")
    if case == "NOT NULL on a column with nulls":
        assert ("drop and create again public.activities (11 rows, 9 from seeds/), public.users (6 rows, 5 from "
                "seeds/): 3 rows created by the app (not in seeds/) are lost") in said
    assert [(r.step, r.action is Action.UNCHANGED) for r in results] == [
        ("db.schema-load", False), ("db.seed", kept_app_rows == (1, 2))]
    assert "[forced]" in results[0].detail
    if case == "narrow a type":
        assert "(if a value does not convert, the table is rebuilt instead)" in said
        assert "rebuilt public.activities empty" in results[0].detail
    assert postgres.schema_report(loaded).plan.unchanged
    with postgres.connect(loaded.postgres_url) as conn:
        app_users = conn.execute("select count(*) from users where handle = 'from_app'").fetchone()[0]
        app_activities = conn.execute("select count(*) from activities where message like 'written in the app%'"
                                      ).fetchone()[0]
    assert (app_users, app_activities) == kept_app_rows
    state = postgres.seed_state(loaded.postgres_url, FIXTURES)
    assert state.rows_present


def test_a_column_dropped_by_hand_is_drift_that_up_notices_and_repairs(loaded: Endpoints) -> None:
    from bootstrap.up import Desired, Observed, plan_up

    postgres.load_schema(loaded)
    with postgres.connect(loaded.postgres_url) as conn:
        conn.execute("alter table activities drop column likes_count")
    state = postgres.seed_state(loaded.postgres_url, FIXTURES)
    desired = Desired(postgres.schema_checksum(), "u", "a", "c")
    observed = Observed(True, True, state.meta, True, True, True, "pool", 0, state.catalog_fingerprint)
    step = next(p for p in plan_up(observed, desired) if p.name == "db.schema-load")
    assert step.runs and step.reason == "the tables changed since the schema was loaded"
    assert postgres.schema_report(loaded).plan.describe() == [
        "public.activities: add column likes_count integer default 0"]
    assert postgres.load_schema(loaded).action is Action.UPDATED
    assert postgres.seed_state(loaded.postgres_url, FIXTURES).catalog_fingerprint == (
        postgres.read_meta(loaded.postgres_url)[SCHEMA_CATALOG])


def test_a_broken_schema_file_is_bad_input_naming_its_line_and_writes_nothing(loaded: Endpoints,
                                                                             edit_schema: Edit) -> None:
    from bootstrap.errors import InputError

    edit_schema([("  cognito_user_id text,", "  cognito_user_id txet,")])
    before = _untouched(loaded)
    with pytest.raises(InputError, match=r'^sql/schema.sql:15: type "txet" does not exist') as raised:
        postgres.load_schema(loaded)
    assert raised.value.exit_code == 2
    assert _untouched(loaded) == before


# --- the prod guard ------------------------------------------------------------------------


@pytest.fixture
def prod_context(loaded: Endpoints, monkeypatch: pytest.MonkeyPatch) -> Any:
    from invoke import Config, Context

    monkeypatch.setenv("PROD_CONNECTION_URL", loaded.postgres_url)
    return Context(Config(overrides={"cruddur": {}}))


def _exit_code(call: Callable[[], Any]) -> int:
    from invoke import Exit

    try:
        call()
    except Exit as exc:
        return exc.code
    return 0


def test_prod_shows_the_plan_and_applies_only_with_yes(prod_context: Any, loaded: Endpoints, edit_schema: Edit,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import tasks

    edit_schema(*ADDITIVE)
    before = _untouched(loaded)
    assert _exit_code(lambda: tasks.db_schema_load(prod_context, target="prod", dry_run=True)) == 0
    assert _exit_code(lambda: tasks.db_schema_load(prod_context, target="prod")) == 3
    out = capsys.readouterr().out
    assert out.count("alter table public.users add column bio text;") == 2 and "***" in out
    assert _untouched(loaded) == before
    assert _exit_code(lambda: tasks.db_schema_load(prod_context, target="prod", yes=True)) == 0
    assert postgres.schema_report(loaded).plan.unchanged


def test_prod_destructive_changes_need_force_and_yes(prod_context: Any, loaded: Endpoints, edit_schema: Edit) -> None:
    import tasks

    edit_schema(DESTRUCTIVE["drop a column"][0])
    before = _untouched(loaded)
    for flags in ({}, {"yes": True}, {"force": True}):
        assert _exit_code(lambda: tasks.db_schema_load(prod_context, target="prod", **flags)) == 3, flags
        assert _untouched(loaded) == before
    assert _exit_code(lambda: tasks.db_schema_load(prod_context, target="prod", force=True, yes=True)) == 0
    assert postgres.schema_report(loaded).plan.unchanged


# --- as a user runs it -----------------------------------------------------------------------


def test_up_and_verify_find_a_column_dropped_by_hand_and_up_repairs_it(cli) -> None:
    import json

    import psycopg

    cli("up")
    with psycopg.connect(cli.exported()["CONNECTION_URL"]) as conn:
        conn.execute("alter table activities drop column likes_count")
    difference = "public.activities: add column likes_count integer default 0"

    failed = cli("verify", check=False)
    assert failed.returncode == 1 and difference in " ".join((failed.stdout + failed.stderr).split())
    dry = cli("up", "--dry-run").stdout
    assert "the tables changed since the schema was loaded" in " ".join(dry.split())
    assert "  alter table public.activities add column likes_count integer default 0;\n" in dry

    steps = {s["step"]: s for s in json.loads(cli("up", "--json").stdout)["steps"]}
    schema = steps["db.schema-load"]
    assert (schema["action"], schema["detail"]) == ("updated", f"1 change: {difference}")
    again = {s["step"]: s["action"] for s in json.loads(cli("up", "--json").stdout)["steps"]}
    assert set(again.values()) == {"unchanged"}, again
    cli("verify")
