"""The messaging access patterns A-E of the Cruddur app on the ``cruddur-messages`` table.

The item shapes, keys and key formats are the table contract's
(``bootstrap.ddb.table``): a message item under ``MSG#{group}``, and one group
item per member under ``GRP#{member}`` that carries the other member and the
group's last message. Sort keys are creation times written by ``format_time``
(fixed width, UTC), so lexical order is time order, which patterns A, B and E
rely on.

Assumes the table (key schema, the GSI, a stream with new images) exists; it is
created by ``bootstrap.ddb.schema``. Everything here talks to the low-level
boto3 DynamoDB client it is given. This module is also the stream Lambda's
handler (``lambda_handler``): its top-level imports are what the deployed zip
carries, so they stay within the standard library and this project.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Iterable, Mapping

from .config import Endpoints
from .ddb.table import (
    DEFAULT_TABLE_NAME,
    GROUP_PREFIX,
    INDEX_NAME,
    INDEX_PARTITION_KEY,
    MESSAGE_PREFIX,
    UserRef,
    format_time,
    from_attributes,
    group_item,
    group_pk,
    message_item,
    message_pk,
    to_attributes,
)
from .errors import BootstrapError, InputError, ServiceError
from .steps import Action, StepResult

log = logging.getLogger(__name__)

MAX_TEXT_LENGTH = 1024
PAGE_SIZE = 20
# A conflicting replacement is re-read and re-planned; the GSI is eventually
# consistent, so a second read can still be stale right after another writer.
# The loop is written out (``_move_group``) rather than a tenacity Retrying:
# this module runs as the stream Lambda, whose zip carries only our modules
# and whose runtime provides boto3 but not tenacity.
REPLACE_ATTEMPTS = 3
REPLACE_BACKOFF = 0.2


def validate_text(text: str) -> str:
    """``text`` unchanged if it is a sendable message, else InputError."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("message text is empty")
    if len(text) > MAX_TEXT_LENGTH:
        raise InputError(f"message text has {len(text)} characters; the limit is {MAX_TEXT_LENGTH}")
    return text


# --- pages and cursors ---------------------------------------------------------------


@dataclass(frozen=True)
class Page:
    """One page of items in display order; ``cursor`` fetches the next (older) page, None at the end."""

    items: list[dict[str, str]]
    cursor: str | None = None


