"""A state's table on both engines: saved as shape + JSON lines, loaded back writing only what differs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bootstrap.config import Endpoints
from bootstrap.ddb.table import TableSpec
from bootstrap.errors import ConfigError
from bootstrap.states.dynamodb import items_file, load_table, save_table

pytestmark = pytest.mark.both_engines


def _item(n: int, text: str = "hi") -> dict:
    return {"pk": {"S": f"MSG#{n % 3}"}, "sk": {"S": f"2024-01-01T00:00:{n:02d}"}, "message": {"S": text},
            "blob": {"B": bytes([n, 255])}, "tags": {"SS": ["a", "b"]}}


def _scan(client, table: str) -> list[str]:
    pages = client.get_paginator("scan").paginate(TableName=table, ConsistentRead=True)
    return sorted(json.dumps({k: v for k, v in i.items() if k != "tags"}, sort_keys=True, default=str)
                  + str(sorted(i["tags"]["SS"])) for page in pages for i in page["Items"])


def test_a_saved_table_loads_back_exactly_and_only_differences_are_written(
        stack, table_name: str, tmp_path: Path) -> None:
    endpoints: Endpoints = stack.endpoints
    client = endpoints.client("dynamodb")
    client.create_table(**TableSpec(table_name).create_arguments())
    for n in range(30):
        client.put_item(TableName=table_name, Item=_item(n))
    saved = save_table(endpoints, table_name, tmp_path)
    assert saved is not None and saved.items == 30
    lines = items_file(tmp_path, table_name).read_text().splitlines()
    assert len(lines) == 30 and all(json.loads(line).keys() == {"Item"} for line in lines)
    expected = _scan(client, table_name)

    client.put_item(TableName=table_name, Item=_item(1, "changed"))
    client.delete_item(TableName=table_name, Key={"pk": _item(2)["pk"], "sk": _item(2)["sk"]})
    client.put_item(TableName=table_name, Item=_item(40))
    loaded = load_table(endpoints, tmp_path, table_name, table_name)
    assert (loaded.written, loaded.deleted, loaded.unchanged, loaded.created) == (2, 1, 28, False)
    assert _scan(client, table_name) == expected

    # Into a table that does not exist (another name, as a pytest worker's own): created with the saved shape.
    other = f"{table_name}-w1"
    loaded = load_table(endpoints, tmp_path, table_name, other)
    assert loaded.created and loaded.written == 30
    assert _scan(client, other) == expected
    description = client.describe_table(TableName=other)["Table"]
    assert description["StreamSpecification"]["StreamEnabled"] is True
    assert save_table(endpoints, f"{table_name}-missing", tmp_path / "none") is None


def test_a_table_keyed_otherwise_is_refused(stack, table_name: str, tmp_path: Path) -> None:
    client = stack.endpoints.client("dynamodb")
    client.create_table(**TableSpec(table_name).create_arguments())
    save_table(stack.endpoints, table_name, tmp_path)
    other = f"{table_name}-k"
    client.create_table(TableName=other, KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
                        BillingMode="PAY_PER_REQUEST")
    with pytest.raises(ConfigError, match="keyed by"):
        load_table(stack.endpoints, tmp_path, table_name, other)
