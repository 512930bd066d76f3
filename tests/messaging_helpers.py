"""What the messaging and stream-worker tests share: three users, a clock inside this year, the contract's table."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta, timezone
from typing import Iterator

from bootstrap.config import Endpoints
from bootstrap.ddb.table import TableSpec, UserRef, from_attributes
from bootstrap.messaging import Messages

ALICE = UserRef("11111111-1111-4111-8111-111111111111", "alice", "Alice A")
BOB = UserRef("22222222-2222-4222-8222-222222222222", "bob", "Bob B")
CAROL = UserRef("33333333-3333-4333-8333-333333333333", "carol", "Carol C")
# Inside the current year, so A and B (which filter on it) see everything written here.
T0 = datetime(datetime.now(timezone.utc).year, 3, 1, 12, 0, tzinfo=timezone.utc)


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


@contextlib.contextmanager
def contract_table(endpoints: Endpoints, table_name: str) -> Iterator[str]:
    """The contract's table (keys, GSI, stream with new and old images), there while the block runs."""
    client = endpoints.client("dynamodb")
    client.create_table(**TableSpec(table_name, billing_mode="PAY_PER_REQUEST").create_arguments())
    try:
        yield table_name
    finally:
        client.delete_table(TableName=table_name)


def scan(messages: Messages) -> list[dict[str, str]]:
    items = messages.client.scan(TableName=messages.table_name)["Items"]
    return sorted((from_attributes(item) for item in items), key=lambda item: (item["pk"], item["sk"]))
