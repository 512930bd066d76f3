"""bootstrap.pg.schema: loading and evolving the app tables in place, against the real embedded Postgres.

Each test gets its own database (the ``endpoints`` fixture). The evolution tests
load the project's ``sql/schema.sql``, seed the project's fixtures and add rows
"the app created" (the ``seeded`` fixture), then point ``schema.SCHEMA_FILE`` at
an edited copy of schema.sql (``edit_schema``) and run db.schema-load.
"""

from __future__ import annotations

import logging

import pytest

from bootstrap.config import Endpoints
from bootstrap.errors import RefusedError
from bootstrap.meta import SCHEMA_CATALOG, SCHEMA_CHECKSUM
from bootstrap.pg.bookkeeping import read_meta
from bootstrap.pg.connection import connect
from bootstrap.pg.schema import load_schema, schema_checksum, schema_report
from bootstrap.pg.seed import seed, seed_state
from bootstrap.steps import Action

from .helpers import ADDITIVE, DESTRUCTIVE, FIXTURES, SEEDS, Edit, rows, snapshot, untouched


def test_schema_load_twice_reports_unchanged_and_keeps_data(endpoints: Endpoints) -> None:
    assert load_schema(endpoints).action is Action.CREATED
    seed(endpoints, FIXTURES)
    before = snapshot(endpoints.postgres_url)
    second = load_schema(endpoints)
    assert (second.action, second.writes) == (Action.UNCHANGED, 0)
    assert snapshot(endpoints.postgres_url) == before
    meta = read_meta(endpoints.postgres_url)
    assert meta[SCHEMA_CHECKSUM] == schema_checksum()
    assert meta[SCHEMA_CATALOG] == seed_state(endpoints.postgres_url, FIXTURES).catalog_fingerprint


def test_additive_changes_are_applied_in_place_keeping_every_row(seeded: Endpoints, edit_schema: Edit) -> None:
    before = rows(seeded)
    edit_schema(*ADDITIVE)
    result = load_schema(seeded)
    assert result.action is Action.UPDATED
    assert result.detail.startswith("6 changes: public.activities: add column quoted_uuid uuid;")
    for part in ("add foreign key activities_quoted_uuid_fkey", "add index activities_created_at_idx",
                 "public.likes: create table (3 columns, 3 constraints, 0 indexes)", "add column bio text",
                 "add column karma integer default 0 not null"):
        assert part in result.detail
    assert rows(seeded) == before
    with connect(seeded.postgres_url) as conn:
        assert conn.execute("select count(*), count(bio), min(karma), max(karma) from users").fetchone() == (6, 0, 0, 0)
        assert conn.execute("select count(*) from likes").fetchone() == (0,)

    again = load_schema(seeded)
    assert (again.action, again.writes) == (Action.UNCHANGED, 0)
    assert schema_report(seeded).plan.unchanged


def test_an_edit_that_changes_no_table_is_unchanged_and_recorded(seeded: Endpoints, edit_schema: Edit) -> None:
    edit_schema([], append="\n-- a comment, and a statement that declares nothing new\n"
                           "create index if not exists activities_user_uuid_idx on activities (user_uuid);\n")
    before = rows(seeded)
    result = load_schema(seeded)
    assert (result.action, result.writes, result.detail) == (Action.UNCHANGED, 0, "the tables match sql/schema.sql")
    assert read_meta(seeded.postgres_url)[SCHEMA_CHECKSUM] == schema_checksum()
    assert rows(seeded) == before


def test_the_sql_a_dry_run_prints_is_the_sql_applied(seeded: Endpoints, edit_schema: Edit,
                                                       caplog: pytest.LogCaptureFixture) -> None:
    edit_schema(*ADDITIVE)
    planned = schema_report(seeded).plan.statements()
    caplog.set_level(logging.DEBUG, logger="bootstrap.pg.schema")
    load_schema(seeded)
    applied = [r.args[0] for r in caplog.records if r.msg == "db.schema-load: %s"]
    assert applied == planned and len(planned) == 9


@pytest.mark.parametrize("case", DESTRUCTIVE)
def test_destructive_changes_are_refused_with_the_difference_and_nothing_written(
        case: str, seeded: Endpoints, edit_schema: Edit) -> None:
    replacements, shown = DESTRUCTIVE[case]
    if case == "a unique index the data violates":
        with connect(seeded.postgres_url) as conn:
            conn.execute("update users set email = 'same@example.test' where handle = 'from_app'")
            conn.execute("update users set email = 'same@example.test' where handle = %s", (SEEDS.users[0].handle,))
    edit_schema(replacements, append="\ncreate unique index users_email_key on users (email);\n"
                if case == "a unique index the data violates" else "")
    before = untouched(seeded)
    with pytest.raises(RefusedError) as raised:
        load_schema(seeded)
    message = " ".join(str(raised.value).split())
    assert shown in message and "[needs --force]" in message and "nothing was written" in message
    assert raised.value.exit_code == 3
    assert untouched(seeded) == before


def test_a_column_dropped_by_hand_is_drift_that_up_notices_and_repairs(seeded: Endpoints) -> None:
    from bootstrap.up.steps import Desired, Observed, plan_up

    load_schema(seeded)
    with connect(seeded.postgres_url) as conn:
        conn.execute("alter table activities drop column likes_count")
    state = seed_state(seeded.postgres_url, SEEDS)
    desired = Desired(schema_checksum(), "u", "a", "c")
    observed = Observed(True, True, state.meta, True, True, True, "pool", 0, state.catalog_fingerprint)
    step = next(p for p in plan_up(observed, desired) if p.name == "db.schema-load")
    assert step.runs and step.reason == "the tables changed since the schema was loaded"
    assert schema_report(seeded).plan.describe() == [
        "public.activities: add column likes_count integer default 0"]
    assert load_schema(seeded).action is Action.UPDATED
    assert seed_state(seeded.postgres_url, SEEDS).catalog_fingerprint == (
        read_meta(seeded.postgres_url)[SCHEMA_CATALOG])


def test_a_broken_schema_file_is_bad_input_naming_its_line_and_writes_nothing(seeded: Endpoints,
                                                                             edit_schema: Edit) -> None:
    from bootstrap.errors import InputError

    edit_schema([("  cognito_user_id text,", "  cognito_user_id txet,")])
    before = untouched(seeded)
    with pytest.raises(InputError, match=r'^sql/schema.sql:15: type "txet" does not exist') as raised:
        load_schema(seeded)
    assert raised.value.exit_code == 2
    assert untouched(seeded) == before


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
    assert set(again.values()) == {"unchanged", "passed"} and again["verify"] == "passed", again
    cli("verify")
