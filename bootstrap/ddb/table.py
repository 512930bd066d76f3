"""The table contract: the one description of ``cruddur-messages`` (docs/CONTRACT.md, "DynamoDB").

Everything that names the table, its keys, the key formats, the GSI that
pattern E needs, the stream, or the attributes of the two kinds of item reads
them here: schema loading and drift planning, seeding, the access patterns in
``bootstrap.messaging``, ``bootstrap.verify``, the saved states and the stream
worker's deployment.

``TableSpec.create_arguments`` builds CreateTable's arguments from the spec;
``create_arguments_of`` builds them back from any table's DescribeTable result
(a saved state, and moto's data kept across down/up, rebuild tables with it,
not only ours).

Imports nothing but the standard library: ``bootstrap.config`` takes the
default table name from here, and the stream Lambda's zip carries this module.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Mapping, Protocol, Sequence

DEFAULT_TABLE_NAME = "cruddur-messages"
PARTITION_KEY = "pk"
SORT_KEY = "sk"
INDEX_NAME = "message-group-sk-index"
INDEX_PARTITION_KEY = "message_group_uuid"
STREAM_VIEW_TYPE = "NEW_AND_OLD_IMAGES"
# The original week-5 notes provision 5/5 for the table and the index.
PROVISIONED_UNITS = 5

MESSAGE_PREFIX = "MSG#"
GROUP_PREFIX = "GRP#"
# Beside the keys, both kinds of item carry a text and a user: the sender, or the OTHER member.
TEXT = "message"
MESSAGE_UUID = "message_uuid"
USER_UUID = "user_uuid"
USER_HANDLE = "user_handle"
USER_DISPLAY_NAME = "user_display_name"
_TEXT_AND_USER = (TEXT, USER_UUID, USER_DISPLAY_NAME, USER_HANDLE)
MESSAGE_ATTRIBUTES = frozenset({PARTITION_KEY, SORT_KEY, MESSAGE_UUID, *_TEXT_AND_USER})
GROUP_ATTRIBUTES = frozenset({PARTITION_KEY, SORT_KEY, INDEX_PARTITION_KEY, *_TEXT_AND_USER})


# --- keys and items ------------------------------------------------------------------


@dataclass(frozen=True)
class UserRef:
    """A user as the message items name them."""

    uuid: str
    handle: str
    display_name: str


def message_pk(group_uuid: str) -> str:
    return f"{MESSAGE_PREFIX}{group_uuid}"


def group_pk(user_uuid: str) -> str:
    return f"{GROUP_PREFIX}{user_uuid}"


def format_time(moment: datetime) -> str:
    """``moment`` in UTC as ``2026-11-23T17:34:26.000000+00:00``: the sort key of both kinds of item.

    The width never varies (``isoformat`` drops zero microseconds, so we don't
    use it), which makes string order equal time order for sort keys.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("format_time needs a timezone-aware datetime; naive times are ambiguous")
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f+00:00")


def message_item(group_uuid: str, message_uuid: str, sender: UserRef, text: str, created_at: str) -> dict[str, str]:
    """A message of ``group_uuid``, sent by ``sender`` at ``created_at``."""
    return {
        PARTITION_KEY: message_pk(group_uuid),
        SORT_KEY: created_at,
        MESSAGE_UUID: message_uuid,
        **_text_and_user(text, sender),
    }


def group_item(owner: UserRef, other: UserRef, group_uuid: str, last_message: str, last_at: str) -> dict[str, str]:
    """``owner``'s entry for the group: it names the OTHER member and the last message."""
    return {
        PARTITION_KEY: group_pk(owner.uuid),
        SORT_KEY: last_at,
        INDEX_PARTITION_KEY: group_uuid,
        **_text_and_user(last_message, other),
    }


def _text_and_user(text: str, user: UserRef) -> dict[str, str]:
    return dict(zip(_TEXT_AND_USER, (text, user.uuid, user.display_name, user.handle)))


def to_attributes(item: Mapping[str, str]) -> dict[str, dict[str, str]]:
    """``{"pk": "x"}`` as the low-level client wants it: ``{"pk": {"S": "x"}}``."""
    return {name: {"S": value} for name, value in item.items()}


