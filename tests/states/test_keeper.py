"""moto's data kept across `invoke down` / `invoke up` as the internal state ``.moto``.

The manifest and the damage checks are tested with plain values; the save/load
round trip runs on a real moto server (tests/services/test_moto.py) and as a
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
from bootstrap.state import StateDir
from bootstrap.states.keeper import KEPT, KeptSummary, claimed_counts, kept_folder, kept_manifest, load_kept
from bootstrap.states.manifest import MANIFEST_FILE, damaged_parts, manifest_problems, sha256_file
from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.both_engines

# Nothing is loaded in these tests, so the endpoint is never contacted.
NOWHERE = Endpoints("postgresql://x@localhost:1/cruddur", "http://localhost:1", "us-east-1")


def _kept(state: StateDir, items: str = '{"Item":{"pk":{"S":"a"}}}\n') -> Path:
    folder = kept_folder(state)
    (folder / "dynamodb").mkdir(parents=True)
    (folder / "dynamodb" / "t.jsonl").write_text(items)
    manifest = kept_manifest(created_at="2024-01-01T00:00:00+00:00", engine="moto", tables={"t": 1},
                             pools={"cruddur-user-pool": 2},
                             parts={"dynamodb/t.jsonl": sha256_file(folder / "dynamodb" / "t.jsonl")})
    (folder / MANIFEST_FILE).write_text(json.dumps(manifest))
    return folder


# --- the kept state (pure, and files only) ---------------------------------------------


def test_the_kept_state_has_a_named_states_manifest_under_a_name_no_user_can_take(tmp_path: Path) -> None:
    folder = _kept(StateDir(tmp_path))
    manifest = json.loads((folder / MANIFEST_FILE).read_text())
    assert manifest_problems(manifest) == [] and damaged_parts(folder, manifest) == []
    assert manifest["name"] == KEPT and folder.name == KEPT and manifest["postgres"] is None
    assert claimed_counts(manifest) == "1 tables, 1 items, 1 pools, 2 users"
    assert claimed_counts(None) == "contents unknown"


def test_a_damaged_kept_state_is_moved_aside_and_nothing_loaded(tmp_path: Path, capsys) -> None:
    state = StateDir(tmp_path / ".cruddur")
    folder = _kept(state)
    (folder / "dynamodb" / "t.jsonl").write_text('{"Item":{"pk":{"S":"edited"}}}\n')

    assert load_kept(NOWHERE, state) is None
    assert not folder.exists() and folder.with_name(".moto.corrupt").is_dir()
    warning = "".join(capsys.readouterr().err.split())  # rich may wrap the long path anywhere
    assert "isdamaged:dynamodb/t.jsonldoesnotmatchitschecksum" in warning
    assert "(1tables,1items,1pools,2users)arelost" in warning and "reseeds" in warning


def test_an_unreadable_manifest_is_damage_too(tmp_path: Path, capsys) -> None:
    state = StateDir(tmp_path / ".cruddur")
    folder = _kept(state)
    (folder / MANIFEST_FILE).write_text("{trunc")
    assert load_kept(NOWHERE, state) is None
    assert folder.with_name(".moto.corrupt").is_dir()
    assert "notvalidJSON" in "".join(capsys.readouterr().err.split())


def test_the_summary_says_where_the_tables_are_when_moto_serves_cognito_only() -> None:
    summary = KeptSummary(Path("s"), tables=0, items=0, pools=1, users=5)
    assert summary.describe() == "0 tables, 0 items, 1 user pools, 5 users"
    assert summary.describe(tables=False) == \
        "1 user pools, 5 users (the DynamoDB tables are kept in DynamoDB Local's own files)"


def test_nothing_kept_means_nothing_to_load(tmp_path: Path) -> None:
    assert load_kept(NOWHERE, StateDir(tmp_path)) is None


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
    """On moto through the kept state; on DynamoDB Local the items through its own files, the users as on moto."""
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
    assert (cli.state_dir / "states" / ".moto" / "manifest.json").exists()

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

    # kill -9: nothing saved at down, so the next up restores what the earlier down kept.
    moto_pid = next(row["pid"] for row in json.loads(cli("status", "--json").stdout)["services"]
                    if row["name"] in ("moto", "cognito"))
    os.kill(moto_pid, signal.SIGKILL)
    up = cli("up")
    assert "snapshot: restored" in up.stderr
    dynamodb, cognito = _clients(cli.exported())
    assert "written through the task" in _message_texts(dynamodb, group_uuid)
    assert _subs(cognito, pool_id) == subs
    cli("verify")


def test_a_damaged_kept_state_is_reported_and_up_reseeds(cli) -> None:
    cli("up")
    cli("down")
    folder = cli.state_dir / "states" / ".moto"
    damaged = next((folder / "cognito").glob("*.json"))
    damaged.write_text(damaged.read_text()[: len(damaged.read_text()) // 2])

    up = cli("up")
    warning = "".join(up.stderr.split())
    assert "isdamaged:cognito/" in warning and "doesnotmatchitschecksum" in warning and "arelost" in warning
    assert "snapshot:restored" not in warning
    assert not folder.exists() and folder.with_name(".moto.corrupt").is_dir()
    cli("verify")
