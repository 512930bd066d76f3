"""bootstrap.pgschema: the difference between two catalogs and its plan, with plain values only."""

from __future__ import annotations

import pytest

from bootstrap.pgschema import (
    Catalog, Column, Constraint, Index, Risk, Table, decide, diff, format_plan, parse_index, rebuild_tables, widens,
)

USERS = Table(
    "users",
    (Column("uuid", "uuid", True, "gen_random_uuid()"), Column("handle", "text"), Column("email", "text")),
    (Constraint("users_pkey", "p", "PRIMARY KEY (uuid)"),),
    (Index("users_handle_key", True, "USING btree (handle)"),),
)
ACTIVITIES = Table(
    "activities",
    (Column("uuid", "uuid", True), Column("user_uuid", "uuid", True), Column("message", "text", True)),
    (Constraint("activities_pkey", "p", "PRIMARY KEY (uuid)"),
     Constraint("activities_user_uuid_fkey", "f", "FOREIGN KEY (user_uuid) REFERENCES users(uuid)", "users")),
)
LIVE = Catalog((ACTIVITIES, USERS))


def _with_users(**changes) -> Catalog:
    from dataclasses import replace

    return Catalog((ACTIVITIES, replace(USERS, **changes)))


def _plan(desired: Catalog, probed: dict[int, int] | None = None, live: Catalog = LIVE):
    return decide(diff(live, desired), probed or {})


def test_equal_catalogs_need_nothing() -> None:
    plan = _plan(LIVE)
    assert plan.unchanged and plan.statements() == [] and format_plan(plan) == ["the tables match sql/schema.sql"]


def test_a_nullable_column_is_added_in_place() -> None:
    plan = _plan(_with_users(columns=USERS.columns + (Column("bio", "text"),)))
    assert plan.describe() == ["public.users: add column bio text"]
    assert plan.statements() == ["alter table public.users add column bio text"]
    assert not plan.refused


def test_a_not_null_column_with_a_default_is_added_in_place() -> None:
    column = Column("mood", "character varying(20)", True, "'ok'::character varying")
    plan = _plan(_with_users(columns=USERS.columns + (column,)))
    assert plan.statements() == [
        "alter table public.users add column mood character varying(20) default 'ok'::character varying not null"]
    assert plan.changes[0].change.risk is Risk.SAFE


def test_a_not_null_column_without_default_applies_only_to_an_empty_table() -> None:
    desired = _with_users(columns=USERS.columns + (Column("age", "integer", True),))
    change = diff(LIVE, desired)[0]
    assert change.risk is Risk.DATA and change.probe == "select count(*) from public.users"
    assert not decide([change], {0: 0}).refused
    refused = decide([change], {0: 3})
    assert refused.describe() == ["public.users: add column age integer not null (3 rows that would get NULL) "
                                  "[needs --force]"]
    assert refused.statements() == []


def test_set_not_null_is_probed_and_drop_not_null_is_safe() -> None:
    desired = _with_users(columns=(USERS.columns[0], Column("handle", "text", True), USERS.columns[2]))
    change = diff(LIVE, desired)[0]
    assert (change.risk, change.probe) == (Risk.DATA, "select count(*) from public.users where handle is null")
    assert decide([change], {0: 1}).refused
    relaxed = diff(desired, LIVE)
    assert [(c.summary, c.risk) for c in relaxed] == [("column handle: drop not null", Risk.SAFE)]


def test_dropping_a_column_is_destructive_and_forced_in_place() -> None:
    desired = _with_users(columns=USERS.columns[:2])
    plan = _plan(desired, {0: 2})
    assert plan.describe() == ["public.users: drop column email (2 rows with a value in email) [needs --force]"]
    assert plan.statements() == [] and plan.statements(force=True) == ["alter table public.users drop column email"]
    assert rebuild_tables(plan, LIVE, desired) == []


@pytest.mark.parametrize("old, new, widening", [
    ("character varying(10)", "character varying(20)", True),
    ("character varying(10)", "character varying", True),
    ("character varying(10)", "text", True),
    ("numeric(10,2)", "numeric(12,2)", True),
    ("numeric(10,2)", "numeric", True),
    ("character varying(20)", "character varying(10)", False),
    ("text", "character varying(200)", False),
    ("numeric(10,2)", "numeric(12,3)", False),
    ("integer", "bigint", False),  # keeps the values but rewrites the table
    ("text", "integer", False),
])
def test_only_widening_type_changes_are_safe(old: str, new: str, widening: bool) -> None:
    assert widens(old, new) is widening
    live = _with_users(columns=(USERS.columns[0], Column("handle", old), USERS.columns[2]))
    desired = _with_users(columns=(USERS.columns[0], Column("handle", new), USERS.columns[2]))
    (change,) = diff(live, desired)
    assert change.statements == ((5, f"alter table public.users alter column handle type {new}"),)
    assert change.risk is (Risk.SAFE if widening else Risk.DESTRUCTIVE)


def test_defaults_are_set_and_dropped_in_place() -> None:
    desired = _with_users(columns=(USERS.columns[0], Column("handle", "text", default="'x'::text"),
                                   USERS.columns[2]))
    assert _plan(desired).statements() == ["alter table public.users alter column handle set default 'x'::text"]
    assert decide(diff(desired, LIVE), {}).statements() == ["alter table public.users alter column handle drop default"]


