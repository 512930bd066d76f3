"""The local stream worker (bootstrap/streams.py): its remembered positions and shard order as plain values,
then the worker against the session's real DynamoDB engines (one table per test).

What the worker applies (pattern E) is tested in test_messaging.py.
"""

from __future__ import annotations

import json
import logging
import threading
from pathlib import Path
from typing import Iterator

import pytest

from bootstrap import streams
from bootstrap.errors import BootstrapError
from bootstrap.messaging import Messages, StreamResult
from bootstrap.state import StateDir
from tests.messaging_helpers import ALICE, BOB, at, contract_table, scan

pytestmark = pytest.mark.both_engines


# --- pure ----------------------------------------------------------------------------


def test_positions_start_empty_and_keep_each_shards_last_sequence_number(tmp_path: Path) -> None:
    positions = streams.positions_for(StateDir(tmp_path))
    assert positions.path == tmp_path / streams.POSITIONS_FILE
    assert positions.read() == {} and positions.get("arn:1", "shard-a") is None
    positions.save("arn:1", "shard-a", "100")
    positions.save("arn:1", "shard-b", "7")
    positions.save("arn:1", "shard-a", "205")
    positions.save("arn:2", "shard-a", "1")
    assert positions.read() == {"arn:1": {"shard-a": "205", "shard-b": "7"}, "arn:2": {"shard-a": "1"}}
    assert json.loads(positions.path.read_text()) == positions.read()


@pytest.mark.parametrize("damage", [b"{not json", b"\xff\xfe"])
def test_damaged_positions_are_read_from_the_oldest_record(tmp_path: Path, damage: bytes,
                                                           caplog: pytest.LogCaptureFixture) -> None:
    """Harmless, as applying a record twice changes nothing (pattern E is idempotent)."""
    positions = streams.positions_for(StateDir(tmp_path))
    positions.path.write_bytes(damage)
    with caplog.at_level(logging.WARNING, logger=streams.__name__):
        assert positions.read() == {} and positions.get("arn:1", "shard-a") is None
    assert f"{positions.path} is damaged" in caplog.text
    positions.save("arn:1", "shard-a", "3")
    assert positions.read() == {"arn:1": {"shard-a": "3"}}


def test_order_shards_puts_parents_first() -> None:
    shards = [{"ShardId": "c", "ParentShardId": "b"}, {"ShardId": "b", "ParentShardId": "a"},
              {"ShardId": "a", "ParentShardId": "trimmed-long-ago"}, {"ShardId": "x"}]
    assert [s["ShardId"] for s in streams.order_shards(shards)] == ["a", "x", "b", "c"]


# --- against the DynamoDB engines -------------------------------------------------------


@pytest.fixture
def state(tmp_path: Path) -> StateDir:
    """The worker's own state folder, where it remembers its positions."""
    return StateDir(tmp_path / "worker-state")


@pytest.fixture
def messages(endpoints, table_name: str) -> Iterator[Messages]:
    with contract_table(endpoints, table_name):
        yield Messages(endpoints.client("dynamodb"), table_name)


def test_worker_restart_does_not_reprocess(endpoints, messages: Messages, state: StateDir, tmp_path: Path) -> None:
    group, _ = messages.create_message_group(ALICE, BOB, "one", now=at(1))
    messages.create_message(group, BOB, "two", now=at(2))
    table = messages.table_name

    # The drain also reads the worker's own replacements (REMOVE + INSERT of both group items).
    assert streams.run_worker(endpoints, table, state, once=True) == StreamResult(applied=1, skipped=7)
    assert streams.run_worker(endpoints, table, state, once=True) == StreamResult()
    arn = streams.latest_stream_arn(endpoints, table)
    assert list(streams.positions_for(state).read()) == [arn]

    messages.create_message(group, ALICE, "three", now=at(3))
    # Only the new message and the worker's 4 records for it: nothing from before the restart.
    assert streams.drain_stream(endpoints, table, state) == StreamResult(applied=1, skipped=4)

    # A worker without remembered positions reads everything again, and changes nothing.
    before = scan(messages)
    fresh = streams.drain_stream(endpoints, table, StateDir(tmp_path / "fresh"))
    assert fresh.applied == 0 and fresh.skipped > 0
    assert scan(messages) == before


def test_worker_stops_when_asked(endpoints, messages: Messages, state: StateDir) -> None:
    stop = threading.Event()
    stop.set()
    assert streams.run_worker(endpoints, messages.table_name, state, once=False, poll_interval=60, stop=stop) == StreamResult()


def test_worker_needs_a_stream(endpoints, table_name: str, state: StateDir) -> None:
    with pytest.raises(BootstrapError, match="does not exist"):
        streams.drain_stream(endpoints, table_name, state)
