"""Named states end to end, as a user runs them (`invoke` processes on real services, both DynamoDB engines):
`up` records `seeded`; save, change, load gives back exactly the saved rows, items and Cognito users; list and
delete; and the refusals (prod, another `up` running, a damaged or unknown state) change nothing."""

from __future__ import annotations

import json
import re

import pytest

from bootstrap.config import resolve_settings
from bootstrap.errors import RefusedError
from bootstrap.state import StateDir
from bootstrap.states.store import human_size, list_states, load, save
from tests.states.helpers import change_everything, everything

pytestmark = pytest.mark.both_engines


def test_save_change_load_gives_back_exactly_the_saved_data(cli) -> None:
    cli("up")
    seeded = everything(cli)
    change_everything(cli)
    cli("state.save", "mine")
    mine = everything(cli)
    assert mine != seeded
    change_everything(cli)
    assert everything(cli) != mine

    loaded = cli("state.load", "mine").stdout
    assert "database cruddur: replaced" in loaded
    assert re.search(r"table cruddur-messages: \d+ items written, 1 deleted", loaded), loaded
    assert "0 users created, 1 deleted" in loaded
    assert everything(cli) == mine
    again = json.loads(cli("up", "--json").stdout)  # up after a load changes nothing
    assert sum(step["writes"] for step in again["steps"]) == 0, again
    cli("verify")

    cli("state.load", "seeded")
    assert everything(cli) == seeded
    cli("verify", "--full")

    listed = cli("state.list", "--json").stdout
    assert [s["name"] for s in json.loads(listed)["states"]] == ["seeded", "mine"]
    assert "password" not in listed and "password" not in (cli.state_dir / "states/mine/manifest.json").read_text()
    cli("state.delete", "mine")
    assert "mine" not in cli("state.list").stdout
    assert cli("state.load", "mine", check=False).returncode == 2


def test_refusals_change_nothing(cli) -> None:
    cli("up")
    before = everything(cli)
    prod = cli("state.load", "seeded", "--target", "prod", check=False, PROD_CONNECTION_URL="postgresql://u@x/db")
    assert prod.returncode == 3 and "local-only" in prod.stderr

    assert cli("state.save", "Bad/Name", check=False).returncode == 2
    change_everything(cli)
    changed = everything(cli)
    with StateDir(cli.state_dir).exclusive("up"):
        held = cli("state.load", "seeded", check=False)
    assert held.returncode == 3 and "another `invoke up`" in held.stderr

    part = next((cli.state_dir / "states/seeded/dynamodb").glob("*.jsonl"))
    part.write_text(part.read_text().replace("MSG#", "MSG!", 1))
    damaged = cli("state.load", "seeded", check=False)
    assert damaged.returncode == 2 and "does not match its checksum" in damaged.stderr
    assert everything(cli) == changed != before


def test_states_are_local_only_in_the_library_too(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("AWS_REGION", "ca-central-1")  # prod's region comes from boto3's chain
    settings = resolve_settings({}, {"PROD_CONNECTION_URL": "postgresql://u@db.invalid/cruddur"}, {"target": "prod"})
    for call in (lambda: save(settings, "x"), lambda: load(settings, "x"), lambda: list_states(settings)):
        with pytest.raises(RefusedError, match="local-only"):
            call()
    assert [human_size(n) for n in (5, 2048, 3 * 1024 ** 2, 5 * 1024 ** 3)] == ["5 B", "2.0 KB", "3.0 MB", "5.0 GB"]
