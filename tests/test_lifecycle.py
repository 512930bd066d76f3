"""`invoke up/down/status/env` end to end, as separate processes, on real embedded services."""

from __future__ import annotations

import json
import re
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
    status = cli("status")
    # The answer is on stdout: `invoke status > file` keeps the backend and engine lines with their reasons.
    assert status.stdout.startswith("backend: embedded; ") and "DynamoDB engine: " in status.stdout, status.stdout
    assert "((" not in status.stdout and "))" not in status.stdout, status.stdout
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
    stopped = cli("status", "--json", check=False)
    assert stopped.returncode == 1
    assert {(row["running"], row["ready"]) for row in json.loads(stopped.stdout)["services"]} == {(False, False)}
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


def test_explain_shows_every_setting_with_its_source_and_never_the_password(capsys, monkeypatch, tmp_path) -> None:
    from bootstrap import console, lifecycle
    from bootstrap.config import OPTIONS, resolve_settings

    monkeypatch.setenv("COLUMNS", "250")  # one row per setting, so the assertions can read whole cells
    console.console.cache_clear()
    # A state folder of its own: the checkout's .cruddur/ may remember a backend from a developer's own runs.
    settings = resolve_settings({}, {"CRUDDUR_PG_PASSWORD": "zz-secret-zz", "CRUDDUR_REGION": "eu-west-1",
                                     "CRUDDUR_STATE_DIR": str(tmp_path / ".cruddur")}, {})
    lifecycle.explain(settings)
    out = capsys.readouterr().out
    assert "zz-secret-zz" not in out
    assert "eu-west-1" in out and "env CRUDDUR_REGION" in out
    assert all(option.name in out for option in OPTIONS)
    prod = resolve_settings({}, {}, {"target": "prod"},
                            aws_region=lambda: ("ca-central-1", "profile cruddur-prod in /home/u/.aws/config"))
    lifecycle.explain(prod)  # no local services to describe: only the settings
    assert re.search(r"region +│ ca-central-1 +│ profile cruddur-prod in /home/u/.aws/config", capsys.readouterr().out)
    console.console.cache_clear()


def test_a_remembered_backend_that_fails_says_it_was_remembered_and_how_to_choose_again(cli) -> None:
    """The docker backend remembered from a start, its engine gone since: `up` says where the choice came from."""
    from bootstrap.state import StateDir

    state = StateDir(cli.state_dir)
    state.update("backend", value="docker")
    state.update("started_at", value="2026-12-05T10:00:00+00:00")
    result = cli("up", "--timeout", "2", check=False, CRUDDUR_BACKEND="", DOCKER_HOST="unix:///nonexistent/docker.sock")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "no Docker engine answers at unix:" in result.stderr and "/nonexistent/docker.sock" in result.stderr
    assert ("  the backend docker is remembered from the start on 2026-12-05 10:00 UTC; `--backend` another one, or "
            "`invoke down --purge`, chooses again") in result.stderr


def test_env_for_github_is_the_shells_variables_with_their_secrets_masked_on_stderr(stack, capsys) -> None:
    """--format github on the session's running stack: the same variables `eval "$(invoke env)"` gives."""
    from bootstrap import lifecycle
    from tests.helpers import exported_variables, github_file_values

    lifecycle.env(stack.settings)
    shell = exported_variables(capsys.readouterr().out)
    lifecycle.env(stack.settings, fmt="github")
    captured = capsys.readouterr()
    assert github_file_values(captured.out) == shell
    assert "::add-mask::" not in captured.out
    assert f"::add-mask::{shell['AWS_SECRET_ACCESS_KEY']}\n" in captured.err


def test_env_refuses_an_unknown_format_and_github_with_dotenv(tmp_path) -> None:
    import pytest

    from bootstrap import lifecycle
    from bootstrap.config import resolve_settings
    from bootstrap.errors import ConfigError

    settings = resolve_settings({}, {}, {})
    with pytest.raises(ConfigError, match="--format 'fish': expected one of shell, github"):
        lifecycle.env(settings, fmt="fish")
    with pytest.raises(ConfigError, match="give one of them"):
        lifecycle.env(settings, dotenv=str(tmp_path / ".env"), fmt="github")
    assert not (tmp_path / ".env").exists()


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


@pytest.mark.both_engines
def test_ephemeral_keeps_nothing_says_so_and_a_normal_up_after_it_starts_clean(cli) -> None:
    cli("up", "--ephemeral")
    status = cli("status")
    assert "ephemeral:" in status.stdout and json.loads(cli("status", "--json").stdout)["ephemeral"] is True
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
