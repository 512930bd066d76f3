"""The embedded moto server: its pid file, and the data it keeps itself across a stop and the next start."""

from __future__ import annotations

import json
import os
import shlex
import socket
import subprocess
import sys
from pathlib import Path

import psutil
import pytest

from bootstrap.processes import port_listeners
from bootstrap.readiness import Deadline, wait_all
from bootstrap.services.base import aws_endpoints
from bootstrap.services.moto import MotoServer
from bootstrap.states.keeper import Kept, kept_folder
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
    """With the real kept state as its keeper: only ``stop(save=True)`` (``down``) saves; only a fresh start restores."""
    settings = make_settings(tmp_path / ".cruddur")
    state = StateDir(settings.state_dir).ensure()
    moto = MotoServer(settings, state, keeper=Kept(state))
    try:
        moto.start(Deadline(60))
        endpoints = aws_endpoints(moto.url(), settings.region)
        _make_a_pool_and_a_table(endpoints)
        moto.stop()  # undoing a failed start, or a test's teardown: nothing is saved
        assert not kept_folder(state).exists()

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
    cognito = MotoServer(settings, state, serves_dynamodb=False, keeper=Kept(state))
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


class _LateMoto(MotoServer):
    """A moto server that binds its port a second after it starts, as a slow server does: time for a stranger."""

    def command(self, port: int) -> list[str]:
        return ["sh", "-c", f"sleep 1; exec {shlex.join(super().command(port))}"]


def test_a_port_taken_before_the_server_listens_is_given_up_for_a_free_one(tmp_path: Path, capsys) -> None:
    settings = make_settings(tmp_path / ".cruddur")
    state = StateDir(settings.state_dir)
    moto = _LateMoto(settings, state)
    strangers: list[socket.socket] = []

    def launch_then_lose_the_port() -> bool:
        started = moto.launch()
        if not strangers:  # the first start only: another program takes the port it chose
            strangers.append(socket.create_server(("127.0.0.1", moto.port)))
        return started

    try:
        # show=False: no waiting lines, which a loaded machine would add to what is said.
        assert moto.start_until_ready(launch_then_lose_the_port,
                                      lambda: wait_all(moto.probes(), Deadline(120), show=False))
        lost = strangers[0].getsockname()[1]
        assert moto.port != lost and state.get("ports", "moto") == moto.port
        said = " ".join(capsys.readouterr().err.split())
        assert said == (f"moto: port {lost} is held by another program, {psutil.Process().name()} "
                        f"(pid {os.getpid()}), not by the process this workspace started; "
                        f"starting it again on port {moto.port}")
        pid = moto.pid()
        assert pid is not None and port_listeners(moto.port, pid) == {pid}
        strangers[0].setblocking(False)
        with pytest.raises(BlockingIOError):
            strangers[0].accept()  # nobody connected: the stranger was never asked
    finally:
        moto.stop()
        for stranger in strangers:
            stranger.close()
