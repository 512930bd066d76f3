"""Running ``invoke up``: observe once, plan, run the planned steps, report.

Observing reads what is cheap to read, once: which services run, the
bookkeeping values in ``bootstrap_meta``, the live table description, the
local user pool. The steps themselves and their plans are in ``up.steps``.
"""

from __future__ import annotations

import functools
import threading
import time
from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

from ..config import Endpoints, Settings
from ..fixtures.model import Fixtures
from ..errors import Failure
from ..meta import DDB_SEED_EPOCH
from ..steps import COGNITO_SEED_USERS, DB_SCHEMA_LOAD, DDB_SEED, SERVICES, Action, StepResult
from .graph import Outcome
from .steps import PIPELINE, ROLES, STEPS, Desired, Observed, PlannedStep, Run, Situation, Step, plan_step, plan_up


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
    if endpoints is None:
        return Observed(services_running=False)
    seen = observe_postgres(endpoints, fixtures)
    seen.update(observe_dynamodb(settings, endpoints, fixtures, seen["meta"]))
    seen.update(observe_cognito(settings, endpoints))
    return Observed(True, **seen)


def observe_postgres(endpoints: Endpoints, fixtures: Any) -> dict[str, Any]:
    """What Postgres says: the database, the bookkeeping, the seeded rows, the tables' fingerprint."""
    from ..pg.database import database_exists
    from ..pg.seed import SeedState, seed_state

    exists = database_exists(endpoints)
    rows = seed_state(endpoints.postgres_url, fixtures) if exists else SeedState({}, False, 0)
    return {"database_exists": exists, "meta": rows.meta, "seeded_rows_present": rows.rows_present,
            "unsynced_users": rows.unsynced_users, "schema_fingerprint": rows.catalog_fingerprint}


def observe_dynamodb(settings: Settings, endpoints: Endpoints, fixtures: Any, meta: Mapping[str, str]
                     ) -> dict[str, Any]:
    """What DynamoDB says: the table against its spec, one seeded item where the recorded epoch puts it."""
    from ..ddb import placement, plan, schema, seed, table

    description = schema.describe_table(endpoints, settings.table_name)
    matches = None if description is None else plan.plan_table(table.table_spec(settings), description).unchanged
    # A table unlike the spec is repaired and reseeded anyway; asked for a seeded item by the spec's keys, one with
    # other keys would answer with an error.
    present = bool(matches) and seed.seed_is_present(
        endpoints, settings.table_name, placement.seed_probe_key(fixtures.conversations, meta.get(DDB_SEED_EPOCH)))
    return {"table_matches": matches, "seed_present": present}


def observe_cognito(settings: Settings, endpoints: Endpoints) -> dict[str, Any]:
    from .. import cognito

    return {"pool_id": cognito.find_pool_id(endpoints, settings.user_pool_name)}


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
                {"step": p.name, "action": p.action.value, "detail": p.reason, "needs": list(p.needs)}
                for p in self.plan
            ],
        }


def up(settings: Settings, *, fresh: bool = False, dry_run: bool = False,
       on_wait: Callable[[], None] | None = None,
       on_step: Callable[[StepResult], None] | None = None) -> UpReport:
    """Bring the environment to the desired state, doing only what the plan says.

    ``on_step`` hears each result, in ``PIPELINE``'s order, as soon as it and those before it ended.
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
        return _Up(settings, fixtures, fresh, on_step).run(started)


def _record_seeded(run: Run) -> None:
    """Keep the environment just seeded and verified as the state ``seeded`` (``invoke state.load seeded``), when
    up changed anything or none is saved; the states' store is imported only then (not on a warm `up`)."""
    from ..state import StateDir
    from ..states.manifest import SEEDED, is_saved

    changed = any(r.writes for r in run.results if r.step != SERVICES)
    if changed or not is_saved(StateDir(run.settings.state_dir).root, SEEDED):
        from ..states.store import save_unlocked

        save_unlocked(run.settings, run.endpoints, SEEDED, run.fixtures)


