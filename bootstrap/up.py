"""``invoke up``: observe → plan → act → verify, one row per step.

The chain is fixed (``STEPS``). Observing reads what is cheap to read: which
services run, the bookkeeping values recorded in ``bootstrap_meta``, the live
table description, the local user pool. ``plan_up`` is pure: given what was
observed and what the fixtures and specs want, it returns one planned action
per step. Only the steps planned to run are executed; each records its
fingerprint after it succeeds, so an interrupted run is completed by the next.
"""

from __future__ import annotations

import functools
import hashlib
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from .config import Endpoints, Settings
from .meta import (
    ACTIVITIES_FINGERPRINT, COGNITO_FINGERPRINT, DDB_SEED_EPOCH, DDB_SEED_FINGERPRINT, DDB_SEED_PENDING, SCHEMA_CATALOG,
    SCHEMA_CHECKSUM, USERS_FINGERPRINT,
)
from .steps import Action, StepResult

STEPS = (
    "services",
    "db.create",
    "db.schema-load",
    "db.seed",
    "ddb.schema-load",
    "ddb.seed",
    "cognito.seed-users",
    "db.update-cognito-user-ids",
    "verify",
)


@dataclass(frozen=True)
class Observed:
    """What ``up`` could read before acting. ``None`` fields were not observable (services down)."""

    services_running: bool
    database_exists: bool | None = None
    meta: Mapping[str, str] = field(default_factory=dict)
    seeded_rows_present: bool | None = None
    table_matches: bool | None = None
    seed_present: bool | None = None
    pool_id: str | None = None
    unsynced_users: int | None = None
    schema_fingerprint: str | None = None  # of the live app tables (pgschema.Catalog.fingerprint)


@dataclass(frozen=True)
class Desired:
    schema_checksum: str
    users_fingerprint: str
    activities_fingerprint: str
    conversations_fingerprint: str
    ddb_epoch_current: bool = True


@dataclass(frozen=True)
class PlannedStep:
    name: str
    action: Action
    reason: str

    @property
    def runs(self) -> bool:
        return self.action is Action.WOULD_RUN


def ddb_seed_fingerprint(desired: Desired) -> str:
    """What the DynamoDB seed depends on: the conversations and the users they name."""
    return _digest(desired.conversations_fingerprint, desired.users_fingerprint)


def cognito_fingerprint(desired: Desired, pool_id: str | None) -> str:
    return _digest(desired.users_fingerprint, pool_id or "")


def _digest(*parts: str) -> str:
    return hashlib.sha256("\x1f".join(parts).encode()).hexdigest()


def plan_up(observed: Observed, desired: Desired, *, fresh: bool = False) -> list[PlannedStep]:
    """One planned action per step of ``STEPS``; pure."""
    run, same = Action.WOULD_RUN, Action.UNCHANGED
    plan: list[PlannedStep] = []

    def add(name: str, action: Action, reason: str) -> None:
        plan.append(PlannedStep(name, action, reason))

    if observed.services_running:
        add("services", same, "running and reused")
    else:
        add("services", run, "start and wait until ready")

    if not observed.services_running:
        for name in STEPS[1:]:
            add(name, run, "after the services start")
        return plan

    meta = observed.meta
    if fresh:
        add("db.create", run, "--fresh: drop and create the database")
    elif observed.database_exists:
        add("db.create", same, "database exists")
    else:
        add("db.create", run, "database missing")

    rebuilt_db = fresh or not observed.database_exists
    if rebuilt_db:
        add("db.schema-load", run, "new database")
    elif meta.get(SCHEMA_CHECKSUM) != desired.schema_checksum:
        add("db.schema-load", run, "schema changed" if meta.get(SCHEMA_CHECKSUM) else "no schema recorded")
    elif not meta.get(SCHEMA_CATALOG):
        add("db.schema-load", run, "no record of how the tables looked: compare them once")
    elif meta.get(SCHEMA_CATALOG) != observed.schema_fingerprint:
        # Someone altered the tables since they last matched schema.sql.
        add("db.schema-load", run, "the tables changed since the schema was loaded")
    else:
        add("db.schema-load", same, "schema.sql and the tables are as when they last matched")

    if rebuilt_db or not observed.seeded_rows_present:
        add("db.seed", run, "seeded rows missing")
    elif (meta.get(USERS_FINGERPRINT), meta.get(ACTIVITIES_FINGERPRINT)) != (
        desired.users_fingerprint, desired.activities_fingerprint,
    ):
        add("db.seed", run, "fixtures changed")
    else:
        add("db.seed", same, "fixtures fingerprint matches")

    if fresh:
        add("ddb.schema-load", run, "--fresh: recreate the table")
    elif observed.table_matches is None:
        add("ddb.schema-load", run, "table missing")
    elif not observed.table_matches:
        add("ddb.schema-load", run, "table differs from the spec")
    else:
        add("ddb.schema-load", same, "table matches the spec")

    table_rebuilt = fresh or not observed.table_matches
    if table_rebuilt:
        add("ddb.seed", run, "new table")
    elif not desired.ddb_epoch_current:
        add("ddb.seed", run, "seeded times left the current year")
    elif not observed.seed_present:
        add("ddb.seed", run, "seeded items missing")
    elif meta.get(DDB_SEED_PENDING):
        add("ddb.seed", run, "an interrupted seed left items to clean up")
    elif meta.get(DDB_SEED_FINGERPRINT) != ddb_seed_fingerprint(desired):
        add("ddb.seed", run, "conversations or users changed")
    else:
        add("ddb.seed", same, "conversations fingerprint matches")

    if fresh:
        add("cognito.seed-users", run, "--fresh: check every user")
    elif observed.pool_id is None:
        add("cognito.seed-users", run, "user pool missing")
    elif meta.get(COGNITO_FINGERPRINT) != cognito_fingerprint(desired, observed.pool_id):
        add("cognito.seed-users", run, "users or pool changed")
    else:
        add("cognito.seed-users", same, "pool and users fingerprint match")

    runs = {step.name for step in plan if step.runs}
    if {"db.seed", "cognito.seed-users"} & runs:
        add("db.update-cognito-user-ids", run, "users or Cognito changed")
    elif observed.unsynced_users:
        add("db.update-cognito-user-ids", run, f"{observed.unsynced_users} users not synced")
    else:
        add("db.update-cognito-user-ids", same, "every seeded user carries its Cognito sub")

    add("verify", run, "quick read checks")
    return plan