def encode_cursor(last_evaluated_key: Mapping[str, Mapping[str, str]] | None) -> str | None:
    """An opaque, URL-safe token for DynamoDB's ``LastEvaluatedKey``."""
    if not last_evaluated_key:
        return None
    raw = json.dumps(from_attributes(last_evaluated_key), sort_keys=True, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_cursor(cursor: str, expected_pk: str) -> dict[str, dict[str, str]]:
    """The ``ExclusiveStartKey`` of ``cursor``; InputError unless it is a cursor of ``expected_pk``."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = json.loads(raw)
    except (binascii.Error, ValueError):
        raise InputError("invalid page cursor: not a cursor this tool returned") from None
    if (
        not isinstance(key, dict)
        or set(key) != {"pk", "sk"}
        or not all(isinstance(value, str) for value in key.values())
        or key["pk"] != expected_pk
    ):
        raise InputError("invalid page cursor: it belongs to another list or was altered")
    return to_attributes(key)


def year_prefix(now: datetime | None = None) -> str:
    """The sort-key prefix the app filters A and B with: the current (UTC) year."""
    return str((now or datetime.now(timezone.utc)).astimezone(timezone.utc).year)


# --- stream planning (pure) ----------------------------------------------------------


@dataclass(frozen=True)
class NewMessage:
    """What a stream INSERT of a message item means for its group."""

    group_uuid: str
    sk: str
    text: str


@dataclass(frozen=True)
class StreamPlan:
    """The newest new message per group in a batch, and how many records need nothing."""

    latest: dict[str, NewMessage] = field(default_factory=dict)
    superseded: int = 0
    ignored: int = 0


@dataclass(frozen=True)
class Replacement:
    """Replace group item ``old`` by ``new`` (same item, later ``sk``, new last message)."""

    old: dict[str, str]
    new: dict[str, str]


@dataclass(frozen=True)
class StreamResult:
    """``applied``: records whose message became its group's last; ``skipped``: all other records."""

    applied: int = 0
    skipped: int = 0

    def __add__(self, other: "StreamResult") -> "StreamResult":
        return StreamResult(self.applied + other.applied, self.skipped + other.skipped)


def new_message_of(record: Mapping[str, Any]) -> NewMessage | None:
    """The message a stream record inserted, or None when the record is anything else."""
    if record.get("eventName") != "INSERT":
        return None
    change = record.get("dynamodb") or {}
    pk = (change.get("Keys") or {}).get("pk", {}).get("S", "")
    if not pk.startswith(MESSAGE_PREFIX):
        return None
    image = change.get("NewImage")
    if not image:
        log.warning("stream record for %s has no NewImage; the stream must carry new images", pk)
        return None
    item = from_attributes(image)
    return NewMessage(pk[len(MESSAGE_PREFIX):], item["sk"], item.get("message", ""))


def plan_stream_batch(records: Iterable[Mapping[str, Any]]) -> StreamPlan:
    """Keep, per group, only the newest inserted message: older ones of the same batch change nothing."""
    latest: dict[str, NewMessage] = {}
    superseded = ignored = 0
    for record in records:
        message = new_message_of(record)
        if message is None:
            ignored += 1
            continue
        current = latest.get(message.group_uuid)
        if current is not None:
            superseded += 1
        if current is None or message.sk > current.sk:
            latest[message.group_uuid] = message
    return StreamPlan(latest, superseded, ignored)


def plan_replacements(group_items: Iterable[Mapping[str, str]], message: NewMessage) -> list[Replacement]:
    """The group items that ``message`` moves: only those older than it, so replays and late records don't regress."""
    return [
        Replacement(dict(item), {**item, "sk": message.sk, "message": message.text})
        for item in group_items
        if item.get(INDEX_PARTITION_KEY) == message.group_uuid and message.sk > item["sk"]
    ]


# --- the table -----------------------------------------------------------------------


class Messages:
    """Patterns A-E on one table through a low-level boto3 DynamoDB client."""

    def __init__(self, client: Any, table_name: str) -> None:
        self.client = client
        self.table_name = table_name

    def list_messages(
        self, group_uuid: str, limit: int = PAGE_SIZE, cursor: str | None = None, now: datetime | None = None
    ) -> Page:
        """Pattern A: the newest ``limit`` messages of this year before ``cursor``, shown oldest first."""
        page = self._query_year(message_pk(group_uuid), limit, cursor, now)
        return Page(list(reversed(page.items)), page.cursor)

    def list_message_groups(
        self, user_uuid: str, limit: int = PAGE_SIZE, cursor: str | None = None, now: datetime | None = None
    ) -> Page:
        """Pattern B: the user's groups with a message this year, the most recently active first."""
        return self._query_year(group_pk(user_uuid), limit, cursor, now)

    def create_message(self, group_uuid: str, sender: UserRef, text: str, now: datetime | None = None) -> dict[str, str]:
        """Pattern C: put one message item; the stream consumer (E) then moves the group items."""
        item = message_item(group_uuid, str(uuid.uuid4()), sender, validate_text(text), _created_at(now))
        self._write([self._put(item)], f"message in group {group_uuid}")
        return item

    def create_message_group(
        self, sender: UserRef, receiver: UserRef, text: str, now: datetime | None = None
    ) -> tuple[str, dict[str, str]]:
        """Pattern D: both members' group items and the first message in one transaction: all or nothing."""
        validate_text(text)
        if sender.uuid == receiver.uuid:
            raise InputError(f"{sender.handle} cannot start a conversation with themselves")
        group_uuid, created_at = str(uuid.uuid4()), _created_at(now)
        message = message_item(group_uuid, str(uuid.uuid4()), sender, text, created_at)
        items = [
            group_item(sender, receiver, group_uuid, text, created_at),
            group_item(receiver, sender, group_uuid, text, created_at),
            message,
        ]
        self._write([self._put(item) for item in items], f"group {group_uuid}")
        return group_uuid, message

    def apply_stream_records(self, records: Iterable[Mapping[str, Any]]) -> StreamResult:
        """Pattern E: move each group to its newest inserted message; safe to replay, in any order.

        Unlike the original Lambda, every record of the batch counts, and each
        group item is replaced by a conditional delete+put transaction, so a
        concurrent change is re-read instead of overwritten.
        """
        plan = plan_stream_batch(records)
        applied = 0
        for message in plan.latest.values():
            applied += self._move_group(message)
        skipped = plan.superseded + plan.ignored + len(plan.latest) - applied
        return StreamResult(applied, skipped)

    def group_items(self, group_uuid: str) -> list[dict[str, str]]:
        """The group's items (one per member) through the GSI; eventually consistent."""
        response = self.client.query(
            TableName=self.table_name,
            IndexName=INDEX_NAME,
            KeyConditionExpression=f"{INDEX_PARTITION_KEY} = :group",
            ExpressionAttributeValues={":group": {"S": group_uuid}},
        )
        return [from_attributes(item) for item in response.get("Items", [])]

    def group_members(self, group_uuid: str) -> set[str]:
        """The user uuids of the group's members (each owns one group item)."""
        return {item["pk"][len(GROUP_PREFIX):] for item in self.group_items(group_uuid)}

    def _query_year(self, pk: str, limit: int, cursor: str | None, now: datetime | None) -> Page:
        if limit < 1:
            raise InputError(f"page size must be at least 1, not {limit}")
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :year)",
            "ExpressionAttributeValues": {":pk": {"S": pk}, ":year": {"S": year_prefix(now)}},
            "ScanIndexForward": False,
            "Limit": limit,
        }
        if cursor:
            request["ExclusiveStartKey"] = decode_cursor(cursor, pk)
        response = self.client.query(**request)
        items = [from_attributes(item) for item in response.get("Items", [])]
        return Page(items, encode_cursor(response.get("LastEvaluatedKey")))

    def _move_group(self, message: NewMessage) -> bool:
        """Replace the group's items that are older than ``message``; True if any moved."""
        moved = False
        for attempt in range(REPLACE_ATTEMPTS):
            time.sleep(REPLACE_BACKOFF * attempt)
            replacements = plan_replacements(self.group_items(message.group_uuid), message)
            outcomes = [self._replace(replacement) for replacement in replacements]
            moved = moved or any(outcomes)
            if all(outcomes):
                return moved
        log.warning(
            "group %s: could not move to message at %s after %d attempts (a conflicting item keeps changing)",
            message.group_uuid, message.sk, REPLACE_ATTEMPTS,
        )
        return moved

    def _replace(self, replacement: Replacement) -> bool:
        """Delete the old group item and put the new one atomically; False if either changed meanwhile."""
        from botocore.exceptions import ClientError

        old = replacement.old
        delete = {
            "Delete": {
                "TableName": self.table_name,
                "Key": to_attributes({"pk": old["pk"], "sk": old["sk"]}),
                "ConditionExpression": "attribute_exists(pk) AND #message = :message",
                "ExpressionAttributeNames": {"#message": "message"},
                "ExpressionAttributeValues": {":message": {"S": old.get("message", "")}},
            }
        }
        try:
            self.client.transact_write_items(TransactItems=[delete, self._put(replacement.new)])
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "TransactionCanceledException":
                raise
            log.debug("group item %s/%s changed meanwhile: %s", old["pk"], old["sk"], exc)
            return False
        return True

    def _put(self, item: Mapping[str, str]) -> dict[str, Any]:
        """A Put that never overwrites: a second item at the same key is a collision, not an update."""
        return {"Put": {"TableName": self.table_name, "Item": to_attributes(item),
                        "ConditionExpression": "attribute_not_exists(pk)"}}

    def _write(self, operations: list[dict[str, Any]], what: str) -> None:
        """One PutItem, or a transaction for several, each refusing to overwrite an existing item."""
        from botocore.exceptions import ClientError

        try:
            if len(operations) == 1:
                self.client.put_item(**operations[0]["Put"])
            else:
                self.client.transact_write_items(TransactItems=operations)
        except ClientError as exc:
            raise _write_error(exc, self.table_name, what) from None


