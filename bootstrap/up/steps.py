"""``up``'s steps: ``PIPELINE`` is the one list of them, in the order their rows are shown.

Each ``Step`` has its name, what it ``needs`` (a service ready: "postgres",
"dynamodb", "cognito"; or another step done), a pure ``plan`` (from what was
observed, what the fixtures and specs want, ``--fresh`` and the plans of the
steps it needs: run or not, and why) and a thin ``run``. ``up`` runs each step
as soon as its needs are met (``up.graph``), so Postgres's steps and Cognito's
seeding run while DynamoDB Local's JVM starts; ``plan_up`` plans them all in
list order (a dry run). Only the steps planned to run are run, each recording
its fingerprint after it succeeds, so an interrupted ``up`` is completed by the next.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Callable, Mapping

from ..config import Endpoints, Settings
from ..fixtures import model as fixture_fingerprints
from ..fixtures.model import Fixtures
from ..meta import (
    ACTIVITIES_FINGERPRINT, COGNITO_FINGERPRINT, DDB_SEED_FINGERPRINT, DDB_SEED_PENDING, SCHEMA_CATALOG, SCHEMA_CHECKSUM,
    USERS_FINGERPRINT,
)
from ..steps import (
    COGNITO_SEED_USERS, COGNITO_SYNC, DB_CREATE, DB_SCHEMA_LOAD, DB_SEED, DDB_SCHEMA_LOAD, DDB_SEED, SERVICES, VERIFY,
    Action, StepResult,
)

# What a step can need besides other steps: a role a service serves, ready (and observed).
ROLES = ("postgres", "dynamodb", "cognito")


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
    needs: tuple[str, ...] = ()

    @property
    def runs(self) -> bool:
        return self.action is Action.WOULD_RUN


def ddb_seed_fingerprint(desired: Desired) -> str:
    return fixture_fingerprints.ddb_seed_fingerprint(desired.conversations_fingerprint, desired.users_fingerprint)


def cognito_fingerprint(desired: Desired, pool_id: str | None) -> str:
    return fixture_fingerprints.cognito_fingerprint(desired.users_fingerprint, pool_id)


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
    fixtures: Fixtures
    fresh: bool = False
    # Set by the services step and the plan before any other step runs (typed for those steps' use).
    endpoints: Endpoints = None  # type: ignore[assignment]  # None only until the services step
    desired: Desired = None  # type: ignore[assignment]  # None only until up plans
    results: list[StepResult] = field(default_factory=list)
    # Hears each service become ready, with the endpoints known then (``up``'s graph starts what needs it).
    on_ready: Callable[[tuple[str, ...], Endpoints], None] | None = None

    @property
    def changed_anything(self) -> bool:
        """Whether a step so far did more than find things as they should be."""
        return any(result.action is not Action.UNCHANGED for result in self.results)


@dataclass(frozen=True)
class Step:
    """One step of ``up``: its name, its pure plan, its run (called only when the plan says run), what it needs."""

    name: str
    plan: Callable[[Situation], tuple[Action, str]]
    run: Callable[[Run], StepResult]
    needs: tuple[str, ...] = ()


# --- the steps: each one's plan (pure), then its run (thin) ------------------------------


def _plan_services(s: Situation) -> tuple[Action, str]:
    return (SAME, "running and reused") if s.observed.services_running else (RUN, "start and wait until ready")


def _run_services(run: Run) -> StepResult:
    from ..lifecycle import start_services

    backend, run.endpoints, started = start_services(run.settings, on_ready=run.on_ready)
    if started:
        return StepResult(SERVICES, Action.STARTED, f"{backend.name}: started {', '.join(started)}")
    return StepResult(SERVICES, Action.UNCHANGED, f"{backend.name}: running and ready")


def _plan_db_create(s: Situation) -> tuple[Action, str]:
    if s.fresh:
        return RUN, "--fresh: drop and create the database"
    return (SAME, "database exists") if s.observed.database_exists else (RUN, "database missing")


def _run_db_create(run: Run) -> StepResult:
    from ..pg.database import create_database, drop_database

    if run.fresh:
        drop_database(run.endpoints)
    return create_database(run.endpoints)


def _plan_db_schema(s: Situation) -> tuple[Action, str]:
    recorded = s.meta.get(SCHEMA_CATALOG)
    if s.runs(DB_CREATE):
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
    from ..pg.schema import load_schema

    return load_schema(run.endpoints)


def _plan_db_seed(s: Situation) -> tuple[Action, str]:
    if s.runs(DB_CREATE) or not s.observed.seeded_rows_present:
        return RUN, "seeded rows missing"
    recorded = (s.meta.get(USERS_FINGERPRINT), s.meta.get(ACTIVITIES_FINGERPRINT))
    if recorded != (s.desired.users_fingerprint, s.desired.activities_fingerprint):
        return RUN, "fixtures changed"
    return SAME, "fixtures fingerprint matches"


def _run_db_seed(run: Run) -> StepResult:
    from ..pg.seed import seed

    return seed(run.endpoints, run.fixtures)


def _plan_ddb_schema(s: Situation) -> tuple[Action, str]:
    if s.fresh:
        return RUN, "--fresh: drop the table and create it again"
    if s.observed.table_matches is None:
        return RUN, "table missing"
    return (SAME, "table matches the spec") if s.observed.table_matches else (RUN, "table differs from the spec")


def _run_ddb_schema(run: Run) -> StepResult:
    from ..ddb.schema import drop_table, schema_load
    from ..ddb.table import table_spec

    if not run.fresh:
        return schema_load(run.endpoints, table_spec(run.settings))
    # --fresh means every item goes, even when the table matches the spec (recreate= drops only one that differs).
    dropped = drop_table(run.endpoints, run.settings.table_name)
    result = schema_load(run.endpoints, table_spec(run.settings))
    return replace(result, detail=f"{result.detail} (--fresh: dropped and created again)",
                   writes=result.writes + dropped.writes)


def _plan_ddb_seed(s: Situation) -> tuple[Action, str]:
    if s.runs(DDB_SCHEMA_LOAD):
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
    from ..ddb.seed import seed_from_fixtures

    new_table = any(r.step == DDB_SCHEMA_LOAD and r.action is Action.CREATED for r in run.results)
    result = seed_from_fixtures(run.endpoints, run.settings, run.fixtures, new_table=new_table)
    return replace(result, action=Action.CREATED) if new_table else result  # the seed of a new table


def _plan_cognito_seed(s: Situation) -> tuple[Action, str]:
    if s.fresh:
        return RUN, "--fresh: delete the pool with its users and create them again"
    if s.observed.pool_id is None:
        return RUN, "user pool missing"
    if s.meta.get(COGNITO_FINGERPRINT) != cognito_fingerprint(s.desired, s.observed.pool_id):
        return RUN, "users or pool changed"
    return SAME, "pool and users fingerprint match"


def _run_cognito_seed(run: Run) -> StepResult:
    from .. import cognito

    return cognito.seed_users(run.endpoints, run.settings, run.fixtures, fresh=run.fresh)


def _plan_cognito_sync(s: Situation) -> tuple[Action, str]:
    if s.runs(DB_SEED) or s.runs(COGNITO_SEED_USERS):
        return RUN, "users or Cognito changed"
    if s.observed.unsynced_users:
        return RUN, f"{s.observed.unsynced_users} users not synced"
    return SAME, "every seeded user carries its Cognito sub"


def _run_cognito_sync(run: Run) -> StepResult:
    from .. import cognito

    pool_id = cognito.resolve_pool_id(run.endpoints, run.settings)
    return cognito.sync_user_ids(run.endpoints, pool_id, run.fixtures)


def _plan_verify(s: Situation) -> tuple[Action, str]:
    return RUN, "quick read checks"


def _run_verify(run: Run) -> StepResult:
    from .. import verify

    depth = verify.Depth.QUICK if run.changed_anything else verify.Depth.SPOT
    report = verify.run_checks(run.settings, run.endpoints, run.fixtures, depth)
    verify.raise_for_failures(report)
    if depth is verify.Depth.SPOT:
        return StepResult(VERIFY, Action.PASSED,
                          f"{len(report)} spot checks passed (`invoke verify` reads every conversation)")
    return StepResult(VERIFY, Action.PASSED, f"{len(report)} checks passed")


PIPELINE: tuple[Step, ...] = (
    Step(SERVICES, _plan_services, _run_services),
    Step(DB_CREATE, _plan_db_create, _run_db_create, needs=("postgres",)),
    Step(DB_SCHEMA_LOAD, _plan_db_schema, _run_db_schema, needs=(DB_CREATE,)),
    Step(DB_SEED, _plan_db_seed, _run_db_seed, needs=(DB_SCHEMA_LOAD,)),
    Step(DDB_SCHEMA_LOAD, _plan_ddb_schema, _run_ddb_schema, needs=("dynamodb",)),
    # The seed names users by their Postgres rows, and records what it placed in bootstrap_meta.
    Step(DDB_SEED, _plan_ddb_seed, _run_ddb_seed, needs=(DDB_SCHEMA_LOAD, DB_SEED)),
    # Postgres too: whether the pool is up to date is recorded in bootstrap_meta.
    Step(COGNITO_SEED_USERS, _plan_cognito_seed, _run_cognito_seed, needs=("cognito", "postgres")),
    Step(COGNITO_SYNC, _plan_cognito_sync, _run_cognito_sync, needs=(DB_SEED, COGNITO_SEED_USERS)),
    Step(VERIFY, _plan_verify, _run_verify, needs=(DB_SEED, DDB_SEED, COGNITO_SYNC)),
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
        planned[step.name] = PlannedStep(step.name, action, reason, step.needs)
    return list(planned.values())


def plan_step(step: Step, situation: Situation) -> PlannedStep:
    """One step's plan, once what it needs is done (``up``'s graph)."""
    action, reason = step.plan(situation)
    return PlannedStep(step.name, action, reason, step.needs)
