"""Running ``invoke up``: observe once, plan, run the planned steps, report.

Observing reads what is cheap to read, once: which services run, the
bookkeeping values in ``bootstrap_meta``, the live table description, the
local user pool. The steps themselves and their plans are in ``up.steps``.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

from ..config import Endpoints, Settings
from ..fixtures.model import Fixtures
from ..errors import Failure
from ..meta import DDB_SEED_EPOCH
from ..steps import StepResult
from .steps import PIPELINE, Desired, Observed, PlannedStep, Run, plan_up


def desired_state(settings: Settings, fixtures: Fixtures, meta: Mapping[str, str]) -> Desired:
    from ..ddb.placement import epoch_is_current
    from ..pg.schema import schema_checksum

    return Desired(
        schema_checksum=schema_checksum(),
        users_fingerprint=fixtures.users_fingerprint,
        activities_fingerprint=fixtures.activities_fingerprint,
        conversations_fingerprint=fixtures.conversations_fingerprint,
        ddb_epoch_current=epoch_is_current(meta.get(DDB_SEED_EPOCH), fixtures.conversations),
    )


def observe(settings: Settings, endpoints: Endpoints | None, fixtures: Fixtures) -> Observed:
    """Read-only look at the environment: a handful of cheap reads, no scans."""
    from .. import cognito
    from ..ddb import placement, plan, schema, seed, table
    from ..pg.database import database_exists
    from ..pg.seed import SeedState, seed_state

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
            "ok": True,
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
       on_step: Callable[[StepResult], None] | None = None,
       on_start: Callable[[str], None] | None = None) -> UpReport:
    """Bring the environment to the desired state, doing only what the plan says.

    ``on_start`` hears each step's name as it begins, ``on_step`` each result as it ends.
    """
    from ..fixtures.parse import load_fixtures
    from ..state import StateDir

    started = time.monotonic()
    fixtures = load_fixtures(settings.seeds_dir)
    if dry_run:
        endpoints = _running_endpoints(settings)
        plan, _ = _plan(settings, endpoints, fixtures, fresh)
        plan, notes = _schema_preview(plan, endpoints, fresh)
        return UpReport(plan, [], endpoints, time.monotonic() - started, True, notes)

    with StateDir(settings.state_dir).exclusive("up", on_wait=on_wait):
        run = Run(settings, fixtures, fresh)
        services, *rest = PIPELINE
        # Observing needs the services' endpoints: they start (or are found running) before the rest is planned.
        _run_step(run, services.name, functools.partial(services.run, run), on_step, on_start)
        plan, run.desired = _plan(settings, run.endpoints, fixtures, fresh)
        for step, planned in zip(rest, plan[1:]):
            body = (functools.partial(step.run, run) if planned.runs
                    else functools.partial(StepResult, planned.name, planned.action, planned.reason))
            _run_step(run, step.name, body, on_step, on_start)
        _record_seeded(run)
        return UpReport(plan, run.results, run.endpoints, time.monotonic() - started, False)


def _record_seeded(run: Run) -> None:
    """Keep the environment just seeded and verified as the state ``seeded`` (``invoke state.load seeded``)."""
    from ..states.store import record_seeded

    assert run.endpoints is not None  # the services step found or started them
    changed = any(r.writes for r in run.results if r.step != "services")
    record_seeded(run.settings, run.endpoints, changed, run.fixtures)


def _run_step(run: Run, name: str, body: Callable[[], StepResult],
              on_step: Callable[[StepResult], None] | None, on_start: Callable[[str], None] | None) -> None:
    """Run one step under a live line saying so (terminal only); record and announce its timed result."""
    from ..console import status_line

    if on_start is not None:
        on_start(name)
    began = time.monotonic()
    with status_line(lambda: f"{name}: running, {int(time.monotonic() - began)}s", plain_every=None):
        result = _timed(body(), time.monotonic() - began)
    run.results.append(result)
    if on_step is not None:
        on_step(result)


def _plan(settings: Settings, endpoints: Endpoints | None, fixtures: Fixtures,
          fresh: bool) -> tuple[list[PlannedStep], Desired]:
    observed = observe(settings, endpoints, fixtures)
    desired = desired_state(settings, fixtures, observed.meta)
    return plan_up(observed, desired, fresh=fresh), desired


def _schema_preview(plan: list[PlannedStep], endpoints: Endpoints | None,
                    fresh: bool) -> tuple[list[PlannedStep], tuple[str, ...]]:
    """For a dry run: what db.schema-load would change in an existing database, and the SQL."""
    step = next(p for p in plan if p.name == "db.schema-load")
    if endpoints is None or fresh or not step.runs or step.reason == "new database":
        return plan, ()
    from ..pg.plan import format_plan
    from ..pg.schema import schema_report

    schema = schema_report(endpoints).plan
    reason = f"{step.reason}; {schema.summary()}" if not schema.unchanged else (
        f"{step.reason}; the tables match it (only the record is updated)")
    return [replace(p, reason=reason) if p is step else p for p in plan], tuple(format_plan(schema))


def _timed(result: StepResult, duration: float) -> StepResult:
    return replace(result, duration=duration)


def _running_endpoints(settings: Settings) -> Endpoints | None:
    from ..backends import endpoints_for
    from ..errors import ServiceError

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
    from ..console import activity, print_json
    from ..console import quiet as quieted
    from ..guard import require_local

    progress = Progress(print_step if not (json or quiet) else None)
    try:
        if fresh and not dry_run:
            confirm_fresh(settings, yes)
        # After confirm_fresh, so that `up --fresh --target prod` still names what it would destroy.
        require_local(settings, "invoke up (it starts local services and seeds fixtures; on prod run "
                                "db.schema-load, ddb.schema-load and db.update-cognito-user-ids with --target prod)")
        with quieted(quiet):
            with activity():
                report = up(settings, fresh=fresh, dry_run=dry_run, on_wait=say_waiting,
                            on_start=progress.start, on_step=progress.finish)
    except (Exception, KeyboardInterrupt) as exc:
        from ..config import masked_failure
        from ..errors import DOCTOR_HINT, ServiceError

        if isinstance(exc, ServiceError):
            exc.args = (f"{exc}\n{DOCTOR_HINT}",)  # what could not start may be this machine's doing
        if json:
            print_json(progress.to_json(masked_failure(exc), dry_run=dry_run))
        raise
    print_report(report, as_json=json)


class Progress:
    """What a run of ``up`` did so far: the report of a run that fails (``--json`` answers then too)."""

    def __init__(self, on_step: Callable[[StepResult], None] | None) -> None:
        self.results: list[StepResult] = []
        self.failed_step: str | None = None  # the step running, until it ends: the one that failed, if any
        self.began = time.monotonic()
        self._on_step = on_step

    def start(self, name: str) -> None:
        self.failed_step = name

    def finish(self, result: StepResult) -> None:
        self.failed_step = None
        self.results.append(result)
        if self._on_step is not None:
            self._on_step(result)

    def to_json(self, failure: Failure, dry_run: bool) -> dict[str, Any]:
        """``up --json``'s document for a run that failed: UpReport's fields, the failing step and the failure."""
        return {"ok": False, "dry_run": dry_run, "notes": [], "total": round(time.monotonic() - self.began, 3),
                "endpoints": None, "steps": [r.to_json() for r in self.results], "failed_step": self.failed_step,
                **failure.to_json()}


# --- talking to the user ----------------------------------------------------------------


def say_waiting() -> None:
    from ..console import say

    say("another `invoke up` is running here; waiting for it to finish...")


def confirm_fresh(settings: Settings, yes: bool) -> None:
    """--fresh destroys data: prod needs --yes; an interactive local run asks once."""
    import sys

    from ..console import say
    from ..guard import ask_once, require_confirmation

    what = fresh_removes(settings)
    require_confirmation(settings, yes, what)
    if yes or not sys.stdin.isatty():
        say(f"--fresh will {what}")  # said before acting, also when nobody is asked
    ask_once(yes, f"--fresh will {what}. Continue?", "--fresh cancelled; nothing was changed")


def fresh_removes(settings: Settings) -> str:
    """What --fresh removes and rebuilds, in the words of its prompt: exactly what the steps do with ``fresh``."""
    return (f"drop the Postgres database, drop the DynamoDB table {settings.table_name} and delete the Cognito "
            f"user pool {settings.user_pool_name} with all its users (items and users added by hand go too), "
            "then create them again from the fixtures and sync the users' Cognito ids into Postgres")


def step_row(result: StepResult) -> str:
    """One finished step as a line: step, action and time in aligned columns, then the detail."""
    return f"{result.step:<26}  {result.action.value:<9}  {result.duration:6.2f}s  {result.detail}"


def print_step(result: StepResult) -> None:
    from ..console import print_line

    print_line(step_row(result))


def print_report(report: UpReport, as_json: bool = False) -> None:
    """The end of a run: the JSON document, the dry run's plan, or the summary line under the step rows."""
    from ..console import print_json, print_line, print_table

    if as_json:
        print_json(report.to_json())
        return
    if report.dry_run:
        print_table(["step", "plan", "why"], [[p.name, p.action.value, p.reason] for p in report.plan],
                    title="invoke up --dry-run (nothing was changed)", wrap={"why"})
        if report.notes:
            print("db.schema-load would find:\n" + "\n".join(report.notes))
        return
    writes = sum(r.writes for r in report.results)
    print_line(f"ready in {report.total:.2f}s ({writes} writes)")