def _write_error(exc: Any, table_name: str, what: str) -> Exception:
    """Our error for a refused write, or ``exc`` itself when it is not one we can explain."""
    error = exc.response.get("Error", {})
    reasons = {reason.get("Code") for reason in exc.response.get("CancellationReasons", [])}
    if error.get("Code") == "ConditionalCheckFailedException" or "ConditionalCheckFailed" in reasons:
        return BootstrapError(f"nothing written: an item of the {what} already exists at that time; try again")
    if error.get("Code") == "ResourceNotFoundException":
        return BootstrapError(f"table {table_name} does not exist; create it with `invoke ddb.schema-load`")
    if error.get("Code") == "TransactionCanceledException":
        return ServiceError(f"nothing written for the {what}: transaction cancelled ({', '.join(sorted(map(str, reasons)))})")
    return exc


def _created_at(now: datetime | None) -> str:
    return format_time(now or datetime.now(timezone.utc))


# --- the tasks' and the Lambda's entry points ---------------------------------------------


def send_message(endpoints: Endpoints, table_name: str, group_uuid: str, handle: str, text: str) -> StepResult:
    """C for a user named by handle (looked up in Postgres), who must be a member of the group."""
    validate_text(text)
    group_uuid = _checked_uuid(group_uuid, "--group")
    sender = users_by_handle(endpoints, [handle])[handle]
    messages = Messages(endpoints.client("dynamodb"), table_name)
    if sender.uuid not in messages.group_members(group_uuid):
        raise InputError(f"{handle} is not a member of message group {group_uuid} (or the group does not exist)")
    item = messages.create_message(group_uuid, sender, text)
    return StepResult("ddb.create-message", Action.CREATED, f"message {item['message_uuid']} at {item['sk']}", writes=1)


