"""The docker backend against a real Docker engine: `invoke up`, verify, status, down, down --purge (marked
``docker``); and, with no engine, where an engine is looked for.

The engine is the one DOCKER_HOST names when it answers; otherwise this
module starts its own ``dockerd`` (root, Debian's docker.io package, which
.ci/run installs) with its data, exec root, pid file and socket in a temp
folder, and stops it at the end. That engine gets a bridge and subnet of its
own (``cruddur<N>``, 10.231.N.0/24) and leaves iptables alone: engines of test
sessions running at once on one machine would otherwise all use docker0 and
172.17.0.0/16, give two containers the same address, and send a test's
connections to another session's container. The tests skip, saying why, only
when no engine can be started (on CI they fail instead: conftest's ``skip_missing``).
Not being root is no missing part: as another user the tests skip even on CI (the root run covers them).

No container registry is reachable here, so the compose services run locally
built images (tests/docker/build_image.py: Postgres 15, moto and Java 17 from
Debian's and PyPI's packages, and this machine's DynamoDB Local) through the
override tests/docker/compose.test.yml, which replaces only images, the db and
cognito commands, and host ports. The ``dynamodb-local`` service runs as
shipped: AWS's DynamoDB Local with the compose file's own command, user,
working folder and named volume. The test skips, saying why, where DynamoDB
Local's files are not on this machine (``invoke ddb.install-local``).

The whole life cycle is ONE test on purpose: the engine is started once per
test session, and pytest-xdist could give a second test to the other worker,
which would start (and pay for) a second engine.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import boto3
import pytest

from bootstrap.services.containers import LABEL_PROJECT, project_name
from bootstrap.services.docker import engine_answers, engine_host
from tests.conftest import skip_missing
from tests.docker import build_image
from tests.helpers import PROJECT_ROOT

COMPOSE_FILES = f"{PROJECT_ROOT / 'docker-compose.yml'}:{PROJECT_ROOT / 'tests' / 'docker' / 'compose.test.yml'}"
ENGINE_START_TIMEOUT = 60.0
# Looked up at import, with the user's own settings, before the autouse fixture isolates each test's environment.
DYNAMODB_LOCAL = build_image.find_dynamodb_local()


@dataclass(frozen=True)
class Engine:
    host: str
    client: Any


def _claim_bridge() -> str | None:
    """Create a bridge for this session's engine and return its name; None where ``ip`` is missing (then docker0).

    Creating the bridge is the claim on its number: ``ip link add`` fails when another
    session holds it, and the next number is tried.
    """
    if shutil.which("ip") is None:
        return None
    for number in range(256):
        name = f"cruddur{number}"
        if subprocess.run(["ip", "link", "add", name, "type", "bridge"], capture_output=True).returncode == 0:
            subprocess.run(["ip", "addr", "add", f"10.231.{number}.1/24", "dev", name], check=True)
            subprocess.run(["ip", "link", "set", name, "up"], check=True)
            return name
    return None


def _start_dockerd(root: Path, bridge: str | None) -> subprocess.Popen:
    own_network = ["--bridge", bridge, "--iptables=false"] if bridge else []
    with open(root / "dockerd.log", "wb") as log:
        return subprocess.Popen(
            [
                "dockerd", "--data-root", str(root / "data"), "--exec-root", str(root / "exec"),
                "--pidfile", str(root / "dockerd.pid"), "-H", f"unix://{root}/docker.sock", *own_network,
            ],
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )


def _stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


@pytest.fixture(scope="session")
def engine() -> Iterator[Engine]:
    import docker

    given = os.environ.get("DOCKER_HOST")
    if given and engine_answers({"DOCKER_HOST": given}, timeout=5)[0]:
        yield Engine(given, docker.DockerClient(base_url=given))
        return
    if shutil.which("dockerd") is None:
        skip_missing("no Docker engine: DOCKER_HOST does not answer and dockerd is not installed "
                    "(apt-get install docker.io; .ci/run does this)")
    if os.geteuid() != 0:
        pytest.skip("no Docker engine: DOCKER_HOST does not answer and starting dockerd needs root")
    # A short folder: the engine's unix sockets live in it, and their paths are limited to ~107 bytes.
    root = Path(tempfile.mkdtemp(prefix="cruddur-dockerd-"))
    host = f"unix://{root}/docker.sock"
    bridge = _claim_bridge()
    process = _start_dockerd(root, bridge)
    try:
        deadline = time.monotonic() + ENGINE_START_TIMEOUT
        while not engine_answers({"DOCKER_HOST": host}, timeout=2)[0]:
            if process.poll() is not None or time.monotonic() > deadline:
                log = (root / "dockerd.log").read_text(errors="replace")[-3000:]
                skip_missing(f"no Docker engine: dockerd did not start (exit {process.poll()}):\n{log}")
            time.sleep(0.2)
        client = docker.DockerClient(base_url=host)
        yield Engine(host, client)
        client.close()
    finally:
        _stop(process)
        shutil.rmtree(root, ignore_errors=True)
        if bridge:
            subprocess.run(["ip", "link", "delete", bridge], capture_output=True)


@pytest.fixture(scope="session")
def images(engine: Engine) -> tuple[str, str]:
    if DYNAMODB_LOCAL is None:
        skip_missing("cannot build the test images: DynamoDB Local's files are not on this machine "
                    "(run `invoke ddb.install-local`)")
    cached = build_image.cache_dir() / f"rootfs-{build_image.build_key(DYNAMODB_LOCAL)}.tar"
    if shutil.which("mmdebstrap") is None and not cached.exists():
        skip_missing("cannot build the test images: mmdebstrap is not installed (apt-get install mmdebstrap)")
    return build_image.ensure_images(engine.client, DYNAMODB_LOCAL)


@pytest.fixture
def docker_cli(cli, engine: Engine, images: tuple[str, str]):
    """The ``cli`` runner on the docker backend of the test engine (its teardown `down` reaches it too)."""
    cli.env.update(CRUDDUR_BACKEND="docker", DOCKER_HOST=engine.host, CRUDDUR_COMPOSE_FILES=COMPOSE_FILES)
    yield cli
    cli("down", "--purge", check=False)


def _containers(engine: Engine, project: str) -> dict[str, str]:
    found = engine.client.containers.list(all=True, filters={"label": f"{LABEL_PROJECT}={project}"})
    return {c.name.removeprefix(f"{project}-"): c.status for c in found}


def _volumes(engine: Engine, project: str) -> set[str]:
    return {v.name for v in engine.client.volumes.list(filters={"label": f"{LABEL_PROJECT}={project}"})}


def _dynamodb(variables: dict[str, str]) -> Any:
    """A DynamoDB client configured only from what `invoke env` exports, as the app's would be."""
    return boto3.client("dynamodb", endpoint_url=variables["AWS_ENDPOINT_URL"],
                        region_name=variables["AWS_DEFAULT_REGION"],
                        aws_access_key_id=variables["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=variables["AWS_SECRET_ACCESS_KEY"])


def _container_lines(stderr: str) -> dict[str, str]:
    """``{service: action}`` from the backend's ``<service>: container <name> <action>`` lines."""
    lines = [line.split() for line in stderr.splitlines() if ": container " in line]
    return {words[0].rstrip(":"): words[-1] for words in lines}


@pytest.mark.docker
@pytest.mark.slow
def test_up_verify_status_down_and_purge_run_the_compose_services_as_containers(
    docker_cli, engine: Engine, tmp_path: Path,
) -> None:
    cli = docker_cli
    project = project_name(cli.state_dir.resolve())

    first = cli("up", "--json")
    report = json.loads(first.stdout)
    assert _container_lines(first.stderr) == {"postgres": "created", "dynamodb": "created", "cognito": "created"}
    assert all(step["action"] != "failed" for step in report["steps"]), report
    assert _containers(engine, project) == {"db": "running", "dynamodb-local": "running", "cognito": "running"}
    assert _volumes(engine, project) == {f"{project}_db", f"{project}_dynamodb"}
    cli("verify")

    variables = cli.exported()
    assert f":{cli.env['CRUDDUR_PG_PORT']}/cruddur" in variables["CONNECTION_URL"]
    assert variables["AWS_ENDPOINT_URL"] == f"http://localhost:{cli.env['CRUDDUR_DDB_PORT']}"

    # `dynamodb-local` is AWS's DynamoDB Local, run the way the compose file says, with its data in the volume.
    dynamodb_local = engine.client.containers.get(f"{project}-dynamodb-local")
    config = dynamodb_local.attrs["Config"]
    assert (config["Entrypoint"], config["Cmd"], config["WorkingDir"], config["User"]) == (
        ["java"], ["-jar", "DynamoDBLocal.jar", "-sharedDb", "-dbPath", "./data"], "/home/dynamodblocal", "root")
    assert {(m["Name"], m["Destination"]) for m in dynamodb_local.attrs["Mounts"]} == {
        (f"{project}_dynamodb", "/home/dynamodblocal/data")}
    assert b"Initializing DynamoDB Local" in dynamodb_local.logs()
    # An item the app writes with the exported variables, to find again after `down` and `up`.
    app_item = {"pk": {"S": "APP#docker"}, "sk": {"S": "2024-01-01T00:00:00+00:00"},
                "note": {"S": "written with put_item"}}
    _dynamodb(variables).put_item(TableName="cruddur-messages", Item=app_item)

    status = json.loads(cli("status", "--json").stdout)
    assert status["backend"] == "docker" and "chosen by env CRUDDUR_BACKEND" in status["reason"]
    assert {row["name"]: (row["running"], row["ready"], row["pid"]) for row in status["services"]} == {
        "postgres": (True, True, None), "dynamodb": (True, True, None), "cognito": (True, True, None)}

    # backend=auto pings the engine when nothing is remembered (another state folder), and says so.
    auto = json.loads(cli("status", "--json", check=False, CRUDDUR_BACKEND="auto",
                          CRUDDUR_STATE_DIR=str(tmp_path / "other" / ".cruddur")).stdout)
    assert (auto["backend"], auto["reason"]) == ("docker", f"auto: a Docker engine answers at {engine.host}")

    # Unchanged: every container is reused and the data steps change nothing.
    second = cli("up", "--json")
    assert set(_container_lines(second.stderr).values()) == {"reused"}
    assert all(step["action"] == "unchanged" for step in json.loads(second.stdout)["steps"] if step["step"] != "verify")

    # A changed service is recreated, the others reused; a missing image is pulled, and says why it failed.
    changed = tmp_path / "changed.yml"
    changed.write_text("services:\n  cognito:\n    environment:\n      EXTRA: '1'\n")
    third = cli("up", CRUDDUR_COMPOSE_FILES=f"{COMPOSE_FILES}:{changed}")
    assert _container_lines(third.stderr) == {"postgres": "reused", "dynamodb": "reused", "cognito": "recreated"}
    absent = tmp_path / "absent.yml"
    absent.write_text("services:\n  cognito:\n    image: cruddur-test/absent:1\n")
    failed = cli("up", check=False, CRUDDUR_COMPOSE_FILES=f"{COMPOSE_FILES}:{absent}")
    assert failed.returncode == 1
    assert "pulling cruddur-test/absent:1" in failed.stderr
    assert "could not pull image cruddur-test/absent:1:" in failed.stderr

    # A container that gets healthy but never answers fails at ONE ready_timeout: waiting for its healthcheck
    # and then for its probe share the service's one deadline, and the error counts the first in what was waited.
    silent = tmp_path / "silent.yml"
    silent.write_text(
        "services:\n  cognito:\n"
        "    command: [python3, -c, 'import signal, time; signal.signal(signal.SIGTERM, lambda *a: exit()); time.sleep(600)']\n"
        "    healthcheck:\n      test: [CMD, 'true']\n      interval: 1s\n")
    never = cli("up", "--timeout", "5", check=False, CRUDDUR_COMPOSE_FILES=f"{COMPOSE_FILES}:{silent}")
    assert never.returncode == 1
    assert "cognito at http://localhost:" in never.stderr and "was not ready after 5s." in never.stderr, never.stderr
    assert re.search(r"waited \d+\.\ds of 5s \(\d+\.\ds of it starting the service, before this check\)", never.stderr)

    # down keeps the data in the volumes; the next up starts the same containers and finds the data.
    cli("down")
    assert set(_containers(engine, project).values()) == {"exited"}
    assert _volumes(engine, project) == {f"{project}_db", f"{project}_dynamodb"}
    again = cli("up", "--json")
    # cognito last ran with the changed file: back on the plain files it is recreated, not just started.
    assert _container_lines(again.stderr) == {"postgres": "started", "dynamodb": "started", "cognito": "recreated"}
    steps = {step["step"]: step["action"] for step in json.loads(again.stdout)["steps"]}
    assert steps["db.seed"] == "unchanged", steps
    key = {"pk": app_item["pk"], "sk": app_item["sk"]}
    assert _dynamodb(cli.exported()).get_item(TableName="cruddur-messages", Key=key)["Item"] == app_item
    cli("verify")

    cli("down", "--purge")
    assert _containers(engine, project) == {}
    assert _volumes(engine, project) == set()
    assert not cli.state_dir.exists()


# --- without an engine -------------------------------------------------------------------------


def test_compose_files_and_engine_host_from_the_environment(tmp_path: Path) -> None:
    from bootstrap.config import resolve_settings

    base = PROJECT_ROOT / "docker-compose.yml"
    assert resolve_settings({}, {}, {}).compose_files == (base,)
    listed = resolve_settings({}, {"CRUDDUR_COMPOSE_FILES": f"{base}:{tmp_path}/o.yml"}, {}).compose_files
    assert listed == (base, tmp_path / "o.yml")
    assert engine_host({}) == "localhost"
    assert engine_host({"DOCKER_HOST": "tcp://10.1.2.3:2375"}) == "10.1.2.3"


def test_no_engine_is_detected_without_waiting(tmp_path: Path) -> None:
    answers, reason = engine_answers({"DOCKER_HOST": f"unix://{tmp_path}/absent.sock"})
    assert not answers and "does not exist" in reason
