"""The moto snapshot: nothing the app wrote is lost across `invoke down` / `invoke up`.

The document is tested with plain values; the save/restore round trip runs as a
user runs it: `invoke` processes against real embedded Postgres and moto.
"""

from __future__ import annotations

import json
import os
import re
import signal
import uuid
from pathlib import Path

import pytest

from bootstrap.config import Endpoints
from bootstrap.ddb.table import DEFAULT_TABLE_NAME, TableSpec
from bootstrap.snapshot import (
    build_snapshot,
    from_json_item,
    read_snapshot,
    SnapshotSummary,
    restore_snapshot,
    snapshot_path,
    to_json_value,
    validate_snapshot,
    write_snapshot,
)
from bootstrap.state import StateDir
from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.both_engines

ITEMS = [
    {"pk": {"S": "MSG#g"}, "sk": {"S": "2024-01-01T00:00:00+00:00"}, "message": {"S": "hi"}},
    {"pk": {"S": "MSG#g"}, "sk": {"S": "2024-01-01T00:01:00+00:00"}, "blob": {"B": b"\x00\xff"},
     "nested": {"M": {"set": {"BS": [b"a", b"b"]}, "list": {"L": [{"N": "1"}, {"B": b"c"}]}}}},
]

POOLS = [{"id": "us-east-1_abc", "name": "cruddur-user-pool",
          "users": [{"username": "andrewbrown", "sub": "s-1", "enabled": True,
                     "attributes": [{"Name": "preferred_username", "Value": "andrewbrown"}]}]}]


def _doc() -> dict:
    return build_snapshot([{"name": "cruddur-messages", "create": TableSpec(DEFAULT_TABLE_NAME).create_arguments(),
                            "items": ITEMS}], POOLS, created_at="2024-01-01T00:00:00+00:00")


# --- the document (pure) -------------------------------------------------------------


def test_built_document_is_valid_and_survives_json() -> None:
    doc = _doc()
    assert validate_snapshot(doc) == []
    assert doc["counts"] == {"tables": 1, "items": 2, "pools": 1, "users": 1}
    assert validate_snapshot(json.loads(json.dumps(doc))) == []


def test_binary_attributes_round_trip_through_json() -> None:
    stored = json.loads(json.dumps(to_json_value(ITEMS[1])))
    assert from_json_item(stored) == ITEMS[1]


def test_edited_item_is_a_checksum_mismatch() -> None:
    doc = json.loads(json.dumps(_doc()))
    doc["tables"][0]["items"][0]["message"]["S"] = "changed"
    assert validate_snapshot(doc) == ["the checksum does not match the content"]


def test_missing_item_is_reported_by_the_counts() -> None:
    doc = json.loads(json.dumps(_doc()))
    doc["tables"][0]["items"].pop()
    problems = validate_snapshot(doc)
    assert "counts say 2 items, the document holds 1" in problems
    assert "table cruddur-messages: count says 2 items, the document holds 1" in problems
    assert "the checksum does not match the content" in problems


@pytest.mark.parametrize("doc, expected", [
    ([], "the document is a list, not an object"),
    ({"format": 1, "tables": [], "counts": {}}, "the tables or pools list is missing"),
    ({"format": 1, "tables": [{"name": "t"}], "pools": []}, "table entry 0 lacks a name, its CreateTable arguments"),
])
def test_malformed_documents_are_reported(doc, expected: str) -> None:
    assert any(problem.startswith(expected) for problem in validate_snapshot(doc))


def test_truncated_file_is_not_valid_json(tmp_path: Path) -> None:
    path = tmp_path / "moto.json"
    write_snapshot(path, _doc())
    path.write_text(path.read_text()[:100])
    doc, problems = read_snapshot(path)
    assert doc is None and problems[0].startswith("not valid JSON")


def test_damaged_snapshot_is_moved_aside_and_nothing_restored(tmp_path: Path, capsys) -> None:
    """Nothing is restored, so this needs no service (the endpoint is never contacted)."""
    state = StateDir(tmp_path / ".cruddur")
    path = snapshot_path(state)
    doc = _doc()
    doc["counts"]["items"] = 3
    write_snapshot(path, doc)
    endpoints = Endpoints("postgresql://x@localhost:1/cruddur", "http://localhost:1", "us-east-1")

    assert restore_snapshot(endpoints, state) is None
    assert not path.exists() and path.with_name("moto.json.corrupt").exists()
    warning = "".join(capsys.readouterr().err.split())  # rich may wrap the long path anywhere
    assert "".join(f"snapshot {path} is damaged: counts say 3 items, the document holds 2".split()) in warning
    assert "(1tables,3items,1pools,1users)arelost" in warning and "reseeds" in warning


def test_the_saved_snapshot_says_where_the_tables_are_when_moto_serves_cognito_only() -> None:
    summary = SnapshotSummary(Path("s.json"), tables=0, items=0, pools=1, users=5)
    assert summary.describe() == "0 tables, 0 items, 1 user pools, 5 users"
    assert summary.describe(tables=False) == \
        "1 user pools, 5 users (the DynamoDB tables are kept in DynamoDB Local's own files)"