def start_conversation(endpoints: Endpoints, table_name: str, from_handle: str, to_handle: str, text: str) -> StepResult:
    """D between two users named by handle (looked up in Postgres)."""
    validate_text(text)
    users = users_by_handle(endpoints, [from_handle, to_handle])
    messages = Messages(endpoints.client("dynamodb"), table_name)
    group_uuid, item = messages.create_message_group(users[from_handle], users[to_handle], text)
    return StepResult("ddb.create-group", Action.CREATED, f"group {group_uuid}, first message at {item['sk']}", writes=3)


def users_by_handle(endpoints: Endpoints, handles: Iterable[str]) -> dict[str, UserRef]:
    """The named users from the app database; InputError naming any handle that is not there."""
    from .pg.users import fetch_users, unknown_handles

    rows = fetch_users(endpoints.postgres_url)
    wanted = list(dict.fromkeys(handles))
    missing = [handle for handle in wanted if handle not in rows]
    if missing:
        raise InputError(unknown_handles(missing, rows))
    return {handle: rows[handle].as_ref() for handle in wanted}


def _checked_uuid(value: str, flag: str) -> str:
    try:
        return str(uuid.UUID(value))
    except (ValueError, AttributeError, TypeError):
        raise InputError(f"{flag}: {value!r} is not a UUID") from None


def lambda_handler(event: Mapping[str, Any], context: Any) -> dict[str, int]:
    """Pattern E as a DynamoDB Streams Lambda: TABLE_NAME (default cruddur-messages), AWS_ENDPOINT_URL if set."""
    endpoints = Endpoints(
        postgres_url="",
        aws_endpoint_url=os.environ.get("AWS_ENDPOINT_URL") or None,
        region=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1",
    )
    messages = Messages(endpoints.client("dynamodb"), os.environ.get("TABLE_NAME") or DEFAULT_TABLE_NAME)
    result = messages.apply_stream_records(event.get("Records", []))
    log.info("stream batch: applied %d, skipped %d", result.applied, result.skipped)
    return {"applied": result.applied, "skipped": result.skipped}
