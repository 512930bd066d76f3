"""A state's DynamoDB part: one table as its CreateTable shape plus its items, one per line in DynamoDB JSON.

Saving scans the table with consistent reads and streams each page to
``<table>.jsonl`` (``{"Item": ...}`` per line, DynamoDB's export-to-S3 format)
beside ``<table>.json`` (the CreateTable arguments its description gives), so
memory stays flat however big the table is. Loading never drops the table: it
creates it when missing, then writes only the saved items that differ from
what is there and deletes the items the state does not hold. The same files
load on moto and on DynamoDB Local, whichever engine saved them.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from ..config import Endpoints
from ..console import progress
from ..ddb.schema import describe, wait_until_active
from ..ddb.table import create_arguments_of
from ..ddb.writer import PROGRESS_THRESHOLD, write_requests
from ..errors import ConfigError, aws_errors
from .items import digest_of, from_json_item, item_line, item_of_line, key_of


@dataclass(frozen=True)
class SavedTable:
    items: int
    checksums: dict[str, str]  # file name -> sha256 of its bytes


@dataclass(frozen=True)
class TableLoad:
    """What loading a table changed: items written (new or different), deleted, left as they were."""

    written: int
    deleted: int
    unchanged: int
    created: bool

    def describe(self, table: str) -> str:
        made = "created, " if self.created else ""
        return (f"table {table}: {made}{self.written} items written, {self.deleted} deleted, "
                f"{self.unchanged} unchanged")


# GetRecords' largest page: a shorter one means the shard is read to its end.
STREAM_PAGE = 1000


def shape_file(folder: Path, table: str) -> Path:
    return folder / f"{table}.json"


def items_file(folder: Path, table: str) -> Path:
    return folder / f"{table}.jsonl"


def save_table(endpoints: Endpoints, table: str, folder: Path) -> SavedTable | None:
    """Write the table's shape and items into ``folder``; None when there is no such table."""
    client = endpoints.client("dynamodb")
    with aws_errors(f"saving table {table}"):
        description = describe(client, table)
        if description is None:
            return None
        folder.mkdir(parents=True, exist_ok=True)
        shape = json.dumps(create_arguments_of(description), indent=1, sort_keys=True) + "\n"
        shape_file(folder, table).write_text(shape, encoding="utf-8")
        digest = hashlib.sha256()
        count = 0
        with items_file(folder, table).open("w", encoding="utf-8") as handle, \
                progress(description.get("ItemCount"), f"saving {table}", PROGRESS_THRESHOLD) as advance:
            for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
                lines = "".join(item_line(item) + "\n" for item in page["Items"])
                handle.write(lines)
                digest.update(lines.encode())
                count += len(page["Items"])
                advance(len(page["Items"]))
    return SavedTable(count, {shape_file(folder, table).name: hashlib.sha256(shape.encode()).hexdigest(),
                              items_file(folder, table).name: digest.hexdigest()})


def saved_shape(folder: Path, table: str) -> dict[str, Any]:
    return json.loads(shape_file(folder, table).read_text(encoding="utf-8"))


def load_table(endpoints: Endpoints, folder: Path, saved_name: str, table: str) -> TableLoad:
    """Make ``table`` hold exactly the items saved as ``saved_name`` in ``folder``, creating it when missing."""
    shape = saved_shape(folder, saved_name)
    key_names = [part["AttributeName"] for part in shape["KeySchema"]]
    client = endpoints.client("dynamodb")
    with aws_errors(f"loading table {table}"):
        description = describe(client, table)
        created = description is None
        if created:
            client.create_table(**{**shape, "TableName": table})
            wait_until_active(client, table)
        else:
            assert description is not None  # not created: it was described
            live_keys = [part["AttributeName"] for part in description["KeySchema"]]
            if live_keys != key_names:
                raise ConfigError(f"table {table} is keyed by {live_keys}, the saved one by {key_names}; "
                                  f"`invoke ddb.schema-load --recreate` rebuilds it, then load the state again")
        present = {} if created else _present(client, table, key_names)
        unchanged = 0

        def puts() -> Iterator[dict[str, Any]]:
            nonlocal unchanged
            for item in _saved_items(folder, saved_name):
                if not present:  # a new or empty table, or every item there seen: nothing to compare
                    yield {"PutRequest": {"Item": item}}
                    continue
                found = present.pop(key_of(item, key_names), None)
                if found is not None and found == _short_digest(item):
                    unchanged += 1
                    continue
                yield {"PutRequest": {"Item": item}}

        written = write_requests(client, table, puts(), None, description=f"loading {table}")
        deletes = ({"DeleteRequest": {"Key": _key_of_text(text, key_names)}} for text in present)
        deleted = write_requests(client, table, deletes, len(present), description=f"pruning {table}")
    return TableLoad(written, deleted, unchanged, created)


