"""The containers of the docker backend, planned from the compose services: pure, no engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from bootstrap.services.compose import config_hash, load_compose, parse_compose
from bootstrap.services.containers import (
    LABEL_HASH, ContainerAction, ObservedContainer, container_spec, create_kwargs, plan_container, project_name,
)
from tests.helpers import PROJECT_ROOT

BASE = PROJECT_ROOT / "docker-compose.yml"


def _spec(text: str = "services:\n  db:\n    image: pg\n    ports: ['5432:5432']\n    volumes: ['data:/d']\nvolumes:\n  data:\n",
          image_id: str = "sha256:1", host_port: int | None = 5432):
    service = parse_compose([("file0.yml", text)], Path("/project")).service("db")
    return container_spec(service, "cruddur-abc", image_id, {service.ports[0]: host_port})


def test_config_hash_changes_with_the_file_and_with_what_was_resolved() -> None:
    assert _spec().config_hash == _spec().config_hash
    assert _spec(image_id="sha256:2").config_hash != _spec().config_hash
    assert _spec(host_port=5433).config_hash != _spec().config_hash
    changed = "services:\n  db:\n    image: pg\n    ports: ['5432:5432']\n    volumes: ['data:/d']\n    user: root\nvolumes:\n  data:\n"
    assert _spec(changed).config_hash != _spec().config_hash
    service = _spec().service
    assert config_hash(service, a=1) == config_hash(service, a=1) != config_hash(service, a=2)


@pytest.mark.parametrize(("existing", "action"), [
    (None, ContainerAction.CREATE),
    ("same-running", ContainerAction.REUSE),
    ("same-stopped", ContainerAction.START),
    ("changed-running", ContainerAction.RECREATE),
    ("changed-stopped", ContainerAction.RECREATE),
    ("unlabelled", ContainerAction.RECREATE),
])
def test_plan_container(existing: str | None, action: ContainerAction) -> None:
    spec = _spec()
    observed = None
    if existing is not None:
        which, _, state = existing.partition("-")
        digest = {"same": spec.config_hash, "changed": "0" * 64, "unlabelled": None}[which]
        observed = ObservedContainer(digest, state == "running")
    assert plan_container(spec, observed) is action


def test_create_kwargs_carry_labels_ports_volumes_and_healthcheck() -> None:
    project = load_compose([BASE])
    service = project.service("db")
    spec = container_spec(service, "cruddur-abc", "sha256:1", {service.ports[0]: 15432})
    kwargs = create_kwargs(spec, Path("/state"))
    assert kwargs["name"] == "cruddur-abc-db"
    assert kwargs["labels"][LABEL_HASH] == spec.config_hash
    assert kwargs["ports"] == {"5432/tcp": ("127.0.0.1", 15432)}  # published on loopback only
    assert kwargs["volumes"] == {"cruddur-abc_db": {"bind": "/var/lib/postgresql/data", "mode": "rw"}}
    assert kwargs["healthcheck"] == {"test": ["CMD-SHELL", "pg_isready -U postgres -d cruddur"],
                                     "interval": 2_000_000_000, "timeout": 3_000_000_000, "retries": 30}
    assert "command" not in kwargs and kwargs["environment"]["POSTGRES_USER"] == "postgres"


def test_project_names_differ_per_state_folder() -> None:
    assert project_name(Path("/a/.cruddur")) == project_name(Path("/a/.cruddur")) != project_name(Path("/b/.cruddur"))
