"""`invoke doctor`: the pure judgements on plain facts, and the task on this machine with things taken away."""

from __future__ import annotations

import json
import os
import shutil
import socket
from dataclasses import replace
from pathlib import Path


from bootstrap.doctor import BLOCKER, OK, WARNING, Facts, PortFact, PostgresFacts, has_blocker, judge
from bootstrap.services.dynamodb_local import INSTALL_HINT, JAVA_HINT, Availability
from tests.conftest import DYNAMODB_LOCAL_MISSING, DYNAMODB_LOCAL_SETTINGS, skip_missing

HEALTHY = Facts(
    python=(3, 12, 1), backend="embedded", backend_reason="auto: no Docker engine", docker=(False, "no Docker engine"),
    ddb_engine="moto", ddb_engine_reason="auto: DynamoDB Local not found",
    dynamodb_local=Availability(False, "not found", False, INSTALL_HINT),
    postgres=PostgresFacts(installed=True, as_root=False, system_user="embedded_postgres", system_user_exists=False,
                           useradd_found=True, bin_dir="/v/bin", runs=True, run_output="postgres 18.6"),
    ports=(PortFact("postgres", 5432, "CRUDDUR_PG_PORT", free=True, ours=False),
           PortFact("moto", 8000, "CRUDDUR_DDB_PORT", free=False, ours=True)),
    folders={"state folder": ("/p/.cruddur", True), "cache folder": ("/h/.cache/c", True)},
    disk_free=20 * 1024**3, disk_path="/p",
    our_endpoints={"postgres": "postgresql://postgres:password@localhost:5432/cruddur",
                   "dynamodb": "http://localhost:8000"},
)


def _levels(facts: Facts) -> dict[str, str]:
    return {check.name: check.level for check in judge(facts)}


def _check(facts: Facts, name: str):
    return next(check for check in judge(facts) if check.name == name)


def test_a_healthy_machine_has_no_blocker_and_no_warning() -> None:
    assert set(_levels(HEALTHY).values()) == {OK}


def test_an_old_python_blocks() -> None:
    assert _check(replace(HEALTHY, python=(3, 10, 13)), "python").level == BLOCKER
    assert _check(replace(HEALTHY, python=(3, 14, 0)), "python").level == WARNING


def test_no_docker_blocks_only_the_docker_backend() -> None:
    assert _check(HEALTHY, "docker").level == OK and "start the Docker engine" in _check(HEALTHY, "docker").fix
    assert _check(replace(HEALTHY, backend="docker"), "docker").level == BLOCKER


def test_dynamodb_local_without_java_blocks_when_chosen_and_warns_under_auto() -> None:
    no_java = replace(HEALTHY, dynamodb_local=Availability(False, "DynamoDB Local found, but no Java", True, JAVA_HINT))
    assert _check(replace(no_java, ddb_engine_reason="chosen by flag"), "dynamodb local").level == OK  # not needed
    chosen = _check(replace(no_java, ddb_engine="dynamodb-local"), "dynamodb local")
    assert chosen.level == BLOCKER and "default-jre-headless" in chosen.fix
    assert _check(replace(no_java, ddb_engine=None), "dynamodb local").level == WARNING
    auto = _check(replace(no_java, ddb_engine_reason="auto: DynamoDB Local found, but no Java"), "dynamodb local")
    assert auto.level == WARNING and "moto serves DynamoDB" in auto.detail and "default-jre-headless" in auto.fix


def test_dynamodb_local_not_installed_is_no_warning_under_auto_and_says_how_to_install() -> None:
    check = _check(HEALTHY, "dynamodb local")
    assert check.level == OK and check.fix == INSTALL_HINT


def test_a_port_held_by_a_stranger_warns_naming_it_and_the_setting() -> None:
    held = replace(HEALTHY, ports=(PortFact("postgres", 5432, "CRUDDUR_PG_PORT", False, False, "pid 7 (nc)"),))
    check = _check(held, "port 5432")
    assert check.level == WARNING and "pid 7 (nc)" in check.detail and "CRUDDUR_PG_PORT" in check.fix


def test_binaries_that_do_not_run_block_and_unreachable_ones_are_copied() -> None:
    broken = replace(HEALTHY, postgres=replace(HEALTHY.postgres, runs=False, run_output="Permission denied"))
    assert _check(broken, "postgres binaries").level == BLOCKER
    root = replace(HEALTHY.postgres, as_root=True, system_user_exists=True, closed_bin_parent="/root",
                   system_dir="/var/lib/cruddur-bootstrap")
    check = _check(replace(HEALTHY, postgres=root), "postgres binaries")
    assert check.level == OK and "/root is closed" in check.detail and "copy" in check.detail
    closed_system = replace(root, closed_system_parent="/srv/closed")
    assert _check(replace(HEALTHY, postgres=closed_system), "system folder").level == BLOCKER


def test_root_without_useradd_and_without_the_user_blocks() -> None:
    root = replace(HEALTHY.postgres, as_root=True, system_user_exists=False, useradd_found=False)
    check = _check(replace(HEALTHY, postgres=root), "postgres user")
    assert check.level == BLOCKER and "useradd" in check.detail


