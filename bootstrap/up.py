"""``invoke up``: observe → plan → act → verify, one row per step.

``PIPELINE`` is the one list of ``up``'s steps, in order. Each ``Step`` has its
name, a pure ``plan`` (from what was observed, what the fixtures and specs
want, ``--fresh`` and the plans of the steps before it: run or not, and why)
and a thin ``run``. Observing reads what is cheap to read, once: which
services run, the bookkeeping values recorded in ``bootstrap_meta``, the live
table description, the local user pool. Only the steps planned to run are
executed; each records its fingerprint after it succeeds, so an interrupted
run is completed by the next.
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
    schema_fingerprint: str | None = None  # of the live app tables (pg.diff.Catalog.fingerprint)


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


RUN, SAME = Action.WOULD_RUN, Action.UNCHANGED


@dataclass(frozen=True)
class Situation:
    """What a step's plan decides from: the observation, the wish, ``--fresh``, the plans of the steps before it."""

    observed: Observed
    desired: Desired
    fresh: bool
    earlier: Mapping[str, PlannedStep]

    @property
    def meta(self) -> Mapping[str, str]:
        return self.observed.meta

    def runs(self, name: str) -> bool:
        return self.earlier[name].runs


@dataclass
class Run:
    """The resources one ``up`` works with, built once and passed to every step's run."""

    settings: Settings
    fresh: bool = False
    endpoints: Endpoints | None = None
    fixtures: Any = None
    desired: Desired | None = None
    results: list[StepResult] = field(default_factory=list)

    @property
    def changed_anything(self) -> bool:
        """Whether a step so far did more than find things as they should be."""
        return any(result.action is not Action.UNCHANGED for result in self.results)


@dataclass(frozen=True)
class Step:
    """One step of ``up``: its name, its pure plan, and its run (called only when the plan says run)."""

    name: str
    plan: Callable[[Situation], tuple[Action, str]]
    run: Callable[[Run], StepResult]


# --- the steps: each one's plan (pure), then its run (thin) ------------------------------


def _plan_services(s: Situation) -> tuple[Action, str]:
    return (SAME, "running and reused") if s.observed.services_running else (RUN, "start and wait until ready")


def _run_services(run: Run) -> StepResult:
    from .lifecycle import start_services

    backend, run.endpoints, started = start_services(run.settings)
    if started:
        return StepResult("services", Action.CREATED, f"{backend.name}: started {', '.join(started)}")
    return StepResult("services", Action.UNCHANGED, f"{backend.name}: running and ready")


def _plan_db_create(s: Situation) -> tuple[Action, str]:
    if s.fresh:
        return RUN, "--fresh: drop and create the database"
    return (SAME, "database exists") if s.observed.database_exists else (RUN, "database missing")


def _run_db_create(run: Run) -> StepResult:
    from .pg.database import create_database, drop_database

    if run.fresh:
        drop_database(run.endpoints)
    return create_database(run.endpoints)


def _plan_db_schema(s: Situation) -> tuple[Action, str]:
    recorded = s.meta.get(SCHEMA_CATALOG)
    if s.runs("db.create"):
        return RUN, "new database"
    if s.meta.get(SCHEMA_CHECKSUM) != s.desired.schema_checksum:
        return RUN, "schema changed" if s.meta.get(SCHEMA_CHECKSUM) else "no schema recorded"
    if not recorded:
        return RUN, "no record of how the tables looked: compare them once"
    if recorded != s.observed.schema_fingerprint:
        # Someone altered the tables since they last matched schema.sql.
        return RUN, "the tables changed since the schema was loaded"
    return SAME, "schema.sql and the tables are as when they last matched"


def _run_db_schema(run: Run) -> StepResult:
    from .pg.schema import load_schema

    return load_schema(run.endpoints)


def _plan_db_seed(s: Situation) -> tuple[Action, str]:
    if s.runs("db.create") or not s.observed.seeded_rows_present:
        return RUN, "seeded rows missing"
    recorded = (s.meta.get(USERS_FINGERPRINT), s.meta.get(ACTIVITIES_FINGERPRINT))
    if recorded != (s.desired.users_fingerprint, s.desired.activities_fingerprint):
        return RUN, "fixtures changed"
    return SAME, "fixtures fingerprint matches"


