"""Making the live app tables match ``sql/schema.sql``: compare, then evolve in place or refuse.

``load_schema`` compares the live tables with what ``schema.sql`` declares
(``catalog`` reads both, ``diff`` and ``plan`` decide) and applies the difference in one
transaction, keeping every row; what would drop or rewrite values, or what the
data violates, is refused unless forced, and then the affected tables are
rebuilt empty. ``schema_report`` is the same comparison without writing, with
what ``--force`` would lose. Both record what was applied in ``bootstrap_meta``.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from ..config import PROJECT_ROOT, Endpoints
from ..errors import BootstrapError, RefusedError
from ..fixtures.model import Fixtures
from ..meta import ACTIVITIES_FINGERPRINT, SCHEMA_CATALOG, SCHEMA_CHECKSUM, USERS_FINGERPRINT
from ..steps import DB_SCHEMA_LOAD, Action, StepResult
from . import bookkeeping, catalog, users
from .connection import connect, database_errors, lock_writers, one_line
from .diff import Catalog, Change, diff, qualified
from .plan import SchemaPlan, rebuild_tables

log = logging.getLogger(__name__)

SCHEMA_FILE = PROJECT_ROOT / "sql" / "schema.sql"


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


@database_errors("comparing the tables with sql/schema.sql")
def schema_report(endpoints: Endpoints, fixtures: Fixtures | None = None) -> SchemaReport:
    """Compare the live app tables with sql/schema.sql (read-only) and count what --force would lose."""
    with connect(endpoints.postgres_url) as conn:
        live, desired, plan = catalog.compare(conn, _schema_sql())
        rebuild = tuple(rebuild_tables(plan, live, desired))
        rows = catalog.row_counts(conn, rebuild)
        seeded = _fixture_rows(conn, fixtures, rebuild) if fixtures is not None else {}
        conn.rollback()
    return SchemaReport(plan, rebuild, rows, seeded)


def _fixture_rows(conn: Any, fixtures: Fixtures, tables: Sequence[str]) -> dict[str, int]:
    """How many rows of each table seeds/ holds (and db.seed would put back after a rebuild)."""
    import psycopg

    counters: dict[str, Callable[[], int]] = {
        "users": lambda: users.count_seeded(conn, [u.handle for u in fixtures.users])[0],
        "activities": lambda: conn.execute("select count(*) from public.activities where uuid::text = any(%s)",
                                           ([a.uuid for a in fixtures.activities],)).fetchone()[0],
    }
    counts = {}
    for table in (t for t in tables if t in counters):
        try:
            with conn.transaction():
                counts[table] = counters[table]()
        except psycopg.Error:
            counts[table] = 0  # the live table lacks the key column: none of its rows is a fixture's
    return counts


class _Rejected(Exception):
    """A statement of the plan failed on the existing data."""

    def __init__(self, change: Change, reason: str) -> None:
        super().__init__(reason)
        self.change, self.reason = change, reason


@database_errors(DB_SCHEMA_LOAD)
def load_schema(endpoints: Endpoints, force: bool = False) -> StepResult:
    """Make the live app tables match sql/schema.sql in one transaction, keeping every row.

    What would drop or rewrite values, or what the data violates, is refused
    (``RefusedError``, nothing written) unless ``force``: then the affected
    tables, and those referencing them, are dropped and created again, empty.
    """
    with connect(endpoints.postgres_url) as conn:
        lock_writers(conn)
        live, desired, plan = catalog.compare(conn, _schema_sql())
        plan, rebuilt, writes = _evolve(conn, live, desired, plan, force)
        after = catalog.live_catalog(conn)
        left = diff(after, desired)
        if left:
            raise BootstrapError("db.schema-load: the tables still differ from sql/schema.sql after applying it; "
                                 f"nothing was changed: {'; '.join(change.describe() for change in left)}")
        if rebuilt:
            # The seeded rows are gone, so the fingerprints of what was seeded no longer hold.
            bookkeeping.forget(conn, [USERS_FINGERPRINT, ACTIVITIES_FINGERPRINT])
        bookkeeping.write(conn, {SCHEMA_CHECKSUM: schema_checksum(), SCHEMA_CATALOG: after.fingerprint()})
    if plan.unchanged:
        return StepResult(DB_SCHEMA_LOAD, Action.UNCHANGED, "the tables match sql/schema.sql")
    if not live.tables:
        return StepResult(DB_SCHEMA_LOAD, Action.CREATED,
                          f"created {', '.join(qualified(t.name) for t in desired.tables)}", writes=writes)
    detail = plan.applied_summary()
    if rebuilt:
        detail += f"; rebuilt {', '.join(qualified(t) for t in rebuilt)} empty (db.seed puts the fixtures back)"
    return StepResult(DB_SCHEMA_LOAD, Action.UPDATED, detail, writes=writes)


def _evolve(conn: Any, live: Catalog, desired: Catalog, plan: SchemaPlan,
            force: bool) -> tuple[SchemaPlan, list[str], int]:
    """Apply ``plan`` in a savepoint. A statement the data rejects marks its change refused and the
    plan is decided again, so the refusal (or the rebuild, with ``force``) covers it too."""
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
                    _, _, steps = catalog.compare(conn, _schema_sql())
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
            raise _Rejected(plan.changes[index].change, one_line(exc)) from None


def schema_refusal(plan: SchemaPlan) -> str:
    lines = "\n".join(f"  {line}" for line in plan.describe())
    return (f"db.schema-load refused: sql/schema.sql asks for changes that would drop, rewrite or reject "
            f"existing data; nothing was written:\n{lines}\n"
            "Change sql/schema.sql back, or run `invoke db.schema-load --force`: it drops those values or rebuilds "
            "those tables, and says what is lost (rows the app created) before it asks.")

