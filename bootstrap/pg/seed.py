"""Seeding the fixtures' users and activities, planned purely and written in one transaction.

Planning is pure (``plan_users``, ``plan_activities``: observed rows + desired
state -> what to write) and unit-tested without a database. Doing is thin:
``seed`` locks the rows it may touch, writes only what differs and records the
fixtures' fingerprints in ``bootstrap_meta``, all in one transaction, so a
failure leaves the tables as they were and an unchanged rerun writes nothing.
``seed_state`` is what `invoke up` reads to decide whether to seed at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Iterable, Mapping, Sequence

from ..config import Endpoints
from ..errors import BootstrapError, DriftError, InputError
from ..fixtures.model import ACTIVITIES_FILE, USERS_FILE, ActivityFixture, Fixtures, UserFixture
from ..meta import ACTIVITIES_FINGERPRINT, USERS_FINGERPRINT
from ..steps import DB_SEED, Action, StepResult
from . import bookkeeping, catalog, users as users_table
from .connection import APP_TABLES, arrays, connect, database_errors, existing_tables, lock_writers
from .database import create_database, drop_database
from .schema import load_schema
from .users import MOCK_COGNITO_USER_ID, UserRow

# --- pure planning -----------------------------------------------------------------------------


@dataclass(frozen=True)
class UserPlan:
    """Users to insert and to update (as their desired rows), and the rows already right."""

    inserts: tuple[UserRow, ...]
    updates: tuple[UserRow, ...]
    unchanged: tuple[UserRow, ...]

    @property
    def uuid_by_handle(self) -> dict[str, str]:
        return {row.handle: row.uuid for row in (*self.inserts, *self.updates, *self.unchanged)}


def plan_users(existing_rows: Mapping[str, UserRow], users: Iterable[UserFixture]) -> UserPlan:
    """Upsert by handle: keep an existing row's uuid and any cognito_user_id the Cognito sync set.

    New users get their deterministic uuid and the contract's 'MOCK' placeholder.
    Raises ``DriftError`` when a new user's uuid already belongs to another handle.
    """
    handle_by_uuid = {row.uuid: row.handle for row in existing_rows.values()}
    inserts: list[UserRow] = []
    updates: list[UserRow] = []
    unchanged: list[UserRow] = []
    for user in users:
        current = existing_rows.get(user.handle)
        if current is None:
            owner = handle_by_uuid.get(user.uuid)
            if owner is not None:
                raise DriftError(
                    f"user {user.handle!r}: its uuid {user.uuid} belongs to the user {owner!r} in the database; "
                    "rename that user back or remove it"
                )
            inserts.append(UserRow(user.uuid, user.handle, user.display_name, user.email, MOCK_COGNITO_USER_ID))
            continue
        desired = UserRow(current.uuid, user.handle, user.display_name, user.email,
                          _kept_cognito_user_id(current.cognito_user_id))
        (unchanged if desired == current else updates).append(desired)
    return UserPlan(tuple(inserts), tuple(updates), tuple(unchanged))


def _kept_cognito_user_id(current: str | None) -> str:
    return MOCK_COGNITO_USER_ID if current in (None, MOCK_COGNITO_USER_ID) else current
@dataclass(frozen=True)
class ActivityRow:
    uuid: str
    user_uuid: str
    message: str
    expires_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class ActivityWrite:
    """An activity as the seeder writes it; expires_at is derived in SQL from ``expires_in_days``."""

    uuid: str
    user_uuid: str
    message: str
    expires_in_days: int | None


@dataclass(frozen=True)
class ActivityPlan:
    inserts: tuple[ActivityWrite, ...]
    updates: tuple[ActivityWrite, ...]
    unchanged: tuple[ActivityWrite, ...]


def plan_activities(
    existing_rows: Mapping[str, ActivityRow],
    activities: Iterable[ActivityFixture],
    user_uuid_by_handle: Mapping[str, str],
) -> ActivityPlan:
    """Upsert by deterministic uuid.

    An activity expires ``expires_in_days`` after it was first seeded: inserts get
    ``now + days`` (now is also their created_at), updates ``created_at + days``,
    so an unchanged reseed finds ``expires_at - created_at == days`` and writes nothing.
    """
    inserts, updates, unchanged = [], [], []
    for activity in activities:
        desired = ActivityWrite(activity.uuid, user_uuid_by_handle[activity.handle], activity.message,
                                activity.expires_in_days)
        current = existing_rows.get(activity.uuid)
        if current is None:
            inserts.append(desired)
        elif _activity_matches(current, desired):
            unchanged.append(desired)
        else:
            updates.append(desired)
    return ActivityPlan(tuple(inserts), tuple(updates), tuple(unchanged))


def _activity_matches(row: ActivityRow, desired: ActivityWrite) -> bool:
    if (row.user_uuid, row.message) != (desired.user_uuid, desired.message):
        return False
    if desired.expires_in_days is None:
        return row.expires_at is None
    return row.expires_at is not None and row.expires_at - row.created_at == timedelta(days=desired.expires_in_days)


def _plan_counts(name: str, plan: UserPlan | ActivityPlan) -> str:
    return f"{name} {len(plan.inserts)} created, {len(plan.updates)} updated, {len(plan.unchanged)} unchanged"


# --- doing -------------------------------------------------------------------------------------


def describe_seed(endpoints: Endpoints, fixtures: Fixtures) -> str:
    """What seeding would write, for refusals on prod; reads nothing, so it never fails."""
    return (f"database {endpoints.database_name}: {len(fixtures.users)} users and "
            f"{len(fixtures.activities)} activities (upserted by handle and uuid)")


@database_errors(DB_SEED)
def seed(endpoints: Endpoints, fixtures: Fixtures) -> StepResult:
    """Upsert the fixtures' users and activities in one transaction and record their fingerprints."""
    with connect(endpoints.postgres_url) as conn:
        lock_writers(conn)
        missing = [table for table in APP_TABLES if table not in existing_tables(conn, APP_TABLES)]
        if missing:
            raise BootstrapError(
                f"db.seed: table public.{missing[0]} does not exist; load the schema first (`invoke db.schema-load`)"
            )
        # Locked, so that a concurrent Cognito sync waits for this seed.
        locked = users_table.lock_users(conn, [u.handle for u in fixtures.users], [u.uuid for u in fixtures.users])
        users = plan_users(locked, fixtures.users)
        activities = plan_activities(_lock_activities(conn, fixtures.activities), fixtures.activities,
                                     users.uuid_by_handle)
        writes = users_table.insert_users(conn, users.inserts) + users_table.update_users(conn, users.updates)
        writes += _write_activities(conn, activities)
        extra = _write_columns(conn, "users", "handle = %s", USERS_FILE,
                               [(u.handle, u.line, u.columns) for u in fixtures.users if u.columns])
        extra += _write_columns(conn, "activities", "uuid = %s::uuid", ACTIVITIES_FILE,
                                [(a.uuid, a.line, a.columns) for a in fixtures.activities if a.columns])
        writes += extra + bookkeeping.write(conn, {
            USERS_FINGERPRINT: fixtures.users_fingerprint,
            ACTIVITIES_FINGERPRINT: fixtures.activities_fingerprint,
        })
    detail = f"{_plan_counts('users', users)}; {_plan_counts('activities', activities)}"
    action = _seed_action(users, activities)
    if extra:
        detail += f"; `columns:` set on {extra} rows"
        action = Action.UPDATED if action is Action.UNCHANGED else action
    return StepResult(DB_SEED, action, detail, writes=writes)