# --- observing and doing (thin) ---------------------------------------------------------


@dataclass
class Run:
    """The resources one ``up`` works with, built once."""

    settings: Settings
    endpoints: Endpoints | None = None
    fixtures: Any = None
    desired: Desired | None = None
    results: list[StepResult] = field(default_factory=list)

    @property
    def changed_anything(self) -> bool:
        """Whether a step so far did more than find things as they should be."""
        return any(result.action is not Action.UNCHANGED for result in self.results)


def desired_state(settings: Settings, fixtures: Any, meta: Mapping[str, str]) -> Desired:
    from . import postgres
    from .ddb import placement

    return Desired(
        schema_checksum=postgres.schema_checksum(),
        users_fingerprint=fixtures.users_fingerprint,
        activities_fingerprint=fixtures.activities_fingerprint,
        conversations_fingerprint=fixtures.conversations_fingerprint,
        ddb_epoch_current=placement.epoch_is_current(meta.get(DDB_SEED_EPOCH), fixtures.conversations),
    )


def observe(settings: Settings, endpoints: Endpoints | None, fixtures: Any) -> Observed:
    """Read-only look at the environment: a handful of cheap reads, no scans."""
    from . import cognito, postgres
    from .ddb import placement, plan, schema, seed, table

    if endpoints is None:
        return Observed(services_running=False)
    exists = postgres.database_exists(endpoints)
    rows = postgres.seed_state(endpoints.postgres_url, fixtures) if exists else postgres.SeedState({}, False, 0)
    meta = rows.meta
    description = schema.describe_table(endpoints, settings.table_name)
    spec = table.table_spec(settings)
    matches = None if description is None else plan.plan_table(spec, description).unchanged
    present = description is not None and seed.seed_is_present(
        endpoints, settings.table_name, placement.seed_probe_key(fixtures.conversations, meta.get(DDB_SEED_EPOCH)))
    pool_id = cognito.find_pool_id(endpoints, settings.user_pool_name)
    return Observed(True, exists, meta, rows.rows_present, matches, present, pool_id, rows.unsynced_users,
                    rows.catalog_fingerprint)



def _do_services(run: Run) -> StepResult:
    from .lifecycle import start_services
    backend, run.endpoints, started = start_services(run.settings)
    if started:
        return StepResult("services", Action.CREATED, f"{backend.name}: started {', '.join(started)}")
    return StepResult("services", Action.UNCHANGED, f"{backend.name}: running and ready")


def _do_db_create(run: Run, fresh: bool) -> StepResult:
    from . import postgres

    if fresh:
        postgres.drop_database(run.endpoints)
    return postgres.create_database(run.endpoints)


def _do_db_schema(run: Run) -> StepResult:
    from . import postgres

    return postgres.load_schema(run.endpoints)