def test_unwritable_folders_and_a_full_disk_block() -> None:
    closed = replace(HEALTHY, folders={"state folder": ("/p/.cruddur", False)})
    assert _check(closed, "state folder").level == BLOCKER and "CRUDDUR_STATE_DIR" in _check(closed, "state folder").fix
    assert _check(replace(HEALTHY, disk_free=50 * 1024**2), "disk").level == BLOCKER
    assert _check(replace(HEALTHY, disk_free=600 * 1024**2), "disk").level == WARNING


def test_shell_variables_that_send_the_app_elsewhere_warn_and_ours_are_fine() -> None:
    elsewhere = replace(HEALTHY, environ={"AWS_ENDPOINT_URL": "http://moto.example:8000",
                                          "CONNECTION_URL": "postgresql://u:hunter2@localhost:6543/other",
                                          "AWS_PROFILE": "dev"})
    levels = _levels(elsewhere)
    assert levels["AWS_ENDPOINT_URL"] == levels["CONNECTION_URL"] == levels["AWS_PROFILE"] == WARNING
    assert "hunter2" not in json.dumps([c.detail for c in judge(elsewhere)])
    ours = replace(HEALTHY, environ={"AWS_ENDPOINT_URL": "http://127.0.0.1:8000",
                                     "CONNECTION_URL": "postgresql://postgres:password@localhost:5432/cruddur"})
    assert _levels(ours)["AWS_ENDPOINT_URL"] == _levels(ours)["CONNECTION_URL"] == OK


def test_a_key_id_dynamodb_local_refuses_warns_only_when_it_serves() -> None:
    dashed = {"AWS_ACCESS_KEY_ID": "AKIA-LOCAL-KEY"}
    assert "AWS_ACCESS_KEY_ID" not in _levels(replace(HEALTHY, environ=dashed))
    assert _levels(replace(HEALTHY, environ=dashed, ddb_engine="dynamodb-local"))["AWS_ACCESS_KEY_ID"] == WARNING


def test_an_unusable_backend_setting_blocks() -> None:
    assert has_blocker(judge(replace(HEALTHY, backend=None, backend_reason="backend 'external' needs ...")))


# --- the task on this machine ------------------------------------------------------------------------


def _doctor(cli, *args: str, **env: str) -> tuple[int, dict]:
    result = cli("doctor", "--json", *args, check=False, **env)
    assert result.returncode in (0, 1) and "Traceback" not in result.stderr, result.stderr
    return result.returncode, {check["name"]: check for check in json.loads(result.stdout)["checks"]}


def test_doctor_on_this_machine_exits_0_and_names_every_concern(cli) -> None:
    code, checks = _doctor(cli)
    assert code == 0, checks
    assert {"python", "backend", "docker", "postgres binaries", "state folder", "cache folder", "disk"} <= set(checks)
    assert checks["postgres binaries"]["level"] == OK
    table = cli("doctor")
    assert table.returncode == 0 and "0 blocker(s)" in table.stderr


def test_doctor_names_a_gone_docker_socket_with_its_fix(cli, tmp_path: Path) -> None:
    gone = f"unix://{tmp_path}/docker.sock"
    code, checks = _doctor(cli, "--backend", "docker", DOCKER_HOST=gone)
    assert code == 1 and checks["docker"]["level"] == BLOCKER
    assert f"{tmp_path}/docker.sock does not exist" in checks["docker"]["detail"]
    assert "start the Docker engine" in checks["docker"]["fix"]


def test_doctor_names_a_port_held_by_a_stranger_with_its_fix(cli) -> None:
    with socket.socket() as stranger:
        stranger.bind(("127.0.0.1", 0))
        stranger.listen()
        port = stranger.getsockname()[1]
        code, checks = _doctor(cli, CRUDDUR_PG_PORT=str(port))
    assert code == 0, checks  # `up` would use another port: a warning
    check = checks[f"port {port}"]
    assert check["level"] == WARNING and "postgres: held by" in check["detail"] and "CRUDDUR_PG_PORT" in check["fix"]


def test_doctor_names_java_missing_from_path_with_its_fix(cli) -> None:
    if DYNAMODB_LOCAL_MISSING:
        skip_missing(DYNAMODB_LOCAL_MISSING)
    java = shutil.which("java")
    assert java is not None
    path = os.pathsep.join(folder for folder in os.environ["PATH"].split(os.pathsep)
                           if not (Path(folder) / "java").exists())
    code, checks = _doctor(cli, "--ddb-engine", "dynamodb-local", PATH=path, JAVA_HOME="",
                           CRUDDUR_DYNAMODB_LOCAL_PATH=DYNAMODB_LOCAL_SETTINGS.get("dynamodb_local_path", ""))
    check = checks["dynamodb local"]
    assert code == 1 and check["level"] == BLOCKER, checks
    assert "no Java" in check["detail"] and "default-jre-headless" in check["fix"]
