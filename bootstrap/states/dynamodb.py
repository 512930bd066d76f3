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
from .items import digest_of, from_json_item, item_line, key_of


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
            live_keys = [part["AttributeName"] for part in description["KeySchema"]]
            if live_keys != key_names:
                raise ConfigError(f"table {table} is keyed by {live_keys}, the saved one by {key_names}; "
                                  f"`invoke ddb.schema-load --recreate` rebuilds it, then load the state again")
        present = {} if created else _present(client, table, key_names)
        unchanged = 0

        def puts() -> Iterator[dict[str, Any]]:
            nonlocal unchanged
            for item in _saved_items(folder, saved_name):
                found = present.pop(key_of(item, key_names), None)
                if found is not None and found[0] == digest_of(item):
                    unchanged += 1
                    continue
                yield {"PutRequest": {"Item": item}}

        written = write_requests(client, table, puts(), None, description=f"loading {table}")
        deletes = [{"DeleteRequest": {"Key": key}} for _, key in present.values()]
        deleted = write_requests(client, table, deletes, len(deletes), description=f"pruning {table}")
    return TableLoad(written, deleted, unchanged, created)


def _present(client: Any, table: str, key_names: list[str]) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every item of the table: its key text -> (digest of the item, its key attributes)."""
    present = {}
    for page in client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True):
        for item in page["Items"]:
            present[key_of(item, key_names)] = (digest_of(item), {name: item[name] for name in key_names})
    return present


def _saved_items(folder: Path, table: str) -> Iterator[dict[str, Any]]:
    with items_file(folder, table).open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                yield from_json_item(json.loads(line)["Item"])