def _write_columns(conn: Any, table: str, match: str, source: str,
                   rows: Sequence[tuple[str, int, tuple[tuple[str, Any], ...]]]) -> int:
    """Set the fixtures' `columns:` (columns schema.sql added) on their rows where they differ.

    ``rows`` are (key, line, columns); ``match`` finds a row by its key. A column
    the table lacks is bad input naming the fixture line (the transaction rolls back).
    It serves both app tables alike, so it stays here rather than in ``users``.
    """
    from psycopg import sql

    if not rows:
        return 0
    types = dict(conn.execute(
        "select attname, format_type(atttypid, atttypmod) from pg_attribute"
        " where attrelid = %s::regclass and attnum > 0 and not attisdropped", (f"public.{table}",)).fetchall())
    writes = 0
    for key, line, columns in rows:
        for name, _ in columns:
            if name not in types:
                import difflib  # only on the error path

                near = difflib.get_close_matches(name, list(types), n=1)
                hint = f" (did you mean {near[0]!r}?)" if near else ""
                raise InputError(f"{source} line {line}: {name!r} is not a column of public.{table}{hint}; add it to "
                                 "sql/schema.sql and run `invoke db.schema-load` first; nothing was written")
        names = sql.SQL(", ").join(sql.Identifier(name) for name, _ in columns)
        # Cast to the column's type on both sides, so that the comparison is the column's, not the YAML's.
        values = sql.SQL(", ").join(sql.SQL("%s::{}").format(sql.SQL(types[name])) for name, _ in columns)
        query = sql.SQL("update {} set ({}) = row({}) where {} and ({}) is distinct from ({})").format(
            sql.Identifier("public", table), names, values, sql.SQL(match), names, values)
        given = [value for _, value in columns]
        writes += conn.execute(query, (*given, key, *given)).rowcount
    return writes


