"""bootstrap.pg.diff: the difference between two catalogs, with plain values only."""

from __future__ import annotations

import pytest

from bootstrap.pg.diff import Catalog, Column, Constraint, Index, Risk, Table, diff, parse_index, widens
from bootstrap.pg.plan import decide

from .helpers import ACTIVITIES, LIVE, USERS, plan_for, with_users


def test_a_nullable_column_is_added_in_place() -> None:
    plan = plan_for(with_users(columns=USERS.columns + (Column("bio", "text"),)))
    assert plan.describe() == ["public.users: add column bio text"]
    assert plan.statements() == ["alter table public.users add column bio text"]
    assert not plan.refused


def test_a_not_null_column_with_a_default_is_added_in_place() -> None:
    column = Column("mood", "character varying(20)", True, "'ok'::character varying")
    plan = plan_for(with_users(columns=USERS.columns + (column,)))
    assert plan.statements() == [
        "alter table public.users add column mood character varying(20) default 'ok'::character varying not null"]
    assert plan.changes[0].change.risk is Risk.SAFE


def test_set_not_null_is_probed_and_drop_not_null_is_safe() -> None:
    desired = with_users(columns=(USERS.columns[0], Column("handle", "text", True), USERS.columns[2]))
    change = diff(LIVE, desired)[0]
    assert (change.risk, change.probe) == (Risk.DATA, "select count(*) from public.users where handle is null")
    assert decide([change], {0: 1}).refused
    relaxed = diff(desired, LIVE)
    assert [(c.summary, c.risk) for c in relaxed] == [("column handle: drop not null", Risk.SAFE)]


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
    live = with_users(columns=(USERS.columns[0], Column("handle", old), USERS.columns[2]))
    desired = with_users(columns=(USERS.columns[0], Column("handle", new), USERS.columns[2]))
    (change,) = diff(live, desired)
    assert change.statements == ((5, f"alter table public.users alter column handle type {new}"),)
    assert change.risk is (Risk.SAFE if widening else Risk.DESTRUCTIVE)


def test_defaults_are_set_and_dropped_in_place() -> None:
    desired = with_users(columns=(USERS.columns[0], Column("handle", "text", default="'x'::text"),
                                   USERS.columns[2]))
    assert plan_for(desired).statements() == ["alter table public.users alter column handle set default 'x'::text"]
    assert decide(diff(desired, LIVE), {}).statements() == ["alter table public.users alter column handle drop default"]


def test_a_new_table_comes_with_its_keys_and_indexes_in_dependency_order() -> None:
    likes = Table(
        "likes",
        (Column("id", "bigint", True, identity="a"), Column("user_uuid", "uuid", True)),
        (Constraint("likes_pkey", "p", "PRIMARY KEY (id)"),
         Constraint("likes_user_uuid_fkey", "f", "FOREIGN KEY (user_uuid) REFERENCES users(uuid)", "users")),
        (Index("likes_user_uuid_idx", False, "USING btree (user_uuid)"),),
    )
    plan = plan_for(Catalog(LIVE.tables + (likes,)))
    assert plan.describe() == ["public.likes: create table (2 columns, 2 constraints, 1 index)"]
    assert plan.statements() == [
        "create table public.likes (\n  id bigint generated always as identity not null,\n  user_uuid uuid not null\n)",
        "alter table public.likes add constraint likes_pkey PRIMARY KEY (id)",
        "alter table public.likes add constraint likes_user_uuid_fkey FOREIGN KEY (user_uuid) REFERENCES users(uuid)",
        "create index likes_user_uuid_idx on public.likes USING btree (user_uuid)",
    ]


def test_a_changed_constraint_is_dropped_then_added_and_foreign_keys_go_first() -> None:
    fkey = Constraint("activities_user_uuid_fkey", "f",
                      "FOREIGN KEY (user_uuid) REFERENCES users(uuid) ON DELETE CASCADE", "users")
    desired = Catalog((Table(ACTIVITIES.name, ACTIVITIES.columns, (ACTIVITIES.constraints[0], fkey)), USERS))
    assert plan_for(desired).statements() == [
        "alter table public.activities drop constraint activities_user_uuid_fkey",
        "alter table public.activities add constraint activities_user_uuid_fkey "
        "FOREIGN KEY (user_uuid) REFERENCES users(uuid) ON DELETE CASCADE",
    ]


def test_indexes_are_added_dropped_and_replaced() -> None:
    desired = with_users(indexes=(Index("users_handle_key", True, "USING btree (lower(handle))"),
                                   Index("users_email_idx", False, "USING btree (email)")))
    plan = plan_for(desired)
    assert plan.statements() == [
        "drop index public.users_handle_key",
        "create unique index users_handle_key on public.users USING btree (lower(handle))",
        "create index users_email_idx on public.users USING btree (email)",
    ]
    assert [c.change.risk for c in plan.changes] == [Risk.DATA, Risk.SAFE]
    assert plan_for(with_users(indexes=())).statements() == ["drop index public.users_handle_key"]


def test_index_definitions_lose_their_schema() -> None:
    assert parse_index("users_handle_key", "CREATE UNIQUE INDEX users_handle_key ON pg_temp.users USING btree "
                                           "(handle)") == Index("users_handle_key", True, "USING btree (handle)")
    assert parse_index('"Odd Name"', 'CREATE INDEX "Odd Name" ON public."My Table" USING gin (tags) WHERE '
                                     "(tags IS NOT NULL)") == Index('"Odd Name"', False,
                                                                    "USING gin (tags) WHERE (tags IS NOT NULL)")


def test_the_fingerprint_follows_every_compared_fact_but_not_the_table_order() -> None:
    assert Catalog((USERS, ACTIVITIES)).fingerprint() == LIVE.fingerprint()
    assert with_users(columns=USERS.columns[:2]).fingerprint() != LIVE.fingerprint()
    assert with_users(indexes=()).fingerprint() != LIVE.fingerprint()