class _Up:
    """One ``up`` as a graph: every service starts at once; each is observed as soon as it is ready; each step
    is planned and run as soon as what it needs is done. Rows are announced in ``PIPELINE``'s order."""

    def __init__(self, settings: Settings, fixtures: Fixtures, fresh: bool,
                 on_step: Callable[[StepResult], None] | None) -> None:
        from .graph import Graph, Node

        self.run_ = Run(settings, fixtures, fresh, on_ready=self._ready)
        self.observed = Observed(services_running=True)
        self.planned: dict[str, PlannedStep] = {}
        self.results: dict[str, StepResult] = {}
        self.on_step = on_step
        self.shown = 0
        self.lock = threading.RLock()
        # One moto server serving DynamoDB and Cognito draws every id from one seeded generator: the pool and its
        # users get their stable ids only when no DynamoDB work runs on that server meanwhile (see _step).
        self.dynamodb_steps_done = threading.Event()
        observing = [Node(f"ready:{role}") for role in ROLES] + [
            Node("postgres", ("ready:postgres",), self._observe_postgres),
            # The seed's probe item is where the epoch recorded in Postgres puts it.
            Node("dynamodb", ("ready:dynamodb", "postgres"), self._observe_dynamodb),
            Node("cognito", ("ready:cognito",), self._observe_cognito),
        ]
        steps = [Node(step.name, step.needs, functools.partial(self._step, step)) for step in PIPELINE]
        self.graph = Graph(observing + steps, on_end=self._ended)

    def run(self, started: float) -> UpReport:
        outcomes = self.graph.run()
        failures = [(name, outcome.error) for name, outcome in outcomes.items()
                    if outcome.error is not None and not name.startswith("ready:")]
        if failures:
            raise _together(failures)
        _record_seeded(self.run_)
        plan = [self.planned[step.name] for step in PIPELINE[1:]]
        results = [self.results[step.name] for step in PIPELINE]
        return UpReport([PlannedStep(PIPELINE[0].name, Action.WOULD_RUN, "start and wait until ready"), *plan],
                        results, self.run_.endpoints, time.monotonic() - started, False)

    # --- the nodes' bodies (each in a thread of its own) ---

    def _ready(self, roles: tuple[str, ...], endpoints: Endpoints) -> None:
        with self.lock:
            self.run_.endpoints = endpoints
        for role in roles:
            self.graph.mark(f"ready:{role}")

    def _observe_postgres(self) -> None:
        seen = observe_postgres(self.run_.endpoints, self.run_.fixtures)
        with self.lock:
            self.observed = replace(self.observed, **seen)
            self.run_.desired = desired_state(self.run_.settings, self.run_.fixtures, self.observed.meta)

    def _observe_dynamodb(self) -> None:
        seen = observe_dynamodb(self.run_.settings, self.run_.endpoints, self.run_.fixtures, self.observed.meta)
        with self.lock:
            self.observed = replace(self.observed, **seen)

    def _observe_cognito(self) -> None:
        seen = observe_cognito(self.run_.settings, self.run_.endpoints)
        with self.lock:
            self.observed = replace(self.observed, **seen)

    def _step(self, step: Step) -> None:
        run = self.run_
        if step is PIPELINE[0]:
            try:
                result = _run_timed(step.name, functools.partial(step.run, run))
            except BaseException as exc:
                for role in ROLES:  # what did not become ready never will in this run
                    self.graph.mark(f"ready:{role}", exc)
                raise
        else:
            if step.name == COGNITO_SEED_USERS and not run.endpoints.cognito_endpoint_url:
                self.dynamodb_steps_done.wait()
            with self.lock:
                assert run.desired is not None  # every step but the services' needs Postgres, observed
                planned = plan_step(step, Situation(self.observed, run.desired, run.fresh, dict(self.planned)))
                self.planned[step.name] = planned
            body = (functools.partial(step.run, run) if planned.runs
                    else functools.partial(StepResult, planned.name, planned.action, planned.reason))
            result = _run_timed(step.name, body)
        with self.lock:
            self.results[step.name] = result
            run.results.append(result)

    # --- announcing ---

    def _ended(self, name: str, outcome: Outcome) -> None:
        """A node ended (under the graph's lock): a failed or stopped step gets its row; rows go out in order."""
        if name == DDB_SEED:
            self.dynamodb_steps_done.set()
        with self.lock:
            if name in STEPS and not outcome.ok:
                if outcome.error is not None:
                    self.results[name] = StepResult(name, Action.FAILED, _first_line(outcome.error))
                else:
                    why = f"not run: {_describe_node(outcome.blocked_by or '')} failed"
                    self.results[name] = StepResult(name, Action.SKIPPED, why)
                    step = next(s for s in PIPELINE if s.name == name)
                    self.planned.setdefault(name, PlannedStep(name, Action.SKIPPED, why, step.needs))
            while self.shown < len(PIPELINE) and PIPELINE[self.shown].name in self.results:
                if self.on_step is not None:
                    self.on_step(self.results[PIPELINE[self.shown].name])
                self.shown += 1


