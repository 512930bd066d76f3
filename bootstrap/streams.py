"""The local stream worker: what the production Lambda does for pattern E, by polling.

The worker reads the table's latest stream on the local endpoint, every shard
(parents before children), and hands each GetRecords batch to
``Messages.apply_stream_records``. After each batch it remembers the shard's
last sequence number, per stream ARN, in ``stream-positions.json`` in the state
folder, so a restart resumes AFTER that record instead of replaying the
stream. Saving after applying makes delivery at-least-once; E is idempotent,
so a batch seen twice (a crash between the two) changes nothing.

Assumes the table was created with a stream (``bootstrap.ddb.schema``).
"""

from __future__ import annotations

import contextlib
import json
import logging
import signal
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from .config import Endpoints
from .errors import DriftError
from .messaging import Messages, StreamResult
from .state import StateDir, write_atomic

log = logging.getLogger(__name__)

POSITIONS_FILE = "stream-positions.json"
BATCH_SIZE = 1000


@dataclass(frozen=True)
class Positions:
    """The last sequence number processed, per stream ARN and shard, kept in one JSON file."""

    path: Path

    def read(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            log.warning("%s is damaged; the stream is read from its oldest record (E is idempotent)", self.path)
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, stream_arn: str, shard_id: str) -> str | None:
        return self.read().get(stream_arn, {}).get(shard_id)

    def save(self, stream_arn: str, shard_id: str, sequence_number: str) -> None:
        data = self.read()
        data.setdefault(stream_arn, {})[shard_id] = sequence_number
        write_atomic(self.path, json.dumps(data, indent=2, sort_keys=True) + "\n")


def positions_for(state: StateDir) -> Positions:
    return Positions(state.root / POSITIONS_FILE)


def order_shards(shards: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Parents before children (a child holds the newer records of a split shard), else as listed."""
    pending = list(shards)
    ids = {shard["ShardId"] for shard in pending}
    ordered: list[Mapping[str, Any]] = []
    done: set[str] = set()
    while pending:
        ready = [s for s in pending if s.get("ParentShardId") not in ids or s.get("ParentShardId") in done]
        # A cycle cannot happen in DynamoDB; this only guards against a malformed answer.
        ready = ready or pending[:1]
        for shard in ready:
            ordered.append(shard)
            done.add(shard["ShardId"])
            pending.remove(shard)
    return ordered


def latest_stream_arn(endpoints: Endpoints, table_name: str) -> str:
    from botocore.exceptions import ClientError

    try:
        table = endpoints.client("dynamodb").describe_table(TableName=table_name)["Table"]
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
            raise DriftError(f"table {table_name} does not exist; create it with `invoke ddb.schema-load`") from None
        raise
    arn = table.get("LatestStreamArn")
    if not arn or not table.get("StreamSpecification", {}).get("StreamEnabled", True):
        raise DriftError(f"table {table_name} has no stream; recreate it with its spec (`invoke ddb.schema-load`)")
    return arn


def list_shards(streams: Any, stream_arn: str) -> list[Mapping[str, Any]]:
    shards: list[Mapping[str, Any]] = []
    request: dict[str, Any] = {"StreamArn": stream_arn}
    while True:
        description = streams.describe_stream(**request)["StreamDescription"]
        shards.extend(description.get("Shards", []))
        last = description.get("LastEvaluatedShardId")
        if not last:
            return order_shards(shards)
        request["ExclusiveStartShardId"] = last


def _shard_iterator(streams: Any, stream_arn: str, shard_id: str, after: str | None) -> str | None:
    from botocore.exceptions import ClientError

    if after is not None:
        try:
            return streams.get_shard_iterator(
                StreamArn=stream_arn, ShardId=shard_id,
                ShardIteratorType="AFTER_SEQUENCE_NUMBER", SequenceNumber=after,
            ).get("ShardIterator")
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TrimmedDataAccessException":
                raise
            log.warning("shard %s: remembered position %s was trimmed; reading from the oldest record", shard_id, after)
    return streams.get_shard_iterator(
        StreamArn=stream_arn, ShardId=shard_id, ShardIteratorType="TRIM_HORIZON"
    ).get("ShardIterator")


def _batches(streams: Any, iterator: str | None, stop: threading.Event) -> Iterator[list[Mapping[str, Any]]]:
    """GetRecords batches of one shard until it is caught up (an empty batch) or closed."""
    while iterator and not stop.is_set():
        response = streams.get_records(ShardIterator=iterator, Limit=BATCH_SIZE)
        records = response.get("Records", [])
        if not records:
            return
        yield records
        iterator = response.get("NextShardIterator")


def drain_stream(
    endpoints: Endpoints, table_name: str, state: StateDir, stop: threading.Event | None = None
) -> StreamResult:
    """Apply every record not yet processed on every shard, remembering the position after each batch."""
    stop = stop or threading.Event()
    stream_arn = latest_stream_arn(endpoints, table_name)
    streams = endpoints.client("dynamodbstreams")
    messages = Messages(endpoints.client("dynamodb"), table_name)
    positions = positions_for(state)
    total = StreamResult()
    for shard in list_shards(streams, stream_arn):
        shard_id = shard["ShardId"]
        iterator = _shard_iterator(streams, stream_arn, shard_id, positions.get(stream_arn, shard_id))
        for records in _batches(streams, iterator, stop):
            total += messages.apply_stream_records(records)
            positions.save(stream_arn, shard_id, records[-1]["dynamodb"]["SequenceNumber"])
            log.debug("shard %s: %d records, position saved", shard_id, len(records))
    return total


def run_worker(
    endpoints: Endpoints,
    table_name: str,
    state: StateDir,
    once: bool = False,
    poll_interval: float = 1.0,
    stop: threading.Event | None = None,
) -> StreamResult:
    """Drain the stream, then (unless ``once``) poll every ``poll_interval`` seconds until ``stop`` or Ctrl-C.

    Ctrl-C sets ``stop`` instead of interrupting, so the batch being applied
    finishes and its position is saved before the worker returns.
    """
    stop = stop or threading.Event()
    total = StreamResult()
    with _stop_on_interrupt(stop):
        while True:
            total += drain_stream(endpoints, table_name, state, stop)
            if once or stop.wait(poll_interval):
                return total


@contextlib.contextmanager
def _stop_on_interrupt(stop: threading.Event) -> Iterator[None]:
    """While active, the first Ctrl-C sets ``stop``; a second one interrupts at once.

    Only the main thread can handle signals; elsewhere ``stop`` is the only way to end the worker.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_interrupt(_signum: int, _frame: Any) -> None:
        if stop.is_set():
            raise KeyboardInterrupt
        stop.set()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