def _present(client: Any, table: str, key_names: list[str]) -> dict[str, bytes]:
    """Every item of the table: its key text -> a short digest of the item.

    Only the key's text and 16 bytes per item are held (not the items), so a
    table of 200,000 items costs tens of MB here, not hundreds.
    """
    present = {}
    for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            present[key_of(item, key_names)] = _short_digest(item)
    return present


def _short_digest(item: dict[str, Any]) -> bytes:
    return bytes.fromhex(digest_of(item))[:16]


def _key_of_text(text: str, key_names: list[str]) -> dict[str, Any]:
    """The key attributes ``key_of`` wrote as ``text``, in the wire form botocore takes."""
    return from_json_item(dict(zip(key_names, json.loads(text))))


def _saved_items(folder: Path, table: str) -> Iterator[dict[str, Any]]:
    with items_file(folder, table).open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield item_of_line(line)


# --- a pytest worker's table: reset through its stream ------------------------------


class TableChanges:
    """The keys written in a table since the last look, read from its stream (the table's spec gives it one).

    A scan to find what a test changed costs as much as the table is big; the
    stream names just the keys written, on every engine. Each shard's next
    iterator is kept, so a look is one GetRecords per shard; the shards are
    listed again when one closes (a split).
    """

    def __init__(self, endpoints: Endpoints, table: str) -> None:
        self._streams = endpoints.client("dynamodbstreams")
        with aws_errors(f"reading the stream of {table}"):
            arn = endpoints.client("dynamodb").describe_table(TableName=table)["Table"].get("LatestStreamArn")
        if not arn:
            raise ConfigError(f"table {table} has no stream; it cannot be reset by what changed")
        self._arn = arn
        self._after: dict[str, str] = {}
        self._iterators: dict[str, str | None] = {}  # None: a closed shard, read to its end
        self._list_shards = True
        self.keys()  # from now on

    def keys(self) -> list[dict[str, Any]]:
        """The key of every item written since the last call (each once)."""
        seen: dict[str, dict[str, Any]] = {}
        read: set[str] = set()
        with aws_errors("reading a table's stream"):
            while True:
                if self._list_shards:  # at first, and after a shard closed: its children hold the newer records
                    self._list_shards = False
                    self._add_new_shards()
                for shard_id, iterator in list(self._iterators.items()):
                    if iterator is not None and shard_id not in read:
                        self._read(shard_id, seen)
                        read.add(shard_id)
                if not self._list_shards:
                    break
        return list(seen.values())

    def _add_new_shards(self) -> None:
        shards = self._streams.describe_stream(StreamArn=self._arn)["StreamDescription"].get("Shards", [])
        for shard in shards:
            shard_id = shard["ShardId"]
            if shard_id not in self._iterators:
                after = self._after.get(shard_id)
                position = ({"ShardIteratorType": "AFTER_SEQUENCE_NUMBER", "SequenceNumber": after} if after
                            else {"ShardIteratorType": "TRIM_HORIZON"})
                self._iterators[shard_id] = self._streams.get_shard_iterator(
                    StreamArn=self._arn, ShardId=shard_id, **position).get("ShardIterator")

    def _read(self, shard_id: str, seen: dict[str, dict[str, Any]]) -> None:
        iterator = self._iterators[shard_id]
        while iterator:
            response = self._streams.get_records(ShardIterator=iterator, Limit=STREAM_PAGE)
            records = response.get("Records", [])
            for record in records:
                keys = record["dynamodb"]["Keys"]
                seen[key_of(keys, sorted(keys))] = keys
            if records:
                self._after[shard_id] = records[-1]["dynamodb"]["SequenceNumber"]
            iterator = response.get("NextShardIterator")
            self._iterators[shard_id] = iterator
            if iterator is None:
                self._list_shards = True
            if len(records) < STREAM_PAGE:
                return


def saved_items(folder: Path, table: str) -> dict[str, dict[str, Any]]:
    """The saved items by key text (``key_of`` with the saved key names)."""
    key_names = [part["AttributeName"] for part in saved_shape(folder, table)["KeySchema"]]
    return {key_of(item, key_names): item for item in _saved_items(folder, table)}


def undo_changes(endpoints: Endpoints, table: str, changes: TableChanges, saved: dict[str, dict[str, Any]],
                 key_names: list[str]) -> int:
    """Put back the saved item of every key written since the last look, or delete it if none was saved;
    the number of keys put back or deleted."""
    touched = changes.keys()
    if not touched:
        return 0
    requests = []
    for keys in touched:
        item = saved.get(key_of(keys, key_names))
        requests.append({"PutRequest": {"Item": item}} if item is not None else {"DeleteRequest": {"Key": keys}})
    client = endpoints.client("dynamodb")
    with aws_errors(f"resetting table {table}"):
        written = write_requests(client, table, requests, len(requests), workers=1)
    changes.keys()  # our own writes are not the next test's
    return written
