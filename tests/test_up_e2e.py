"""`invoke up` end to end, as a user (or a CI job) runs it: separate processes, real embedded services."""

from __future__ import annotations

import json
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.both_engines


def _up_json(cli, *flags: str) -> dict:
    return json.loads(cli("up", "--json", *flags).stdout)


def _actions(report: dict) -> dict[str, str]:
    return {step["step"]: step["action"] for step in report["steps"]}


def _snapshot(cli) -> tuple:
    """Every row's xmin (changes on any write) and every DynamoDB item: equal snapshots mean no writes."""
    import boto3
    import psycopg

    values = cli.exported()
    with psycopg.connect(values["CONNECTION_URL"]) as conn:
        rows = tuple(
            conn.execute(f"select {key}::text, xmin::text from {table} order by 1").fetchall()
            for table, key in (("users", "uuid"), ("activities", "uuid"), ("bootstrap_meta", "key"))
        )
    client = boto3.client("dynamodb", endpoint_url=values["AWS_ENDPOINT_URL"], region_name="us-east-1",
                          aws_access_key_id="x", aws_secret_access_key="y")
    items, kwargs = [], {"TableName": "cruddur-messages"}
    while True:
        page = client.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            break
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    return rows, sorted(json.dumps(i, sort_keys=True) for i in items)


def test_cold_up_verifies_and_second_up_writes_nothing(cli) -> None:
    first = _up_json(cli)
    assert _actions(first)["services"] == "started"
    assert _actions(first)["ddb.seed"] == "created"  # the seed of the table the same run created
    assert _actions(first)["verify"] == "passed"
    before = _snapshot(cli)

    second = _up_json(cli)
    actions = _actions(second)
    assert all(action == "unchanged" for step, action in actions.items() if step != "verify"), actions
    assert actions["verify"] == "passed"
    assert sum(step["writes"] for step in second["steps"]) == 0
    assert _snapshot(cli) == before
    assert "password" not in json.dumps(second)
    # A run that changed nothing spot-checks; one that seeded reads every conversation.
    details = [{step["step"]: step["detail"] for step in report["steps"]}["verify"] for report in (first, second)]
    assert "spot" not in details[0] and "spot checks passed" in details[1], details

    cli("verify", "--full")


def test_dry_run_changes_nothing_not_even_services(cli) -> None:
    result = cli("up", "--dry-run")
    assert "would run" in result.stdout and "after the services start" in result.stdout
    assert cli("status", check=False).returncode == 1
    assert not (cli.state_dir / "postgres").exists()


def test_changed_fixture_applies_just_that_change(cli, tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    shutil.copytree(PROJECT_ROOT / "seeds", seeds)
    cli.env["CRUDDUR_SEEDS_DIR"] = str(seeds)
    _up_json(cli)

    conversations = seeds / "conversations.yaml"
    text = conversations.read_text()
    last_minutes = max(int(line.split(":")[1]) for line in text.splitlines() if line.strip().startswith("minutes:"))
    import yaml

    data = yaml.safe_load(text)
    first = data["conversations"][0]
    first["messages"].append({"from": first["between"][0], "minutes": last_minutes + 5000, "text": "One more thing!"})
    conversations.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False))

    actions = _actions(_up_json(cli))
    changed = {step for step, action in actions.items() if action not in ("unchanged", "passed")}
    assert changed == {"ddb.seed"}, actions
    cli("verify")


