"""bootstrap.pg.plan: what to do with the difference (refuse, force, rebuild) and how it reads, plain values only."""

from __future__ import annotations

from bootstrap.pg.diff import Catalog, Column, Constraint, Risk, diff
from bootstrap.pg.plan import decide, format_plan, rebuild_tables

from .helpers import LIVE, USERS, plan_for, with_users


def test_equal_catalogs_need_nothing() -> None:
    plan = plan_for(LIVE)
    assert plan.unchanged and plan.statements() == [] and format_plan(plan) == ["the tables match sql/schema.sql"]


def test_a_not_null_column_without_default_applies_only_to_an_empty_table() -> None:
    desired = with_users(columns=USERS.columns + (Column("age", "integer", True),))
    change = diff(LIVE, desired)[0]
    assert change.risk is Risk.DATA and change.probe == "select count(*) from public.users"
    assert not decide([change], {0: 0}).refused
    refused = decide([change], {0: 3})
    assert refused.describe() == ["public.users: add column age integer not null (3 rows that would get NULL) "
                                  "[needs --force]"]
    assert refused.statements() == []


def test_dropping_a_column_is_destructive_and_forced_in_place() -> None:
    desired = with_users(columns=USERS.columns[:2])
    plan = plan_for(desired, {0: 2})
    assert plan.describe() == ["public.users: drop column email (2 rows with a value in email) [needs --force]"]
    assert plan.statements() == [] and plan.statements(force=True) == ["alter table public.users drop column email"]
    assert rebuild_tables(plan, LIVE, desired) == []


def test_a_new_foreign_key_and_check_on_existing_rows_depend_on_the_data() -> None:
    check = Constraint("users_email_check", "c", "CHECK (email <> ''::text)")
    plan = plan_for(with_users(constraints=USERS.constraints + (check,)))
    (planned,) = plan.changes
    assert planned.change.risk is Risk.DATA and planned.change.probe is None and not planned.refused
    assert plan.describe() == ["public.users: add check constraint users_email_check CHECK (email <> ''::text) "
                               "[applied if the data satisfies it]"]
    rejected = plan.with_violation(0, "check constraint is violated by some row")
    assert rejected.refused and rejected.statements(force=True) == []


def test_a_table_no_longer_declared_is_destructive() -> None:
    plan = plan_for(Catalog((USERS,)), {0: 4})
    assert plan.describe() == ["public.activities: drop table (4 rows) [needs --force]"]
    assert plan.statements(force=True) == ["drop table public.activities cascade"]


def test_force_rebuilds_a_violated_table_and_the_tables_referencing_it() -> None:
    desired = with_users(columns=(USERS.columns[0], Column("handle", "text", True), USERS.columns[2]))
    plan = plan_for(desired, {0: 1})
    assert rebuild_tables(plan, LIVE, desired) == ["activities", "users"]


def test_format_plan_shows_what_runs_now_and_what_only_force_runs() -> None:
    desired = with_users(columns=(Column("uuid", "uuid", True, "gen_random_uuid()"), Column("handle", "text"),
                                   Column("bio", "text")))
    lines = format_plan(plan_for(desired, {0: 5}))
    assert lines == [
        "2 differences between the live tables and sql/schema.sql:",
        "  public.users: drop column email (5 rows with a value in email) [needs --force]",
        "  public.users: add column bio text",
        "SQL of the changes that keep every row (nothing runs while any needs --force):",
        "  alter table public.users add column bio text;",
        "with --force, in one transaction:",
        "  alter table public.users drop column email;",
        "  alter table public.users add column bio text;",
    ]
