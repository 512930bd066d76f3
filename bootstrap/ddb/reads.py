"""Reading the table for people: scans, patterns A and B with the capacity they consume, and the users they name.

What the ``ddb.scan``, ``ddb.get-conversation`` and ``ddb.list-conversations``
tasks read; ``bootstrap.console.tables`` prints it. The access patterns
themselves are ``bootstrap.messaging.Messages``; here they run through a client
stand-in that adds up the read capacity each query reports. Assumes the
low-level boto3 client from ``Endpoints.client``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterator

from ..config import Endpoints
from ..console import progress
from ..errors import InputError, aws_errors
from ..fixtures.model import Fixtures
from ..pg.users import find_users
from ..messaging import Messages
from .table import TableSpec, UserRef, plain_item
from .writer import PROGRESS_THRESHOLD


def scan_items(endpoints: Endpoints, table: str, limit: int | None = None,
               page_size: int | None = None) -> Iterator[dict[str, str]]:
    """Every item of ``table`` (at most ``limit``), following LastEvaluatedKey page after page."""
    client = endpoints.client("dynamodb")
    arguments: dict[str, Any] = {"TableName": table}
    if page_size:
        arguments["PaginationConfig"] = {"PageSize": page_size}
    count = 0
    with aws_errors(f"scanning table {table}"):
        estimate = item_count(client, table)
        total = min(estimate, limit) if estimate is not None and limit is not None else estimate
        with progress(total, f"scanning {table}", PROGRESS_THRESHOLD) as advance:
            for page in client.get_paginator("scan").paginate(**arguments):
                advance(len(page["Items"]))  # a page at a time: the rate is of reading, not of the caller's use
                for item in page["Items"]:
                    if limit is not None and count >= limit:
                        return
                    count += 1
                    yield plain_item(item)


def item_count(client: Any, table: str) -> int | None:
    """The table's item count as DescribeTable reports it (on AWS, refreshed every few hours), for progress.

    None when it cannot be read: no such table (the scan itself says so) or a role without DescribeTable.
    """
    from botocore.exceptions import ClientError

    try:
        return client.describe_table(TableName=table)["Table"].get("ItemCount")
    except ClientError:
        return None


@dataclass(frozen=True)
class Listing:
    """Items read by an access pattern, and the read capacity consumed when the endpoint reports it."""

    items: list[dict[str, str]]
    consumed_capacity: float | None = None
    cursor: Any = field(default=None, compare=False)


class _CapacityMeter:
    """A client stand-in that asks every query for its consumed capacity and adds it up."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.units: float | None = None

    def query(self, **arguments: Any) -> dict[str, Any]:
        arguments.setdefault("ReturnConsumedCapacity", "TOTAL")
        response = self._client.query(**arguments)
        consumed = response.get("ConsumedCapacity") or {}
        if "CapacityUnits" in consumed:
            self.units = (self.units or 0.0) + float(consumed["CapacityUnits"])
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def get_conversation(endpoints: Endpoints, spec: TableSpec, group_uuid: str, limit: int = 20) -> Listing:
    """Pattern A: the last ``limit`` messages of a group, oldest first."""
    meter = _CapacityMeter(endpoints.client("dynamodb"))
    with aws_errors(f"reading conversation {group_uuid}"):
        page = Messages(meter, spec.name).list_messages(group_uuid, limit=limit)
    return Listing(list(page.items), meter.units, page.cursor)


def list_conversations(endpoints: Endpoints, spec: TableSpec, user_uuid: str, limit: int = 20) -> Listing:
    """Pattern B: a user's message groups, newest first."""
    meter = _CapacityMeter(endpoints.client("dynamodb"))
    with aws_errors(f"listing the conversations of user {user_uuid}"):
        page = Messages(meter, spec.name).list_message_groups(user_uuid, limit=limit)
    return Listing(list(page.items), meter.units, page.cursor)


def find_user(endpoints: Endpoints, handle: str) -> UserRef:
    """The Postgres user with ``handle``, as the message items name users."""
    return find_users(endpoints.postgres_url, [handle], flag="--handle")[handle]



def first_group_uuid(fixtures: Fixtures) -> str:
    """The default conversation of ``ddb.get-conversation``: the first one in the fixtures."""
    if not fixtures.conversations:
        raise InputError("seeds/conversations.yaml has no conversations; pass --group")
    return fixtures.conversations[0].group_uuid


def first_user_handle(fixtures: Fixtures) -> str:
    if not fixtures.users:
        raise InputError("seeds/users.yaml has no users; pass --handle")
    return fixtures.users[0].handle