def _run_db_seed(run: Run) -> StepResult:
    from .pg.seed import seed

    return seed(run.endpoints, run.fixtures)


def _plan_ddb_schema(s: Situation) -> tuple[Action, str]:
    if s.fresh:
        return RUN, "--fresh: recreate the table"
    if s.observed.table_matches is None:
        return RUN, "table missing"
    return (SAME, "table matches the spec") if s.observed.table_matches else (RUN, "table differs from the spec")


def _run_ddb_schema(run: Run) -> StepResult:
    from .ddb.schema import schema_load
    from .ddb.table import table_spec

    return schema_load(run.endpoints, table_spec(run.settings), recreate=run.fresh)


def _plan_ddb_seed(s: Situation) -> tuple[Action, str]:
    if s.runs("ddb.schema-load"):
        return RUN, "new table"
    if not s.desired.ddb_epoch_current:
        return RUN, "seeded times left the current year"
    if not s.observed.seed_present:
        return RUN, "seeded items missing"
    if s.meta.get(DDB_SEED_PENDING):
        return RUN, "an interrupted seed left items to clean up"
    if s.meta.get(DDB_SEED_FINGERPRINT) != ddb_seed_fingerprint(s.desired):
        return RUN, "conversations or users changed"
    return SAME, "conversations fingerprint matches"


def _run_ddb_seed(run: Run) -> StepResult:
    from .ddb.seed import seed_from_fixtures
    from .pg.bookkeeping import write_meta

    result = seed_from_fixtures(run.endpoints, run.settings, run.fixtures)
    write_meta(run.endpoints.postgres_url, {DDB_SEED_FINGERPRINT: ddb_seed_fingerprint(run.desired)})
    return result


def _plan_cognito_seed(s: Situation) -> tuple[Action, str]:
    if s.fresh:
        return RUN, "--fresh: check every user"
    if s.observed.pool_id is None:
        return RUN, "user pool missing"
    if s.meta.get(COGNITO_FINGERPRINT) != cognito_fingerprint(s.desired, s.observed.pool_id):
        return RUN, "users or pool changed"
    return SAME, "pool and users fingerprint match"


def _run_cognito_seed(run: Run) -> StepResult:
    from . import cognito

    return cognito.seed_users(run.endpoints, run.settings, run.fixtures)


def _plan_cognito_sync(s: Situation) -> tuple[Action, str]:
    if s.runs("db.seed") or s.runs("cognito.seed-users"):
        return RUN, "users or Cognito changed"
    if s.observed.unsynced_users:
        return RUN, f"{s.observed.unsynced_users} users not synced"
    return SAME, "every seeded user carries its Cognito sub"


def _run_cognito_sync(run: Run) -> StepResult:
    from . import cognito
    from .pg.bookkeeping import write_meta

    pool_id = cognito.resolve_pool_id(run.endpoints, run.settings)
    result = cognito.sync_user_ids(run.endpoints, pool_id)
    write_meta(run.endpoints.postgres_url, {COGNITO_FINGERPRINT: cognito_fingerprint(run.desired, pool_id)})
    return result


def _plan_verify(s: Situation) -> tuple[Action, str]:
    return RUN, "quick read checks"


def _run_verify(run: Run) -> StepResult:
    from . import verify

    depth = verify.Depth.QUICK if run.changed_anything else verify.Depth.SPOT
    report = verify.run_checks(run.settings, run.endpoints, run.fixtures, depth)
    verify.raise_for_failures(report)
    if depth is verify.Depth.SPOT:
        return StepResult("verify", Action.UNCHANGED,
                          f"{len(report)} spot checks passed (`invoke verify` reads every conversation)")
    return StepResult("verify", Action.UNCHANGED, f"{len(report)} checks passed")