def _seed_action(users: UserPlan, activities: ActivityPlan) -> Action:
    if not (users.inserts or users.updates or activities.inserts or activities.updates):
        return Action.UNCHANGED
    if users.updates or users.unchanged or activities.updates or activities.unchanged:
        return Action.UPDATED
    return Action.CREATED


def _lock_activities(conn: Any, activities: Sequence[ActivityFixture]) -> dict[str, ActivityRow]:
    rows = conn.execute(
        "select uuid::text, user_uuid::text, message, expires_at, created_at from public.activities"
        " where uuid = any(%s::uuid[]) for update",
        ([a.uuid for a in activities],),
    ).fetchall()
    return {row[0]: ActivityRow(*row) for row in rows}


def _write_activities(conn: Any, plan: ActivityPlan) -> int:
    writes = 0
    if plan.inserts:
        # created_at defaults to now() as well, so expires_at - created_at is exactly the days.
        writes += conn.execute(
            "insert into public.activities (uuid, user_uuid, message, expires_at)"
            " select t.uuid, t.user_uuid, t.message, now() + t.days * interval '1 day'"
            " from unnest(%s::uuid[], %s::uuid[], %s::text[], %s::int[]) as t(uuid, user_uuid, message, days)",
            arrays(plan.inserts, "uuid", "user_uuid", "message", "expires_in_days"),
        ).rowcount
    if plan.updates:
        writes += conn.execute(
            "update public.activities as a"
            " set user_uuid = t.user_uuid, message = t.message, expires_at = a.created_at + t.days * interval '1 day'"
            " from unnest(%s::uuid[], %s::uuid[], %s::text[], %s::int[]) as t(uuid, user_uuid, message, days)"
            " where a.uuid = t.uuid",
            arrays(plan.updates, "uuid", "user_uuid", "message", "expires_in_days"),
        ).rowcount
    return writes


# --- what `invoke up` reads, and db.setup --------------------------------------------------------


@dataclass(frozen=True)
class SeedState:
    """What `invoke up` reads from the app database to plan: one connection, a few cheap reads."""

    meta: dict[str, str]
    rows_present: bool
    unsynced_users: int
    catalog_fingerprint: str | None = None  # of the live app tables, compared with SCHEMA_CATALOG


@database_errors("reading seeded rows")
def seed_state(url: str, fixtures: Fixtures) -> SeedState:
    """The bookkeeping values; the fingerprint of the live app tables (three catalog queries: far cheaper
    than comparing them with sql/schema.sql, which happens only when it differs from the recorded one);
    whether every fixture user (by handle) and activity (by uuid) has a row; and how many seeded users
    have no Cognito sub yet ('MOCK' or NULL)."""
    with connect(url) as conn:
        meta = bookkeeping.read(conn)
        fingerprint = catalog.live_catalog(conn).fingerprint()
        if existing_tables(conn, APP_TABLES) != set(APP_TABLES):
            return SeedState(meta, False, 0, fingerprint)
        users, unsynced = users_table.count_seeded(conn, [u.handle for u in fixtures.users])
        activities = conn.execute("select count(*) from public.activities where uuid = any(%s::uuid[])",
                                  ([a.uuid for a in fixtures.activities],)).fetchone()[0]
    present = (users, activities) == (len(fixtures.users), len(fixtures.activities))
    return SeedState(meta, present, unsynced, fingerprint)


def setup_database(endpoints: Endpoints, fixtures: Fixtures, fresh: bool = False) -> list[StepResult]:
    """Create, load the schema and seed; ``fresh`` drops the database first."""
    results = [drop_database(endpoints)] if fresh else []
    results.append(create_database(endpoints))
    results.append(load_schema(endpoints))
    results.append(seed(endpoints, fixtures))
    return results
