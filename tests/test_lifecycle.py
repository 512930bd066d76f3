"""`invoke up/down/status/env` end to end, as separate processes, on real embedded services."""

from __future__ import annotations

import json
import socket

import psutil
import pytest


def _pids(cli) -> dict[str, int]:
    status = json.loads(cli("status", "--json").stdout)
    return {row["name"]: row["pid"] for row in status["services"]}


def test_up_status_env_down(cli) -> None:
    import boto3
    import psycopg

    cli("up")
    assert cli("status").returncode == 0
    pids = _pids(cli)
    assert all(pids.values())

    values = cli.exported()
    with psycopg.connect(values["CONNECTION_URL"]) as conn:
        assert conn.execute("select current_database()").fetchone() == ("cruddur",)
    client = boto3.client(
        "dynamodb", endpoint_url=values["AWS_ENDPOINT_URL"], region_name=values["AWS_DEFAULT_REGION"],
        aws_access_key_id=values["AWS_ACCESS_KEY_ID"], aws_secret_access_key=values["AWS_SECRET_ACCESS_KEY"],
    )
    assert client.list_tables()["TableNames"] == ["cruddur-messages"]

    cli("down")
    assert not any(psutil.pid_exists(pid) for pid in pids.values())
    assert cli("status", check=False).returncode == 1


def test_second_up_reuses_the_running_services(cli) -> None:
    cli("up")
    first = _pids(cli)
    cli("up")
    assert _pids(cli) == first


def test_taken_ports_fall_back_and_are_remembered(cli) -> None:
    taken = [socket.socket(), socket.socket()]
    for sock, variable in zip(taken, ("CRUDDUR_PG_PORT", "CRUDDUR_DDB_PORT")):
        sock.bind(("127.0.0.1", int(cli.env[variable])))
        sock.listen()
    try:
        cli("up")
        values = cli.exported()
        assert f":{cli.env['CRUDDUR_PG_PORT']}/" not in values["CONNECTION_URL"]
        assert not values["AWS_ENDPOINT_URL"].endswith(f":{cli.env['CRUDDUR_DDB_PORT']}")
        cli("down")
    finally:
        for sock in taken:
            sock.close()
    cli("up")
    assert cli.exported() == values


def test_deleted_state_folder_still_finds_and_stops_the_services(cli) -> None:
    import shutil

    cli("up")
    pids = _pids(cli)
    shutil.rmtree(cli.state_dir)
    status = cli("status", "--json", check=False)
    assert {row["name"]: row["pid"] for row in json.loads(status.stdout)["services"]} == pids
    cli("down")
    assert not any(psutil.pid_exists(pid) for pid in pids.values())


def test_explain_shows_every_setting_with_its_source_and_never_the_password(capsys, monkeypatch) -> None:
    from bootstrap import console, lifecycle
    from bootstrap.config import OPTIONS, resolve_settings

    monkeypatch.setenv("COLUMNS", "250")  # one row per setting, so the assertions can read whole cells
    console.console.cache_clear()
    settings = resolve_settings({}, {"CRUDDUR_PG_PASSWORD": "zz-secret-zz", "AWS_DEFAULT_REGION": "eu-west-1"}, {})
    lifecycle.explain(settings)
    out = capsys.readouterr().out
    assert "zz-secret-zz" not in out
    assert "eu-west-1" in out and "env AWS_DEFAULT_REGION" in out
    assert all(option.name in out for option in OPTIONS)
    console.console.cache_clear()


@pytest.mark.both_engines
def test_ephemeral_keeps_nothing_says_so_and_a_normal_up_after_it_starts_clean(cli) -> None:
    cli("up", "--ephemeral")
    status = cli("status")
    assert "ephemeral:" in status.stderr and json.loads(cli("status", "--json").stdout)["ephemeral"] is True
    if cli.env["CRUDDUR_DDB_ENGINE"] == "dynamodb-local":
        from bootstrap.processes import command_line

        assert "-inMemory" in command_line(_pids(cli)["dynamodb"])
    down = cli("down")
    assert "its data went with it" in down.stderr
    assert not (cli.state_dir / "postgres").exists() and not (cli.state_dir / "snapshots" / "moto.json").exists()
    again = cli("up")
    assert "starting clean: the last `invoke up` was ephemeral" in again.stderr
    assert json.loads(cli("status", "--json").stdout)["ephemeral"] is False
    cli("down")
    refused = cli("up", "--ephemeral", check=False)
    assert refused.returncode == 2 and "holds data kept on disk" in refused.stdout + refused.stderr