def from_attributes(attributes: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """The inverse of ``to_attributes``; every attribute of the contract is a string."""
    item: dict[str, str] = {}
    for name, value in attributes.items():
        if "S" not in value:
            raise ValueError(f"attribute {name!r} is {sorted(value)}, not a string (S)")
        item[name] = value["S"]
    return item


def plain_item(attributes: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """An item for display, whatever it holds: strings and numbers as text, anything else as JSON.

    Unlike ``from_attributes`` it never refuses an item: scans and the seed's
    reads also meet items the app wrote.
    """
    plain = {}
    for name, value in attributes.items():
        kind, content = next(iter(value.items()))
        plain[name] = content if kind in ("S", "N") else json.dumps(content, default=str)
    return plain


def item_shape_problem(item: Mapping[str, Mapping[str, Any]]) -> str | None:
    """Why an item (low-level form) is of neither contract shape, or None when it is fine."""
    pk = item.get(PARTITION_KEY, {}).get("S", "")
    expected = (MESSAGE_ATTRIBUTES if pk.startswith(MESSAGE_PREFIX)
                else GROUP_ATTRIBUTES if pk.startswith(GROUP_PREFIX) else None)
    if expected is None:
        return f"{pk or '<no pk>'}: pk is neither {MESSAGE_PREFIX} nor {GROUP_PREFIX}"
    if set(item) != expected:
        return f"{pk}/{item.get(SORT_KEY, {}).get('S')}: attributes {sorted(set(item) ^ expected)} differ"
    if any(set(value) != {"S"} for value in item.values()):
        return f"{pk}: an attribute is not a string"
    return None


# --- the table -----------------------------------------------------------------------


@dataclass(frozen=True)
class KeyAttribute:
    name: str
    type: str = "S"


@dataclass(frozen=True)
class IndexSpec:
    name: str
    partition_key: KeyAttribute
    sort_key: KeyAttribute
    projection: str = "ALL"


class TableSettings(Protocol):
    """What the spec reads from the settings (``bootstrap.config.Settings``, which imports this module).

    Read-only properties, so that a frozen dataclass's fields match.
    """

    @property
    def table_name(self) -> str: ...

    @property
    def billing_mode(self) -> str: ...


@dataclass(frozen=True)
class TableSpec:
    """The messages table as the contract defines it; every task and test builds the table from this."""

    name: str
    partition_key: KeyAttribute = KeyAttribute(PARTITION_KEY)
    sort_key: KeyAttribute = KeyAttribute(SORT_KEY)
    index: IndexSpec = IndexSpec(INDEX_NAME, KeyAttribute(INDEX_PARTITION_KEY), KeyAttribute(SORT_KEY))
    stream_view_type: str = STREAM_VIEW_TYPE
    billing_mode: str = "PROVISIONED"
    read_capacity: int = PROVISIONED_UNITS
    write_capacity: int = PROVISIONED_UNITS

    @property
    def gsi_name(self) -> str:
        return self.index.name

    @property
    def is_provisioned(self) -> bool:
        return self.billing_mode == "PROVISIONED"

    def attribute_definitions(self) -> list[dict[str, str]]:
        keys = (self.partition_key, self.sort_key, self.index.partition_key, self.index.sort_key)
        types = {key.name: key.type for key in keys}
        return [{"AttributeName": name, "AttributeType": kind} for name, kind in types.items()]

    def attribute_types(self) -> dict[str, str]:
        return {d["AttributeName"]: d["AttributeType"] for d in self.attribute_definitions()}

    def key_schema(self) -> list[dict[str, str]]:
        return key_schema(self.partition_key.name, self.sort_key.name)

    def throughput(self) -> dict[str, int]:
        return _throughput(self.read_capacity, self.write_capacity)

    def index_definition(self) -> dict[str, Any]:
        return _index(self.index.name, key_schema(self.index.partition_key.name, self.index.sort_key.name),
                      {"ProjectionType": self.index.projection}, self.throughput() if self.is_provisioned else None)

    def stream_specification(self) -> dict[str, Any]:
        return _stream(self.stream_view_type)

    def create_arguments(self) -> dict[str, Any]:
        """The keyword arguments of CreateTable."""
        return _create_arguments(self.name, self.attribute_definitions(), self.key_schema(), self.billing_mode,
                                 self.throughput() if self.is_provisioned else None,
                                 [self.index_definition()], [], self.stream_view_type)


def table_spec(settings: TableSettings) -> TableSpec:
    return TableSpec(name=settings.table_name, billing_mode=settings.billing_mode)


def key_schema(partition: str, sort: str) -> list[dict[str, str]]:
    return [{"AttributeName": partition, "KeyType": "HASH"}, {"AttributeName": sort, "KeyType": "RANGE"}]


def create_arguments_of(description: Mapping[str, Any]) -> dict[str, Any]:
    """CreateTable arguments that rebuild any table from its DescribeTable "Table": keys, indexes, billing, stream.

    The reverse of ``TableSpec.create_arguments`` for our table, and the same for
    any other: local secondary indexes too, and no read-only field
    (statuses, sizes, ``NumberOfDecreasesToday``) that CreateTable rejects.
    """
    billing = (description.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
    provisioned = billing == "PROVISIONED"

    def described_throughput(part: Mapping[str, Any]) -> dict[str, int] | None:
        if not provisioned:
            return None
        numbers = part.get("ProvisionedThroughput") or {}
        return _throughput(int(numbers.get("ReadCapacityUnits") or 1), int(numbers.get("WriteCapacityUnits") or 1))

    def index(described: Mapping[str, Any], with_throughput: bool) -> dict[str, Any]:
        projection = {"ProjectionType": described["Projection"]["ProjectionType"]}
        if described["Projection"].get("NonKeyAttributes"):
            projection["NonKeyAttributes"] = list(described["Projection"]["NonKeyAttributes"])
        throughput = described_throughput(described) if with_throughput else None
        return _index(described["IndexName"], [dict(k) for k in described["KeySchema"]], projection, throughput)

    stream = description.get("StreamSpecification") or {}
    return _create_arguments(
        description["TableName"],
        [dict(a) for a in description["AttributeDefinitions"]],
        [dict(k) for k in description["KeySchema"]],
        billing,
        described_throughput(description),
        [index(i, True) for i in description.get("GlobalSecondaryIndexes") or ()],
        [index(i, False) for i in description.get("LocalSecondaryIndexes") or ()],
        stream["StreamViewType"] if stream.get("StreamEnabled") else None,
    )


def _create_arguments(name: str, attributes: list[dict[str, str]], keys: list[dict[str, str]], billing: str,
                      throughput: dict[str, int] | None, global_indexes: Sequence[dict[str, Any]],
                      local_indexes: Sequence[dict[str, Any]], stream_view_type: str | None) -> dict[str, Any]:
    arguments: dict[str, Any] = {"TableName": name, "AttributeDefinitions": attributes, "KeySchema": keys,
                                 "BillingMode": billing}
    if throughput is not None:
        arguments["ProvisionedThroughput"] = throughput
    if global_indexes:
        arguments["GlobalSecondaryIndexes"] = list(global_indexes)
    if local_indexes:
        arguments["LocalSecondaryIndexes"] = list(local_indexes)
    if stream_view_type is not None:
        arguments["StreamSpecification"] = _stream(stream_view_type)
    return arguments


def _index(name: str, keys: list[dict[str, str]], projection: dict[str, Any],
           throughput: dict[str, int] | None) -> dict[str, Any]:
    definition: dict[str, Any] = {"IndexName": name, "KeySchema": keys, "Projection": projection}
    if throughput is not None:
        definition["ProvisionedThroughput"] = throughput
    return definition


def _throughput(read: int, write: int) -> dict[str, int]:
    return {"ReadCapacityUnits": read, "WriteCapacityUnits": write}


def _stream(view_type: str) -> dict[str, Any]:
    return {"StreamEnabled": True, "StreamViewType": view_type}