def test_two_concurrent_ups_both_succeed(cli) -> None:
    command = [sys.executable, "-m", "invoke", "up", "--json"]
    first = subprocess.Popen(command, cwd=PROJECT_ROOT, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    second = subprocess.Popen(command, cwd=PROJECT_ROOT, env=cli.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    outputs = [p.communicate(timeout=180) for p in (first, second)]
    assert [first.returncode, second.returncode] == [0, 0], outputs
    reports = [json.loads(out) for out, _ in outputs]
    later = max(reports, key=lambda r: sum(a == "unchanged" for a in _actions(r).values()))
    assert all(a == "unchanged" for step, a in _actions(later).items() if step != "verify"), later
    cli("verify")


def _seeded_users(url: str) -> int:
    """How many users Postgres holds at ``url``; 0 while the server, the database or the table is not there yet."""
    import psycopg

    try:
        with psycopg.connect(url, connect_timeout=2) as conn:
            return conn.execute("select count(*) from public.users").fetchone()[0]
    except psycopg.Error:
        return 0


def test_up_killed_midway_is_completed_by_the_next_up(cli) -> None:
    """Kill -9 `invoke up` once it has seeded Postgres, with DynamoDB and Cognito still to do; then run it again."""
    from bootstrap.config import postgres_url, resolve_settings

    settings = resolve_settings({}, cli.env, {})
    url = postgres_url("127.0.0.1", settings.pg_port, settings.pg_user, settings.pg_password, settings.pg_database)
    command = [sys.executable, "-m", "invoke", "up"]
    process = subprocess.Popen(command, cwd=PROJECT_ROOT, env=cli.env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None and not _seeded_users(url):
        time.sleep(0.05)
    assert _seeded_users(url), "`invoke up` never seeded Postgres"
    assert process.poll() is None, "`invoke up` finished before it could be killed midway"
    process.send_signal(signal.SIGKILL)
    process.wait()
    cli("up")
    cli("verify")


def test_fresh_rebuilds_the_database_the_table_and_the_user_pool(cli) -> None:
    """What `up --fresh --yes` names in its prompt goes: an item and a Cognito user added by hand are not kept."""
    _up_json(cli)
    endpoints = cli.endpoints()
    values = cli.exported()
    table = endpoints.client("dynamodb")
    table_name = table.list_tables()["TableNames"][0]
    table.put_item(TableName=table_name, Item={"pk": {"S": "GRP#by-hand"}, "sk": {"S": "2026-01-01T00:00:00+00:00"}})
    pool_id = values["AWS_COGNITO_USER_POOL_ID"]
    cognito = endpoints.client("cognito-idp")
    cognito.admin_create_user(UserPoolId=pool_id, Username="by_hand", MessageAction="SUPPRESS")

    fresh = cli("up", "--fresh", "--yes", "--json")
    assert "--fresh will drop the Postgres database, drop the DynamoDB table" in fresh.stderr, fresh.stderr
    report = json.loads(fresh.stdout)
    details = {step["step"]: (step["action"], step["detail"]) for step in report["steps"]}
    assert details["ddb.schema-load"][0] == "created" and "--fresh: dropped" in details["ddb.schema-load"][1]
    assert details["cognito.seed-users"][0] == "created" and "--fresh" in details["cognito.seed-users"][1]
    assert details["db.create"][0] == "created" and details["verify"][0] == "passed", details

    assert "Item" not in table.get_item(TableName=table_name, Key={"pk": {"S": "GRP#by-hand"},
                                                                    "sk": {"S": "2026-01-01T00:00:00+00:00"}})
    users = cognito.list_users(UserPoolId=cli.exported()["AWS_COGNITO_USER_POOL_ID"])["Users"]
    assert "by_hand" not in {user["Username"] for user in users} and len(users) == 5
    assert re.fullmatch(r"\d+ checks passed", cli("verify").stdout.strip().splitlines()[-1])


def test_keys_and_subs_printed_into_a_pipe_are_whole_on_one_line(cli) -> None:
    """`invoke ddb.scan | cat`, `invoke cognito.list-users | cat`, even with COLUMNS=40: a line holds each whole."""
    _up_json(cli)
    items = json.loads(cli("ddb.scan", "--json").stdout)
    subs = [user["sub"] for user in json.loads(cli("cognito.list-users", "--json").stdout)["users"]]
    scanned = cli("ddb.scan", COLUMNS="40").stdout.splitlines()
    listed = cli("cognito.list-users", COLUMNS="40").stdout.splitlines()
    assert items and len(subs) == 5
    assert [i["pk"] for i in items if not any(i["pk"] in line and i["sk"] in line for line in scanned)] == []
    assert [sub for sub in subs if not any(sub in line for line in listed)] == []