def _do_db_seed(run: Run) -> StepResult:
    from . import postgres

    return postgres.seed(run.endpoints, run.fixtures)


def _do_ddb_schema(run: Run, fresh: bool) -> StepResult:
    from .ddb.schema import schema_load
    from .ddb.table import table_spec

    return schema_load(run.endpoints, table_spec(run.settings), recreate=fresh)


def _do_ddb_seed(run: Run) -> StepResult:
    from . import postgres
    from .ddb.seed import seed_from_fixtures

    result = seed_from_fixtures(run.endpoints, run.settings, run.fixtures)
    postgres.write_meta(run.endpoints.postgres_url, {DDB_SEED_FINGERPRINT: ddb_seed_fingerprint(run.desired)})
    return result


def _do_cognito_seed(run: Run) -> StepResult:
    from . import cognito

    return cognito.seed_users(run.endpoints, run.settings, run.fixtures)


def _do_cognito_sync(run: Run) -> StepResult:
    from . import cognito, postgres

    pool_id = cognito.resolve_pool_id(run.endpoints, run.settings)
    result = cognito.sync_user_ids(run.endpoints, pool_id)
    postgres.write_meta(run.endpoints.postgres_url, {COGNITO_FINGERPRINT: cognito_fingerprint(run.desired, pool_id)})
    return result


def _do_verify(run: Run) -> StepResult:
    from . import verify

    depth = verify.Depth.QUICK if run.changed_anything else verify.Depth.SPOT
    report = verify.run_checks(run.settings, run.endpoints, run.fixtures, depth)
    verify.raise_for_failures(report)
    if depth is verify.Depth.SPOT:
        return StepResult("verify", Action.UNCHANGED,
                          f"{len(report)} spot checks passed (`invoke verify` reads every conversation)")
    return StepResult("verify", Action.UNCHANGED, f"{len(report)} checks passed")


@dataclass(frozen=True)
class UpReport:
    plan: list[PlannedStep]
    results: list[StepResult]
    endpoints: Endpoints | None
    total: float
    dry_run: bool
    notes: tuple[str, ...] = ()  # what a dry run shows below the plan (the schema differences and their SQL)

    def to_json(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "notes": list(self.notes),
            "total": round(self.total, 3),
            "endpoints": self.endpoints.masked() if self.endpoints else None,
            "steps": [r.to_json() for r in self.results] if not self.dry_run else [
                {"step": p.name, "action": p.action.value, "detail": p.reason} for p in self.plan
            ],
        }


def up(settings: Settings, *, fresh: bool = False, dry_run: bool = False,
       on_wait: Callable[[], None] | None = None,
       on_step: Callable[[StepResult], None] | None = None) -> UpReport:
    """Bring the environment to the desired state, doing only what the plan says; ``on_step`` hears each result."""
    from .fixtures import load_fixtures
    from .state import StateDir

    started = time.monotonic()
    fixtures = load_fixtures(settings.seeds_dir)
    if dry_run:
        endpoints = _running_endpoints(settings)
        plan, _ = _plan(settings, endpoints, fixtures, fresh)
        plan, notes = _schema_preview(plan, endpoints, fresh)
        return UpReport(plan, [], endpoints, time.monotonic() - started, True, notes)

    with StateDir(settings.state_dir).exclusive("up", on_wait=on_wait):
        run = Run(settings, fixtures=fixtures)
        _run_step(run, "services", lambda: _do_services(run), on_step)
        plan, run.desired = _plan(settings, run.endpoints, fixtures, fresh)
        for step in plan[1:]:
            body = (functools.partial(DOERS[step.name], run, fresh) if step.runs
                    else functools.partial(StepResult, step.name, step.action, step.reason))
            _run_step(run, step.name, body, on_step)
        return UpReport(plan, run.results, run.endpoints, time.monotonic() - started, False)


def _run_step(run: Run, name: str, body: Callable[[], StepResult],
              on_step: Callable[[StepResult], None] | None) -> None:
    """Run one step under a live line saying so (terminal only); record and announce its timed result."""
    from .console import status_line

    began = time.monotonic()
    with status_line(lambda: f"{name}: running, {int(time.monotonic() - began)}s", plain_every=None):
        result = _timed(body(), time.monotonic() - began)
    run.results.append(result)
    if on_step is not None:
        on_step(result)


def _plan(settings: Settings, endpoints: Endpoints | None, fixtures: Any,
          fresh: bool) -> tuple[list[PlannedStep], Desired]:
    observed = observe(settings, endpoints, fixtures)
    desired = desired_state(settings, fixtures, observed.meta)
    return plan_up(observed, desired, fresh=fresh), desired