PIPELINE: tuple[Step, ...] = (
    Step("services", _plan_services, _run_services),
    Step("db.create", _plan_db_create, _run_db_create),
    Step("db.schema-load", _plan_db_schema, _run_db_schema),
    Step("db.seed", _plan_db_seed, _run_db_seed),
    Step("ddb.schema-load", _plan_ddb_schema, _run_ddb_schema),
    Step("ddb.seed", _plan_ddb_seed, _run_ddb_seed),
    Step("cognito.seed-users", _plan_cognito_seed, _run_cognito_seed),
    Step("db.update-cognito-user-ids", _plan_cognito_sync, _run_cognito_sync),
    Step("verify", _plan_verify, _run_verify),
)
STEPS = tuple(step.name for step in PIPELINE)


def plan_up(observed: Observed, desired: Desired, *, fresh: bool = False) -> list[PlannedStep]:
    """One planned action per step of ``PIPELINE``; pure."""
    planned: dict[str, PlannedStep] = {}
    for step in PIPELINE:
        if step is PIPELINE[0] or observed.services_running:
            action, reason = step.plan(Situation(observed, desired, fresh, planned))
        else:
            action, reason = RUN, "after the services start"
        planned[step.name] = PlannedStep(step.name, action, reason)
    return list(planned.values())


# --- observing (thin) --------------------------------------------------------------------


def desired_state(settings: Settings, fixtures: Any, meta: Mapping[str, str]) -> Desired:
    from .ddb.placement import epoch_is_current
    from .pg.schema import schema_checksum

    return Desired(
        schema_checksum=schema_checksum(),
        users_fingerprint=fixtures.users_fingerprint,
        activities_fingerprint=fixtures.activities_fingerprint,
        conversations_fingerprint=fixtures.conversations_fingerprint,
        ddb_epoch_current=epoch_is_current(meta.get(DDB_SEED_EPOCH), fixtures.conversations),
    )


def observe(settings: Settings, endpoints: Endpoints | None, fixtures: Any) -> Observed:
    """Read-only look at the environment: a handful of cheap reads, no scans."""
    from . import cognito
    from .ddb import placement, plan, schema, seed, table
    from .pg.database import database_exists
    from .pg.seed import SeedState, seed_state

    if endpoints is None:
        return Observed(services_running=False)
    exists = database_exists(endpoints)
    rows = seed_state(endpoints.postgres_url, fixtures) if exists else SeedState({}, False, 0)
    meta = rows.meta
    description = schema.describe_table(endpoints, settings.table_name)
    spec = table.table_spec(settings)
    matches = None if description is None else plan.plan_table(spec, description).unchanged
    present = description is not None and seed.seed_is_present(
        endpoints, settings.table_name, placement.seed_probe_key(fixtures.conversations, meta.get(DDB_SEED_EPOCH)))
    pool_id = cognito.find_pool_id(endpoints, settings.user_pool_name)
    return Observed(True, exists, meta, rows.rows_present, matches, present, pool_id, rows.unsynced_users,
                    rows.catalog_fingerprint)


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
    from .fixtures.parse import load_fixtures
    from .state import StateDir

    started = time.monotonic()
    fixtures = load_fixtures(settings.seeds_dir)
    if dry_run:
        endpoints = _running_endpoints(settings)
        plan, _ = _plan(settings, endpoints, fixtures, fresh)
        plan, notes = _schema_preview(plan, endpoints, fresh)
        return UpReport(plan, [], endpoints, time.monotonic() - started, True, notes)

    with StateDir(settings.state_dir).exclusive("up", on_wait=on_wait):
        run = Run(settings, fresh, fixtures=fixtures)
        services, *rest = PIPELINE
        # Observing needs the services' endpoints: they start (or are found running) before the rest is planned.
        _run_step(run, services.name, functools.partial(services.run, run), on_step)
        plan, run.desired = _plan(settings, run.endpoints, fixtures, fresh)
        for step, planned in zip(rest, plan[1:]):
            body = (functools.partial(step.run, run) if planned.runs
                    else functools.partial(StepResult, planned.name, planned.action, planned.reason))
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
    from .pg.plan import format_plan
    from .pg.schema import schema_report

    schema = schema_report(endpoints).plan
    reason = f"{step.reason}; {schema.summary()}" if not schema.unchanged else (
        f"{step.reason}; the tables match it (only the record is updated)")
    return [replace(p, reason=reason) if p is step else p for p in plan], tuple(format_plan(schema))


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
