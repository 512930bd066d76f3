"""Running ``up`` (bootstrap/up/run.py): what it observes, the dry run's report, and the step rows.

``observe`` looks at the session's running services (this test's own
database and table on them), before and after ``up``'s own steps seeded
them; a dry run looks at a state folder with nothing started.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest

from bootstrap import meta
from bootstrap.config import Endpoints
from bootstrap.ddb.schema import drop_table
from bootstrap.fixtures.parse import load_fixtures
from bootstrap.steps import Action, StepResult
from bootstrap.up.run import desired_state, observe, print_report, step_row, up
from bootstrap.up.steps import PIPELINE, Observed, Run, plan_up
from tests.conftest import Stack, make_settings
from tests.helpers import PROJECT_ROOT

FIXTURES = load_fixtures(PROJECT_ROOT / "seeds")
# The steps that write this test's own database and table (the Cognito steps use the session's user pool).
SEEDING = ("db.schema-load", "db.seed", "ddb.schema-load", "ddb.seed")


def test_step_rows_line_up() -> None:
    rows = [step_row(StepResult("services", Action.CREATED, "embedded: started postgres", duration=1.234)),
            step_row(StepResult("db.update-cognito-user-ids", Action.UNCHANGED, "in sync", duration=0.01))]
    assert rows[0] == "services                    created      1.23s  embedded: started postgres"
    assert [row[28:37].strip() for row in rows] == ["created", "unchanged"]
    assert [row[37:46] for row in rows] == ["    1.23s", "    0.01s"]


def test_nothing_is_observed_without_services() -> None:
    assert observe(make_settings(Path("unused")), None, FIXTURES) == Observed(services_running=False)


def test_a_dry_run_on_stopped_services_plans_every_step_and_starts_nothing(tmp_path: Path,
                                                                             capsys: pytest.CaptureFixture) -> None:
    settings = make_settings(tmp_path / ".cruddur")
    report = up(settings, dry_run=True)
    assert (report.dry_run, report.endpoints, report.results, report.notes) == (True, None, [], ())
    assert [p.name for p in report.plan] == [step.name for step in PIPELINE]
    assert report.plan[0].action is Action.WOULD_RUN
    assert not (tmp_path / ".cruddur" / "run").exists(), "a dry run started something"

    document = report.to_json()
    assert (document["dry_run"], document["endpoints"], document["notes"]) == (True, None, [])
    assert document["steps"] == [{"step": p.name, "action": p.action.value, "detail": p.reason, "needs": list(p.needs)}
                                 for p in report.plan]
    assert document["steps"][1]["needs"] == ["postgres"]
    print_report(report, as_json=True)
    assert json.loads(capsys.readouterr().out) == json.loads(json.dumps(document))

    print_report(report)
    table = capsys.readouterr().out
    assert "invoke up --dry-run (nothing was changed)" in table
    assert all(p.name in table for p in report.plan)


@pytest.mark.both_engines
def test_observe_reads_the_running_services_before_and_after_the_steps_ran(stack: Stack, endpoints: Endpoints,
                                                                           table_name: str) -> None:
    settings = stack.settings.with_values(table_name=table_name)
    before = observe(settings, endpoints, FIXTURES)
    assert (before.services_running, before.database_exists, dict(before.meta), before.seeded_rows_present,
            before.table_matches, before.seed_present) == (True, True, {}, False, None, False)
    planned = {p.name: p.action for p in plan_up(before, desired_state(settings, FIXTURES, before.meta))}
    assert {planned[name] for name in SEEDING} == {Action.WOULD_RUN}

    run = Run(settings, endpoints=endpoints, fixtures=FIXTURES,
              desired=desired_state(settings, FIXTURES, before.meta))
    steps = {step.name: step for step in PIPELINE}
    try:
        for name in SEEDING:
            steps[name].run(run)
        after = observe(settings, endpoints, FIXTURES)
    finally:
        drop_table(endpoints, table_name)
    assert (after.seeded_rows_present, after.table_matches, after.seed_present) == (True, True, True)
    # What the steps recorded is what meta names: the plan reads back exactly those keys.
    assert set(after.meta) <= {value for name, value in vars(meta).items() if name.isupper()}
    planned = {p.name: p.action for p in plan_up(after, desired_state(settings, FIXTURES, after.meta))}
    assert {planned[name] for name in SEEDING} == {Action.UNCHANGED}


def test_up_json_answers_also_when_a_step_fails(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Services that refuse every connection (an external backend on a port nobody listens on)."""
    from bootstrap.errors import DOCTOR_HINT, ServiceError
    from bootstrap.processes import free_port
    from bootstrap.up.run import run_task

    dead = free_port()
    settings = make_settings(tmp_path / ".cruddur", backend="external", ready_timeout=0.5,
                             connection_url=f"postgresql://postgres:secret-4d1@127.0.0.1:{dead}/cruddur",
                             aws_endpoint_url=f"http://127.0.0.1:{dead}")
    with pytest.raises(ServiceError):
        run_task(settings, json=True)
    document = json.loads(capsys.readouterr().out)
    assert (document["ok"], document["failed_step"], document["exit_code"]) == (False, "services", 1)
    # Every row: the services' failure, and each step that needs them not run.
    assert [(step["step"], step["action"]) for step in document["steps"]] == [
        ("services", "failed"), *((step.name, "skipped") for step in PIPELINE[1:])]
    assert "was not ready after 0.5s" in document["error"] and document["hint"] == DOCTOR_HINT
    assert "secret-4d1" not in json.dumps(document)