def _describe_node(name: str) -> str:
    """A node of up's graph as the user knows it: a step by its name, a service by what failed about it."""
    if name.startswith("ready:"):
        return f"{name.removeprefix('ready:')} (not ready)"
    if name in ROLES:
        return f"reading {name}"
    return name


def _together(failures: list[tuple[str, BaseException]]) -> BaseException:
    """The first failure (its type keeps its exit code), naming every other one below it."""
    order = {name: index for index, name in enumerate((*STEPS, *ROLES))}
    failures.sort(key=lambda failure: order.get(failure[0], len(order)))
    first = failures[0][1]
    if len(failures) > 1:
        others = "\n".join(f"also failed: {_describe_node(name)}: {_first_line(error)}" for name, error in failures[1:])
        first.args = (f"{first}\n{others}",)
    return first


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _run_timed(name: str, body: Callable[[], StepResult]) -> StepResult:
    """Run one step under a live line saying so (terminal only); its result, timed."""
    from ..console import status_line

    began = time.monotonic()
    with status_line(lambda: f"{name}: running, {int(time.monotonic() - began)}s", plain_every=None):
        return _timed(body(), time.monotonic() - began)


def _plan(settings: Settings, endpoints: Endpoints | None, fixtures: Fixtures,
          fresh: bool) -> tuple[list[PlannedStep], Desired]:
    observed = observe(settings, endpoints, fixtures)
    desired = desired_state(settings, fixtures, observed.meta)
    return plan_up(observed, desired, fresh=fresh), desired


def _schema_preview(plan: list[PlannedStep], endpoints: Endpoints | None,
                    fresh: bool) -> tuple[list[PlannedStep], tuple[str, ...]]:
    """For a dry run: what db.schema-load would change in an existing database, and the SQL."""
    step = next(p for p in plan if p.name == DB_SCHEMA_LOAD)
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
                            on_step=progress.finish)
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
        self.failed_step: str | None = None  # the first step that failed, if any
        self.began = time.monotonic()
        self._on_step = on_step

    def finish(self, result: StepResult) -> None:
        if result.action is Action.FAILED and self.failed_step is None:
            self.failed_step = result.step
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
        print_table(["step", "plan", "why", "needs"],
                    [[p.name, p.action.value, p.reason, ", ".join(p.needs) or "-"] for p in report.plan],
                    title="invoke up --dry-run (nothing was changed)", wrap={"why"})
        if report.notes:
            print("db.schema-load would find:\n" + "\n".join(report.notes))
        return
    writes = sum(r.writes for r in report.results)
    print_line(f"ready in {report.total:.2f}s ({writes} writes)")
