"""up.steps: the planner's pure decisions from observed and desired state, no services."""

from __future__ import annotations

from bootstrap.meta import (
    ACTIVITIES_FINGERPRINT, COGNITO_FINGERPRINT, DDB_SEED_FINGERPRINT, DDB_SEED_PENDING, SCHEMA_CATALOG, SCHEMA_CHECKSUM,
    USERS_FINGERPRINT,
)
from bootstrap.steps import Action
from bootstrap.up.steps import (
    STEPS, Desired, Observed, cognito_fingerprint, ddb_seed_fingerprint, plan_up,
)

DESIRED = Desired("schema-1", "users-1", "activities-1", "conversations-1")
POOL = "us-east-1_pool"


def _up_to_date(**changes) -> Observed:
    meta = {
        SCHEMA_CHECKSUM: "schema-1",
        SCHEMA_CATALOG: "catalog-1",
        USERS_FINGERPRINT: "users-1",
        ACTIVITIES_FINGERPRINT: "activities-1",
        DDB_SEED_FINGERPRINT: ddb_seed_fingerprint(DESIRED),
        COGNITO_FINGERPRINT: cognito_fingerprint(DESIRED, POOL),
    }
    values = dict(services_running=True, database_exists=True, meta=meta, seeded_rows_present=True,
                  table_matches=True, seed_present=True, pool_id=POOL, unsynced_users=0,
                  schema_fingerprint="catalog-1")
    values.update(changes)
    return Observed(**values)


def _actions(plan) -> dict[str, Action]:
    return {p.name: p.action for p in plan}


def test_every_step_is_planned_in_order() -> None:
    assert [p.name for p in plan_up(_up_to_date(), DESIRED)] == list(STEPS)


def test_everything_unchanged_when_up_to_date() -> None:
    actions = _actions(plan_up(_up_to_date(), DESIRED))
    assert {name for name, action in actions.items() if action is Action.WOULD_RUN} == {"verify"}


def test_services_down_means_everything_runs_after_them() -> None:
    plan = plan_up(Observed(services_running=False), DESIRED)
    assert all(p.action is Action.WOULD_RUN for p in plan)
    assert all("after the services start" in p.reason for p in plan[1:])


def test_missing_database_rebuilds_the_postgres_side_only() -> None:
    actions = _actions(plan_up(_up_to_date(database_exists=False, meta={}, seeded_rows_present=False), DESIRED))
    assert actions["db.create"] is actions["db.schema-load"] is actions["db.seed"] is Action.WOULD_RUN
    assert actions["ddb.schema-load"] is Action.UNCHANGED


def test_changed_user_fixture_reseeds_postgres_dynamodb_and_cognito() -> None:
    desired = Desired("schema-1", "users-2", "activities-1", "conversations-1")
    actions = _actions(plan_up(_up_to_date(), desired))
    assert actions["db.seed"] is actions["ddb.seed"] is actions["cognito.seed-users"] is Action.WOULD_RUN
    assert actions["db.schema-load"] is actions["ddb.schema-load"] is Action.UNCHANGED


def test_changed_conversations_touch_only_the_dynamodb_seed() -> None:
    desired = Desired("schema-1", "users-1", "activities-1", "conversations-2")
    runs = {n for n, a in _actions(plan_up(_up_to_date(), desired)).items() if a is Action.WOULD_RUN}
    assert runs == {"ddb.seed", "verify"}


def test_changed_activities_touch_only_the_postgres_seed_and_sync() -> None:
    desired = Desired("schema-1", "users-1", "activities-2", "conversations-1")
    runs = {n for n, a in _actions(plan_up(_up_to_date(), desired)).items() if a is Action.WOULD_RUN}
    assert runs == {"db.seed", "db.update-cognito-user-ids", "verify"}


def test_lost_seed_data_is_reseeded() -> None:
    actions = _actions(plan_up(_up_to_date(seed_present=False), DESIRED))
    assert actions["ddb.schema-load"] is Action.UNCHANGED and actions["ddb.seed"] is Action.WOULD_RUN


def test_drifted_table_is_repaired_and_reseeded() -> None:
    actions = _actions(plan_up(_up_to_date(table_matches=False), DESIRED))
    assert actions["ddb.schema-load"] is actions["ddb.seed"] is Action.WOULD_RUN


def test_epoch_leaving_the_year_reseeds() -> None:
    desired = Desired("schema-1", "users-1", "activities-1", "conversations-1", ddb_epoch_current=False)
    assert _actions(plan_up(_up_to_date(), desired))["ddb.seed"] is Action.WOULD_RUN


def test_lost_pool_recreates_users_and_resyncs() -> None:
    actions = _actions(plan_up(_up_to_date(pool_id=None), DESIRED))
    assert actions["cognito.seed-users"] is actions["db.update-cognito-user-ids"] is Action.WOULD_RUN


def test_unsynced_users_are_synced() -> None:
    actions = _actions(plan_up(_up_to_date(unsynced_users=2), DESIRED))
    assert actions["db.update-cognito-user-ids"] is Action.WOULD_RUN
    assert actions["cognito.seed-users"] is Action.UNCHANGED


def test_fresh_rebuilds_everything() -> None:
    actions = _actions(plan_up(_up_to_date(), DESIRED, fresh=True))
    assert all(actions[n] is Action.WOULD_RUN for n in STEPS[1:])


def test_interrupted_dynamodb_seed_is_run_again() -> None:
    observed = _up_to_date()
    interrupted = Observed(**{**observed.__dict__, "meta": {**observed.meta, DDB_SEED_PENDING: "{...}"}})
    assert _actions(plan_up(interrupted, DESIRED))["ddb.seed"] is Action.WOULD_RUN


def test_tables_altered_since_the_schema_was_loaded_rerun_the_schema_step_only() -> None:
    plan = {p.name: p for p in plan_up(_up_to_date(schema_fingerprint="catalog-2"), DESIRED)}
    step = plan["db.schema-load"]
    assert step.runs and step.reason == "the tables changed since the schema was loaded"
    assert not plan["db.seed"].runs


def test_a_database_loaded_before_fingerprints_were_recorded_is_compared_once() -> None:
    observed = _up_to_date()
    meta = {k: v for k, v in observed.meta.items() if k != SCHEMA_CATALOG}
    plan = {p.name: p for p in plan_up(_up_to_date(meta=meta), DESIRED)}
    assert plan["db.schema-load"].runs and "compare them once" in plan["db.schema-load"].reason