def test_the_report_of_a_failed_run_has_the_steps_that_ran_and_the_one_that_failed() -> None:
    from bootstrap.errors import Failure
    from bootstrap.up.run import Progress

    shown: list[StepResult] = []
    progress = Progress(shown.append)
    progress.finish(StepResult("services", Action.STARTED, "embedded: started postgres"))
    progress.finish(StepResult("db.create", Action.FAILED, "cannot connect to Postgres"))
    progress.finish(StepResult("db.schema-load", Action.SKIPPED, "not run: db.create failed"))
    document = progress.to_json(Failure(1, "cannot connect to Postgres", "check that it runs"), dry_run=False)
    assert [step.step for step in shown] == ["services", "db.create", "db.schema-load"]
    assert {key: document[key] for key in ("ok", "failed_step", "error", "hint", "exit_code")} == {
        "ok": False, "failed_step": "db.create", "error": "cannot connect to Postgres", "hint": "check that it runs",
        "exit_code": 1}
    assert [step["step"] for step in document["steps"]] == ["services", "db.create", "db.schema-load"]
    assert document.keys() >= {"dry_run", "notes", "total", "endpoints", "steps"}  # the fields of a success


@pytest.mark.both_engines
def test_a_failed_step_stops_what_needs_it_and_the_rest_finishes(stack: Stack, table_name: str) -> None:
    """A table whose keys differ from the spec cannot be repaired in place: ddb.schema-load fails. Its
    dependents (ddb.seed, verify) are not run; Postgres's steps and Cognito's run to their end."""
    import psycopg

    from bootstrap.config import with_database
    from bootstrap.errors import BootstrapError
    from bootstrap.pg.bookkeeping import write_meta

    database, pool = f"t_{uuid.uuid4().hex[:12]}", f"pool-{uuid.uuid4().hex[:8]}"
    # Recorded where an earlier seed placed the conversations: up then asks the table for a seeded item.
    with psycopg.connect(stack.endpoints.admin_postgres_url, autocommit=True) as conn:
        conn.execute(f'create database "{database}"')
    write_meta(with_database(stack.endpoints.postgres_url, database), {meta.DDB_SEED_EPOCH: "2026-01-01T00:00:00+00:00"})
    settings = stack.settings.with_values(pg_database=database, table_name=table_name, user_pool_name=pool)
    client = stack.endpoints.client("dynamodb")
    client.create_table(TableName=table_name, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                        BillingMode="PAY_PER_REQUEST")
    remembered_pool = stack.state.get("user_pool_id")
    rows: list[StepResult] = []
    try:
        with pytest.raises(BootstrapError, match=f"table {table_name} differs from the spec"):
            up(settings, on_step=rows.append)
    finally:
        drop_table(stack.endpoints, table_name)
        stack.state.update("user_pool_id", value=remembered_pool)
        with psycopg.connect(stack.endpoints.admin_postgres_url, autocommit=True) as conn:
            conn.execute(f'drop database if exists "{database}" with (force)')
    actions = {row.step: row.action for row in rows}
    assert [row.step for row in rows] == [step.name for step in PIPELINE], "every row, in order"
    assert actions["ddb.schema-load"] is Action.FAILED
    assert (actions["ddb.seed"], actions["verify"]) == (Action.SKIPPED, Action.SKIPPED)
    assert next(r.detail for r in rows if r.step == "ddb.seed") == "not run: ddb.schema-load failed"
    assert {actions[name] for name in ("db.schema-load", "db.seed", "cognito.seed-users")} == {Action.CREATED}
    assert actions["db.update-cognito-user-ids"] is Action.UPDATED
