"""The compose subset (parse, merge, hash): pure, no engine."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from bootstrap.services.compose import HealthcheckSpec, MountSpec, PortSpec, load_compose, parse_compose
from bootstrap.errors import ConfigError
from tests.helpers import PROJECT_ROOT

BASE = PROJECT_ROOT / "docker-compose.yml"
TEST_OVERRIDE = PROJECT_ROOT / "tests" / "docker" / "compose.test.yml"


def _parse(*texts: str, project_dir: Path = Path("/project")):
    return parse_compose([(f"file{i}.yml", text) for i, text in enumerate(texts)], project_dir)


def test_the_projects_compose_file_describes_the_three_services() -> None:
    project = load_compose([BASE])
    db = project.service("db")
    assert db.image.startswith("postgres:")
    assert dict(db.environment) == {"POSTGRES_USER": "postgres", "POSTGRES_PASSWORD": "password",
                                    "POSTGRES_DB": "cruddur"}
    assert db.ports == (PortSpec(5432, 5432, "127.0.0.1"),)
    assert db.volumes == (MountSpec("volume", "db", "/var/lib/postgresql/data"),)
    assert db.healthcheck == HealthcheckSpec(("CMD-SHELL", "pg_isready -U postgres -d cruddur"), 2.0, 3.0, 30)
    dynamodb = project.service("dynamodb-local")
    assert dynamodb.image.startswith("amazon/dynamodb-local")
    assert dynamodb.command == ("-jar", "DynamoDBLocal.jar", "-sharedDb", "-dbPath", "./data")
    assert dynamodb.ports == (PortSpec(8000, 8000, "127.0.0.1"),)
    assert dynamodb.volumes[0].kind == "volume"
    assert project.service("cognito").ports == (PortSpec(5000, 5000, "127.0.0.1"),)
    assert set(project.volumes) == {"db", "dynamodb"}


def test_the_test_override_replaces_images_commands_and_ports_and_keeps_the_rest() -> None:
    project = load_compose([BASE, TEST_OVERRIDE])
    db = project.service("db")
    assert db.image == "cruddur-test/services:latest"
    assert db.ports == (PortSpec(5432, None, "127.0.0.1"),)
    assert db.healthcheck is not None and db.volumes  # kept from the base file
    assert dict(db.environment)["POSTGRES_DB"] == "cruddur"
    assert project.files == (str(BASE), str(TEST_OVERRIDE))


def test_the_test_override_runs_dynamodb_local_as_shipped_apart_from_its_image_and_host_port() -> None:
    shipped = load_compose([BASE]).service("dynamodb-local")
    tested = load_compose([BASE, TEST_OVERRIDE]).service("dynamodb-local")
    assert tested == replace(shipped, image="cruddur-test/dynamodb-local:latest",
                             ports=(PortSpec(8000, None, "127.0.0.1"),))


def test_overrides_merge_in_order_like_compose() -> None:
    base = """
services:
  app:
    image: one
    command: run --fast
    environment: [A=1, B=2]
    ports: ["80:80"]
    volumes: ["data:/data", "./conf:/conf:ro"]
    healthcheck: {test: "true", interval: 1m30s, retries: 3}
volumes:
  data:
"""
    override = """
services:
  app:
    image: two
    command: ["serve"]
    environment: {B: "3", C: 4}
    ports: ["80:80", "81:81"]
    volumes: ["/elsewhere:/conf"]
    healthcheck: {interval: 500ms}
"""
    app = _parse(base, override).service("app")
    assert app.image == "two"
    assert app.command == ("serve",)
    assert dict(app.environment) == {"A": "1", "B": "3", "C": "4"}
    assert app.ports == (PortSpec(80, 80), PortSpec(81, 81))
    assert app.volumes == (MountSpec("volume", "data", "/data"), MountSpec("bind", "/elsewhere", "/conf"))
    assert app.healthcheck == HealthcheckSpec(("CMD-SHELL", "true"), 0.5, None, 3)


def test_reset_and_override_tags() -> None:
    base = "services:\n  app:\n    image: one\n    ports: ['80:80']\n    environment: {A: '1'}\n    user: root\n"
    override = "services:\n  app:\n    ports: !override ['8080']\n    environment: !override {B: '2'}\n    user: !reset null\n"
    app = _parse(base, override).service("app")
    assert app.ports == (PortSpec(8080, None),)
    assert app.environment == (("B", "2"),)
    assert app.user is None


@pytest.mark.parametrize(("text", "expected"), [
    ("5432", PortSpec(5432)),
    ("5433:5432", PortSpec(5432, 5433)),
    ("127.0.0.1:5433:5432", PortSpec(5432, 5433, "127.0.0.1")),
    ("127.0.0.1::5432", PortSpec(5432, None, "127.0.0.1")),
    ("53:53/udp", PortSpec(53, 53, "", "udp")),
    ("{target: 8000, published: '8001'}", PortSpec(8000, 8001)),
])
def test_port_syntaxes(text: str, expected: PortSpec) -> None:
    port_item = text if text.startswith("{") else f"'{text}'"
    assert _parse(f"services:\n  s:\n    image: x\n    ports: [{port_item}]\n").service("s").ports == (expected,)


def test_bind_mounts_are_relative_to_the_first_files_folder() -> None:
    text = "services:\n  s:\n    image: x\n    volumes: ['./data:/data', {type: bind, source: ../up, target: /up, read_only: true}]\n"
    mounts = _parse(text, project_dir=Path("/work/app")).service("s").volumes
    assert mounts == (MountSpec("bind", "/work/app/data", "/data"), MountSpec("bind", "/work/up", "/up", True))


@pytest.mark.parametrize(("text", "message"), [
    ("services:\n  s:\n    image: x\n    networks: [a]\n", "file0.yml: unsupported key 'services.s.networks'"),
    ("services: {}\nconfigs: {}\n", "file0.yml: unsupported key 'configs'"),
    ("services:\n  s:\n    image: x\n    healthcheck: {test: 'true', start_interval: 1s}\n",
     "unsupported key 'services.s.healthcheck.start_interval'"),
    ("services:\n  s:\n    image: x\n    ports: ['8000-8010:8000-8010']\n", "unsupported port '8000-8010:8000-8010'"),
    ("services:\n  s:\n    image: x\n    volumes: ['data:/data']\n", "uses volume 'data', which the top-level"),
    ("services:\n  s:\n    image: x\n    volumes: ['/data']\n", "no anonymous volumes"),
    ("services:\n  s:\n    image: x\n    environment: [HOME]\n", "services.s.environment.HOME has no value"),
    ("services:\n  s:\n    command: x\n", "services.s has no image"),
    ("services:\n  s:\n    image: x\n    healthcheck: {test: 'true', interval: soon}\n", "not a duration: 'soon'"),
    ("volumes:\n  data: {driver: nfs}\nservices: {}\n", "volume options are not supported"),
    ("services: [\n", "not valid YAML"),
])
def test_what_is_outside_the_subset_is_refused_with_file_and_key(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _parse(text)
    assert message in str(caught.value)


def test_a_missing_service_or_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no service 'db'"):
        _parse("services:\n  s:\n    image: x\n").service("db")
    with pytest.raises(ConfigError, match="cannot read compose file"):
        load_compose([tmp_path / "absent.yml"])