def test_a_new_table_comes_with_its_keys_and_indexes_in_dependency_order() -> None:
    likes = Table(
        "likes",
        (Column("id", "bigint", True, identity="a"), Column("user_uuid", "uuid", True)),
        (Constraint("likes_pkey", "p", "PRIMARY KEY (id)"),
         Constraint("likes_user_uuid_fkey", "f", "FOREIGN KEY (user_uuid) REFERENCES users(uuid)", "users")),
        (Index("likes_user_uuid_idx", False, "USING btree (user_uuid)"),),
    )
    plan = _plan(Catalog(LIVE.tables + (likes,)))
    assert plan.describe() == ["public.likes: create table (2 columns, 2 constraints, 1 index)"]
    assert plan.statements() == [
        "create table public.likes (\n  id bigint generated always as identity not null,\n  user_uuid uuid not null\n)",
        "alter table public.likes add constraint likes_pkey PRIMARY KEY (id)",
        "alter table public.likes add constraint likes_user_uuid_fkey FOREIGN KEY (user_uuid) REFERENCES users(uuid)",
        "create index likes_user_uuid_idx on public.likes USING btree (user_uuid)",
    ]


def test_a_new_foreign_key_and_check_on_existing_rows_depend_on_the_data() -> None:
    check = Constraint("users_email_check", "c", "CHECK (email <> ''::text)")
    plan = _plan(_with_users(constraints=USERS.constraints + (check,)))
    (planned,) = plan.changes
    assert planned.change.risk is Risk.DATA and planned.change.probe is None and not planned.refused
    assert plan.describe() == ["public.users: add check constraint users_email_check CHECK (email <> ''::text) "
                               "[applied if the data satisfies it]"]
    rejected = plan.with_violation(0, "check constraint is violated by some row")
    assert rejected.refused and rejected.statements(force=True) == []


def test_a_changed_constraint_is_dropped_then_added_and_foreign_keys_go_first() -> None:
    fkey = Constraint("activities_user_uuid_fkey", "f",
                      "FOREIGN KEY (user_uuid) REFERENCES users(uuid) ON DELETE CASCADE", "users")
    desired = Catalog((Table(ACTIVITIES.name, ACTIVITIES.columns, (ACTIVITIES.constraints[0], fkey)), USERS))
    assert _plan(desired).statements() == [
        "alter table public.activities drop constraint activities_user_uuid_fkey",
        "alter table public.activities add constraint activities_user_uuid_fkey "
        "FOREIGN KEY (user_uuid) REFERENCES users(uuid) ON DELETE CASCADE",
    ]


def test_indexes_are_added_dropped_and_replaced() -> None:
    desired = _with_users(indexes=(Index("users_handle_key", True, "USING btree (lower(handle))"),
                                   Index("users_email_idx", False, "USING btree (email)")))
    plan = _plan(desired)
    assert plan.statements() == [
        "drop index public.users_handle_key",
        "create unique index users_handle_key on public.users USING btree (lower(handle))",
        "create index users_email_idx on public.users USING btree (email)",
    ]
    assert [c.change.risk for c in plan.changes] == [Risk.DATA, Risk.SAFE]
    assert _plan(_with_users(indexes=())).statements() == ["drop index public.users_handle_key"]


def test_a_table_no_longer_declared_is_destructive() -> None:
    plan = _plan(Catalog((USERS,)), {0: 4})
    assert plan.describe() == ["public.activities: drop table (4 rows) [needs --force]"]
    assert plan.statements(force=True) == ["drop table public.activities cascade"]


def test_force_rebuilds_a_violated_table_and_the_tables_referencing_it() -> None:
    desired = _with_users(columns=(USERS.columns[0], Column("handle", "text", True), USERS.columns[2]))
    plan = _plan(desired, {0: 1})
    assert rebuild_tables(plan, LIVE, desired) == ["activities", "users"]


def test_format_plan_shows_what_runs_now_and_what_only_force_runs() -> None:
    desired = _with_users(columns=(Column("uuid", "uuid", True, "gen_random_uuid()"), Column("handle", "text"),
                                   Column("bio", "text")))
    lines = format_plan(_plan(desired, {0: 5}))
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


def test_index_definitions_lose_their_schema() -> None:
    assert parse_index("users_handle_key", "CREATE UNIQUE INDEX users_handle_key ON pg_temp.users USING btree "
                                           "(handle)") == Index("users_handle_key", True, "USING btree (handle)")
    assert parse_index('"Odd Name"', 'CREATE INDEX "Odd Name" ON public."My Table" USING gin (tags) WHERE '
                                     "(tags IS NOT NULL)") == Index('"Odd Name"', False,
                                                                    "USING gin (tags) WHERE (tags IS NOT NULL)")


def test_the_fingerprint_follows_every_compared_fact_but_not_the_table_order() -> None:
    assert Catalog((USERS, ACTIVITIES)).fingerprint() == LIVE.fingerprint()
    assert _with_users(columns=USERS.columns[:2]).fingerprint() != LIVE.fingerprint()
    assert _with_users(indexes=()).fingerprint() != LIVE.fingerprint()
