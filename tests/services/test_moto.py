"""The embedded moto server: its pid file, and the data it keeps itself across a stop and the next start."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from bootstrap.readiness import Deadline
from bootstrap.services.base import aws_endpoints
from bootstrap.services.moto import MotoServer
from bootstrap.snapshot import Snapshot, snapshot_path
from bootstrap.state import StateDir
from tests.conftest import make_settings


def _pids(cli) -> dict[str, int]:
    status = json.loads(cli("status", "--json").stdout)
    return {row["name"]: row["pid"] for row in status["services"]}


def test_stale_pid_file_is_replaced(cli) -> None:
    cli("up")
    cli("down")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (cli.state_dir / "run" / "moto.pid").write_text(f"{dead.pid}\n")
    assert cli("status", check=False).returncode == 1
    cli("up")
    assert _pids(cli)["moto"] not in (None, dead.pid)


def _make_a_pool_and_a_table(endpoints) -> None:
    endpoints.client("cognito-idp").create_user_pool(PoolName="kept")
    endpoints.client("dynamodb").create_table(
        TableName="kept", BillingMode="PAY_PER_REQUEST", KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])


def test_the_server_saves_its_data_when_asked_and_restores_it_when_started_fresh(tmp_path: Path, capsys) -> None:
    """With the real snapshot as its keeper: only ``stop(save=True)`` (``down``) saves; only a fresh start restores."""
    settings = make_settings(tmp_path / ".cruddur")
    state = StateDir(settings.state_dir).ensure()
    moto = MotoServer(settings, state, keeper=Snapshot(state))
    try:
        moto.start(Deadline(60))
        endpoints = aws_endpoints(moto.url(), settings.region)
        _make_a_pool_and_a_table(endpoints)
        moto.stop()  # undoing a failed start, or a test's teardown: nothing is saved
        assert not snapshot_path(state).exists()

        moto.start(Deadline(60))
        _make_a_pool_and_a_table(endpoints)
        moto.stop(save=True)
        assert "snapshot: saved 1 tables, 0 items, 1 user pools, 0 users" in capsys.readouterr().err

        moto.start(Deadline(60))
        moto.start(Deadline(60))  # already running: nothing is restored a second time
        assert capsys.readouterr().err.count("snapshot: restored 1 tables, 0 items, 1 user pools, 0 users") == 1
        pools = endpoints.client("cognito-idp").list_user_pools(MaxResults=10)["UserPools"]
        assert [pool["Name"] for pool in pools] == ["kept"]
        assert endpoints.client("dynamodb").list_tables()["TableNames"] == ["kept"]
    finally:
        moto.stop()


def test_beside_dynamodb_local_the_server_keeps_the_user_pools_only(tmp_path: Path, capsys) -> None:
    settings = make_settings(tmp_path / ".cruddur")
    state = StateDir(settings.state_dir).ensure()
    cognito = MotoServer(settings, state, serves_dynamodb=False, keeper=Snapshot(state))
    try:
        cognito.start(Deadline(60))
        endpoints = aws_endpoints(cognito.url(), settings.region)
        assert cognito.name == "cognito" and cognito.url().endswith(f":{settings.cognito_port}")
        endpoints.client("cognito-idp").create_user_pool(PoolName="kept")
        cognito.stop(save=True)
        assert "snapshot: saved 1 user pools, 0 users (the DynamoDB tables are kept in DynamoDB Local's own files)" \
            in capsys.readouterr().err
    finally:
        cognito.stop()
