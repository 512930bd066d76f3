"""bootstrap.pg.schemaload: db.schema-load's plan, prompts and prod guard, against the real embedded Postgres.

The prod target is this test's database named by PROD_CONNECTION_URL (``prod_context``, ``prod_settings``).
"""

from __future__ import annotations

from typing import Any

import pytest

from bootstrap.config import Endpoints
from bootstrap.pg.connection import connect
from bootstrap.pg.schema import schema_report
from bootstrap.pg.schemaload import run
from bootstrap.pg.seed import seed, seed_state
from bootstrap.steps import Action

from .helpers import DESTRUCTIVE, FIXTURES, SEEDS, ADDITIVE, Edit, exit_code, loaded, prod_settings, snapshot, untouched


@pytest.mark.parametrize("case, kept_app_rows", [
    ("drop a column", (1, 2)),  # dropped in place: only that column's values go
    ("narrow a type", (1, 0)),  # the values do not fit: activities is rebuilt, users kept
    ("NOT NULL on a column with nulls", (0, 0)),  # users rebuilt, and activities, which references it
])
def test_force_says_what_it_loses_then_rebuilds_and_reseeds(
        case: str, kept_app_rows: tuple[int, int], seeded: Endpoints, edit_schema: Edit,
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    edit_schema(DESTRUCTIVE[case][0])
    settings = prod_settings(seeded, monkeypatch)
    results = run(settings, force=True, yes=True)
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
    assert schema_report(seeded).plan.unchanged
    with connect(seeded.postgres_url) as conn:
        app_users = conn.execute("select count(*) from users where handle = 'from_app'").fetchone()[0]
        app_activities = conn.execute("select count(*) from activities where message like 'written in the app%'"
                                      ).fetchone()[0]
    assert (app_users, app_activities) == kept_app_rows
    state = seed_state(seeded.postgres_url, SEEDS)
    assert state.rows_present


# --- the prod guard ------------------------------------------------------------------------


def test_prod_shows_the_plan_and_applies_only_with_yes(prod_context: Any, seeded: Endpoints, edit_schema: Edit,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import tasks

    edit_schema(*ADDITIVE)
    before = untouched(seeded)
    assert exit_code(lambda: tasks.db_schema_load(prod_context, target="prod", dry_run=True)) == 0
    assert exit_code(lambda: tasks.db_schema_load(prod_context, target="prod")) == 3
    out = capsys.readouterr().out
    assert out.count("alter table public.users add column bio text;") == 2 and "***" in out
    assert untouched(seeded) == before
    assert exit_code(lambda: tasks.db_schema_load(prod_context, target="prod", yes=True)) == 0
    assert schema_report(seeded).plan.unchanged


def test_prod_destructive_changes_need_force_and_yes(prod_context: Any, seeded: Endpoints, edit_schema: Edit) -> None:
    import tasks

    edit_schema(DESTRUCTIVE["drop a column"][0])
    before = untouched(seeded)
    for flags in ({}, {"yes": True}, {"force": True}):
        assert exit_code(lambda: tasks.db_schema_load(prod_context, target="prod", **flags)) == 3, flags
        assert untouched(seeded) == before
    assert exit_code(lambda: tasks.db_schema_load(prod_context, target="prod", force=True, yes=True)) == 0
    assert schema_report(seeded).plan.unchanged


def test_prod_schema_force_and_fresh_setup_refuse_without_yes(prod_context: Any, endpoints: Endpoints) -> None:
    from invoke import Exit

    import tasks

    loaded(endpoints)
    seed(endpoints, FIXTURES)
    before = snapshot(endpoints.postgres_url)
    for call in (lambda: tasks.db_schema_load(prod_context, target="prod", force=True),
                 lambda: tasks.db_setup(prod_context, target="prod", fresh=True)):
        with pytest.raises(Exit) as raised:
            call()
        assert raised.value.code == 3 and "public.users (2 rows)" in raised.value.message
    assert snapshot(endpoints.postgres_url) == before