def _schema_preview(plan: list[PlannedStep], endpoints: Endpoints | None,
                    fresh: bool) -> tuple[list[PlannedStep], tuple[str, ...]]:
    """For a dry run: what db.schema-load would change in an existing database, and the SQL."""
    from dataclasses import replace

    step = next(p for p in plan if p.name == "db.schema-load")
    if endpoints is None or fresh or not step.runs or step.reason == "new database":
        return plan, ()
    from . import postgres
    from .pgschema import format_plan

    schema = postgres.schema_report(endpoints).plan
    reason = f"{step.reason}; {schema.summary()}" if not schema.unchanged else (
        f"{step.reason}; the tables match it (only the record is updated)")
    return [replace(p, reason=reason) if p is step else p for p in plan], tuple(format_plan(schema))


DOERS: dict[str, Callable[[Run, bool], StepResult]] = {
    "db.create": _do_db_create,
    "db.schema-load": lambda run, fresh: _do_db_schema(run),
    "db.seed": lambda run, fresh: _do_db_seed(run),
    "ddb.schema-load": _do_ddb_schema,
    "ddb.seed": lambda run, fresh: _do_ddb_seed(run),
    "cognito.seed-users": lambda run, fresh: _do_cognito_seed(run),
    "db.update-cognito-user-ids": lambda run, fresh: _do_cognito_sync(run),
    "verify": lambda run, fresh: _do_verify(run),
}


def _timed(result: StepResult, duration: float) -> StepResult:
    from dataclasses import replace

    return replace(result, duration=duration)


def _running_endpoints(settings: Settings) -> Endpoints | None:
    from .errors import ServiceError
    from .backends import endpoints_for

    try:
        return endpoints_for(settings)
    except ServiceError:
        return None


def run_task(settings: Settings, *, fresh: bool = False, yes: bool = False, dry_run: bool = False,
             json: bool = False, quiet: bool = False) -> None:
    """The ``invoke up`` task: confirm, bring the environment up, report.

    Each step's row is printed as the step ends (not with ``--json``, whose one
    document comes at the end, nor with ``--quiet``, which prints only the summary line).
    """
    from .console import activity
    from .console import quiet as quieted
    from .guard import require_local

    if fresh and not dry_run:
        confirm_fresh(settings, yes)
    # After confirm_fresh, so that `up --fresh --target prod` still names what it would destroy.
    require_local(settings, "invoke up (it starts local services and seeds fixtures; on prod run "
                            "db.schema-load, ddb.schema-load and db.update-cognito-user-ids with --target prod)")
    from .errors import DOCTOR_HINT, ServiceError

    with quieted(quiet):
        with activity():
            try:
                report = up(settings, fresh=fresh, dry_run=dry_run, on_wait=say_waiting,
                            on_step=None if json or quiet else print_step)
            except ServiceError as exc:
                exc.args = (f"{exc}\n{DOCTOR_HINT}",)  # what could not start may be this machine's doing
                raise
        print_report(report, as_json=json)


# --- talking to the user ----------------------------------------------------------------


def say_waiting() -> None:
    from .console import say

    say("another `invoke up` is running here; waiting for it to finish...")


def confirm_fresh(settings: Settings, yes: bool) -> None:
    """--fresh destroys data: prod needs --yes; an interactive local run asks once."""
    import sys

    from .errors import RefusedError
    from .guard import require_confirmation

    what = f"drop the database and the table {settings.table_name} and rebuild them from the fixtures"
    require_confirmation(settings, yes, what)
    if yes or not sys.stdin.isatty():
        return
    answer = input(f"--fresh will {what}. Continue? [y/N] ")
    if answer.strip().lower() not in ("y", "yes"):
        raise RefusedError("--fresh cancelled; nothing was changed")


def step_row(result: StepResult) -> str:
    """One finished step as a line: step, action and time in aligned columns, then the detail."""
    return f"{result.step:<26}  {result.action.value:<9}  {result.duration:6.2f}s  {result.detail}"


def print_step(result: StepResult) -> None:
    from .console import print_line

    print_line(step_row(result))


def print_report(report: UpReport, as_json: bool = False) -> None:
    """The end of a run: the JSON document, the dry run's plan, or the summary line under the step rows."""
    from .console import print_json, print_line, print_table

    if as_json:
        print_json(report.to_json())
        return
    if report.dry_run:
        print_table(["step", "plan", "why"], [[p.name, p.action.value, p.reason] for p in report.plan],
                    title="invoke up --dry-run (nothing was changed)")
        if report.notes:
            print("db.schema-load would find:\n" + "\n".join(report.notes))
        return
    writes = sum(r.writes for r in report.results)
    print_line(f"ready in {report.total:.2f}s ({writes} writes)")