def test_no_snapshot_means_nothing_to_restore(tmp_path: Path) -> None:
    endpoints = Endpoints("postgresql://x@localhost:1/cruddur", "http://localhost:1", "us-east-1")
    assert restore_snapshot(endpoints, StateDir(tmp_path)) is None


# --- down / up as a user runs them ------------------------------------------------------


def _clients(values: dict[str, str]):
    """DynamoDB and Cognito clients made from the variables `invoke env` exports, as the app makes them."""
    import boto3

    session = boto3.Session(aws_access_key_id=values["AWS_ACCESS_KEY_ID"],
                            aws_secret_access_key=values["AWS_SECRET_ACCESS_KEY"],
                            region_name=values["AWS_DEFAULT_REGION"])
    cognito_url = values.get("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER", values["AWS_ENDPOINT_URL"])
    return (session.client("dynamodb", endpoint_url=values["AWS_ENDPOINT_URL"]),
            session.client("cognito-idp", endpoint_url=cognito_url))


def _subs(cognito, pool_id: str) -> dict[str, str]:
    users = cognito.list_users(UserPoolId=pool_id, Limit=60)["Users"]
    return {u["Username"]: {a["Name"]: a["Value"] for a in u["Attributes"]}["sub"] for u in users}


def _cognito_ids(values: dict[str, str]) -> dict[str, str]:
    import psycopg

    with psycopg.connect(values["CONNECTION_URL"]) as conn:
        return dict(conn.execute("select handle, cognito_user_id from users").fetchall())


def _message_texts(dynamodb, group_uuid: str) -> set[str]:
    response = dynamodb.query(TableName="cruddur-messages", KeyConditionExpression="pk = :pk",
                              ExpressionAttributeValues={":pk": {"S": f"MSG#{group_uuid}"}})
    return {item["message"]["S"] for item in response["Items"]}


def test_items_written_after_up_and_cognito_subs_survive_down_up_and_a_killed_moto(cli) -> None:
    """On moto through the snapshot; on DynamoDB Local the items through its own files, the users as on moto."""
    from bootstrap.fixtures.parse import load_fixtures

    first, second = load_fixtures(PROJECT_ROOT / "seeds").users[:2]
    cli("up")
    values = cli.exported()
    dynamodb, cognito = _clients(values)
    # A new group: `verify` expects the fixture groups to hold exactly their fixture messages.
    created = cli("ddb.create-group", "--from", first.handle, "--to", second.handle, "--text", "a new group")
    group_uuid = re.search(r"group ([0-9a-f-]{36})", created.stderr).group(1)
    cli("ddb.create-message", "--group", group_uuid, "--handle", second.handle, "--text", "written through the task")
    direct = {"pk": {"S": f"APP#{uuid.uuid4()}"}, "sk": {"S": "2024-01-01T00:00:00+00:00"},
              "note": {"S": "written with put_item"}}
    dynamodb.put_item(TableName="cruddur-messages", Item=direct)
    pool_id = values["AWS_COGNITO_USER_POOL_ID"]
    subs = _subs(cognito, pool_id)

    down = cli("down")
    assert "snapshot: saved" in down.stderr
    assert (cli.state_dir / "snapshots" / "moto.json").exists()

    up = cli("up")
    assert "snapshot: restored" in up.stderr
    values = cli.exported()
    dynamodb, cognito = _clients(values)
    assert "written through the task" in _message_texts(dynamodb, group_uuid)
    key = {"pk": direct["pk"], "sk": direct["sk"]}
    assert dynamodb.get_item(TableName="cruddur-messages", Key=key)["Item"] == direct
    assert values["AWS_COGNITO_USER_POOL_ID"] == pool_id
    assert _subs(cognito, pool_id) == subs
    assert {h: s for h, s in _cognito_ids(values).items() if h in subs} == subs
    cli("verify")

    # kill -9: no snapshot at down, so the next up restores the one from the earlier down.
    moto_pid = next(row["pid"] for row in json.loads(cli("status", "--json").stdout)["services"]
                    if row["name"] in ("moto", "cognito"))
    os.kill(moto_pid, signal.SIGKILL)
    up = cli("up")
    assert "snapshot: restored" in up.stderr
    dynamodb, cognito = _clients(cli.exported())
    assert "written through the task" in _message_texts(dynamodb, group_uuid)
    assert _subs(cognito, pool_id) == subs
    cli("verify")


def test_corrupt_snapshot_is_reported_and_up_reseeds(cli) -> None:
    cli("up")
    cli("down")
    path = cli.state_dir / "snapshots" / "moto.json"
    path.write_text(path.read_text()[: len(path.read_text()) // 2])

    up = cli("up")
    warning = "".join(up.stderr.split())
    assert "moto.jsonisdamaged:notvalidJSON" in warning and "arelost" in warning
    assert "snapshot:restored" not in warning
    assert not path.exists() and path.with_name("moto.json.corrupt").exists()
    cli("verify")
