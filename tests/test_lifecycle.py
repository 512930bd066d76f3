"""`invoke up/down/status/env` end to end, as separate processes, on real embedded services."""

from __future__ import annotations

import json
import socket
from pathlib import Path

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
    _env_refuses(cli)


def _env_refuses(cli) -> None:
    """`invoke env` with the services stopped: an error on stderr, nothing on stdout, no file written."""
    env = cli("env", check=False)
    assert (env.returncode, env.stdout) == (1, ""), env
    assert "not running; start the services with `invoke up`" in env.stderr and "Traceback" not in env.stderr
    dotenv = cli.state_dir.parent / "app.env"
    assert cli("env", "--dotenv", str(dotenv), check=False).returncode == 1 and not dotenv.exists()


def test_env_before_any_start_prints_nothing_and_fails(tmp_path: Path, capsys) -> None:
    from bootstrap import lifecycle
    from bootstrap.config import resolve_settings
    from bootstrap.errors import ServiceError

    settings = resolve_settings({}, {}, {"state_dir": str(tmp_path / ".cruddur"), "backend": "embedded",
                                         "ddb_engine": "moto"})
    for dotenv in (None, str(tmp_path / "app.env")):
        with pytest.raises(ServiceError, match="^postgres, moto not running; start the services with `invoke up`$"):
            lifecycle.env(settings, dotenv=dotenv)
    assert capsys.readouterr().out == "" and not (tmp_path / "app.env").exists()


def test_a_service_that_exits_at_once_is_said_at_once_with_its_log(cli, tmp_path: Path) -> None:
    """DynamoDB Local from a folder whose jar is no jar: Java exits at once, and `up` says so, with Java's words."""
    from bootstrap.services.dynamodb_local import MIN_JAVA, find_java

    java = find_java()
    if java is None or java.major < MIN_JAVA:
        pytest.skip(f"Java {MIN_JAVA}+ is needed to run a jar at all")
    folder = tmp_path / "not-dynamodb-local"
    folder.mkdir()
    (folder / "DynamoDBLocal.jar").write_text("not a jar\n")
    cli.env.update(CRUDDUR_DDB_ENGINE="dynamodb-local", CRUDDUR_DYNAMODB_LOCAL_PATH=str(folder))
    up = cli("up", "--timeout", "600", check=False)
    assert up.returncode == 1 and "Traceback" not in up.stderr, up.stderr
    assert "dynamodb at http://localhost:" in up.stderr
    assert "the process this workspace started for it is gone (it exited during its start)" in up.stderr
    assert "| Error: Invalid or corrupt jarfile" in up.stderr
    assert "was not ready after" not in up.stderr  # not waited out: said when it happened


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
def test_two_workspaces_started_at_once_both_come_up_on_their_own_ports(cli) -> None:
    """Two state folders with the same preferred ports, `invoke up` in both at the same moment (one port, or more,
    goes to whichever binds it first): both verify, each on its own ports, served by its own processes."""
    from urllib.parse import urlsplit

    from tests.helpers import run_concurrently

    workspaces = [str(cli.state_dir), str(cli.state_dir.parent / "other" / ".cruddur")]
    try:
        ups = run_concurrently(cli.env, [(["up"], {"CRUDDUR_STATE_DIR": w}) for w in workspaces])
        assert [up.returncode for up in ups] == [0, 0], [up.stderr for up in ups]
        assert not any("Traceback" in up.stderr for up in ups)
        ports, pids = [], []
        for workspace in workspaces:
            status = json.loads(cli("status", "--json", CRUDDUR_STATE_DIR=workspace).stdout)
            assert all(row["running"] and row["ready"] for row in status["services"]), status
            ports.append({urlsplit(row["endpoint"]).port for row in status["services"]})
            pids.append({row["pid"] for row in status["services"]})
            cli("verify", CRUDDUR_STATE_DIR=workspace)
        assert not ports[0] & ports[1] and not pids[0] & pids[1], (ports, pids)
    finally:
        cli("down", check=False, CRUDDUR_STATE_DIR=workspaces[1])
