"""Shared values and helpers of the ``bootstrap.pg`` tests: fixture sets, table snapshots, schema edits, catalogs."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Callable

from bootstrap.config import PROJECT_ROOT, Endpoints, resolve_settings
from bootstrap.fixtures.model import ActivityFixture, Fixtures, UserFixture
from bootstrap.fixtures.parse import load_fixtures
from bootstrap.pg.connection import connect
from bootstrap.pg.diff import Catalog, Column, Constraint, Index, Table
from bootstrap.pg.plan import decide
from bootstrap.pg.schema import load_schema
from bootstrap.pg.seed import seed_state

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


def snapshot(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every column of every row of the app tables and bootstrap_meta, in a stable order."""
    with connect(url) as conn:
        return {
            table: conn.execute(f"select * from public.{table} order by 1").fetchall()
            for table in ("users", "activities", "bootstrap_meta")
        }


def loaded(endpoints: Endpoints) -> Endpoints:
    load_schema(endpoints)
    return endpoints


def exit_code(call: Callable[[], Any]) -> int:
    from invoke import Exit

    try:
        call()
    except Exit as exc:
        return exc.code
    return 0


# --- the project's seeds, and sql/schema.sql edited (schema evolution) --------------------------------

SEEDS = load_fixtures(PROJECT_ROOT / "seeds")
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

Edit = Callable[..., None]


def rows(endpoints: Endpoints) -> dict[str, list[tuple[Any, ...]]]:
    """The original columns of every row, in a stable order."""
    with connect(endpoints.postgres_url) as conn:
        return {
            "users": conn.execute(f"select {USER_COLUMNS} from users order by uuid").fetchall(),
            "activities": conn.execute(f"select {ACTIVITY_COLUMNS} from activities order by uuid").fetchall(),
        }


def untouched(endpoints: Endpoints) -> tuple[Any, ...]:
    """Every row with its xmin (any write changes it), the bookkeeping, and the tables' catalog."""
    with connect(endpoints.postgres_url) as conn:
        found = tuple(conn.execute(f"select t::text, t.xmin::text from {table} t order by 1").fetchall()
                      for table in ("users", "activities", "bootstrap_meta"))
    return found, seed_state(endpoints.postgres_url, SEEDS).catalog_fingerprint


def prod_settings(endpoints: Endpoints, monkeypatch: Any) -> Any:
    monkeypatch.setenv("PROD_CONNECTION_URL", endpoints.postgres_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")  # a prod target needs a region
    return resolve_settings({}, None, {"target": "prod"})


# --- catalogs as plain values (diff and plan) ----------------------------------------------------------

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


def with_users(**changes: Any) -> Catalog:
    from dataclasses import replace

    return Catalog((ACTIVITIES, replace(USERS, **changes)))


def plan_for(desired: Catalog, probed: dict[int, int] | None = None, live: Catalog = LIVE) -> Any:
    from bootstrap.pg.diff import diff

    return decide(diff(live, desired), probed or {})
