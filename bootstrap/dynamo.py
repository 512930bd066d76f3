"""The ``cruddur-messages`` DynamoDB table: its one spec, schema drift and repair, seeding, reading.

``TableSpec`` is the only description of the table (keys, the GSI that pattern
E needs, the stream, billing). ``plan_table`` compares it with what
``describe_table`` reports and says what to do; ``schema_load`` does it.
Seeding writes the fixture conversations (and optional synthetic ones) with
BatchWriteItem from several threads; item shapes come from
``bootstrap.messaging``, never from here.

Assumes the low-level boto3 client from ``Endpoints.client`` (thread-safe, so
the writer threads share it) and that every seeded id is a uuid5 from
``bootstrap.fixtures.model``: that is how pruning tells seeded items from items the
app created, which it never deletes. boto3, tenacity and rich are imported
inside functions.
"""

from __future__ import annotations

import itertools
import json
import logging
import queue
import re
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from enum import Enum
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, Mapping, Sequence

from .config import Endpoints, Settings
from .console import progress, say
from .errors import BootstrapError, DriftError, InputError, ServiceError, aws_errors
from .meta import DDB_SEED_EPOCH, DDB_SEED_LAYOUT, DDB_SEED_PENDING
from .steps import Action, StepResult

if TYPE_CHECKING:
    from .fixtures.model import ConversationFixture, Fixtures
    from .messaging import UserRef

log = logging.getLogger(__name__)

INDEX_NAME = "message-group-sk-index"
STREAM_VIEW_TYPE = "NEW_AND_OLD_IMAGES"
# The original week-5 notes provision 5/5 for the table and the index.
PROVISIONED_UNITS = 5
# Long enough for a GSI backfill on real AWS; moto is immediate.
TABLE_WAIT_SECONDS = 900.0

BATCH_SIZE = 25  # BatchWriteItem's limit
WRITER_THREADS = 4
# Reads and writes of more items than this show progress (done of total, rate, time left).
PROGRESS_THRESHOLD = 300
# Seeded conversations follow each other with an hour between them, so that
# pattern B (newest first) has a well-defined order.
GAP = timedelta(minutes=60)
# Seeded times must fall into one calendar year (patterns A and B filter on it).
MAX_SEED_SPAN = timedelta(days=300)

SYNTHETIC_PREFIX = "synth"


# --- the spec ---------------------------------------------------------------------


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


@dataclass(frozen=True)
class TableSpec:
    """The messages table as the contract defines it; every task and test builds the table from this."""

    name: str
    partition_key: KeyAttribute = KeyAttribute("pk")
    sort_key: KeyAttribute = KeyAttribute("sk")
    index: IndexSpec = IndexSpec(INDEX_NAME, KeyAttribute("message_group_uuid"), KeyAttribute("sk"))
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

    def throughput(self) -> dict[str, int]:
        return {"ReadCapacityUnits": self.read_capacity, "WriteCapacityUnits": self.write_capacity}

    def index_definition(self) -> dict[str, Any]:
        definition: dict[str, Any] = {
            "IndexName": self.index.name,
            "KeySchema": _key_schema(self.index.partition_key, self.index.sort_key),
            "Projection": {"ProjectionType": self.index.projection},
        }
        if self.is_provisioned:
            definition["ProvisionedThroughput"] = self.throughput()
        return definition

    def stream_specification(self) -> dict[str, Any]:
        return {"StreamEnabled": True, "StreamViewType": self.stream_view_type}

    def create_arguments(self) -> dict[str, Any]:
        """The keyword arguments of CreateTable."""
        arguments: dict[str, Any] = {
            "TableName": self.name,
            "AttributeDefinitions": self.attribute_definitions(),
            "KeySchema": _key_schema(self.partition_key, self.sort_key),
            "GlobalSecondaryIndexes": [self.index_definition()],
            "StreamSpecification": self.stream_specification(),
            "BillingMode": self.billing_mode,
        }
        if self.is_provisioned:
            arguments["ProvisionedThroughput"] = self.throughput()
        return arguments

    def update_arguments(self, action: TableAction) -> dict[str, Any]:
        """The keyword arguments of the UpdateTable call that performs one repair ``action``."""
        arguments: dict[str, Any] = {"TableName": self.name}
        if action.change is Change.CREATE_INDEX:
            # AWS wants the new index's key attributes defined; defining all of ours is always valid.
            arguments["AttributeDefinitions"] = self.attribute_definitions()
            arguments["GlobalSecondaryIndexUpdates"] = [{"Create": self.index_definition()}]
        elif action.change is Change.DELETE_INDEX:
            arguments["GlobalSecondaryIndexUpdates"] = [{"Delete": {"IndexName": self.index.name}}]
        elif action.change is Change.SET_BILLING:
            arguments["BillingMode"] = self.billing_mode
            if self.is_provisioned:
                # Switching to PROVISIONED needs capacity for the table and for every index that stays.
                arguments["ProvisionedThroughput"] = self.throughput()
                updates = [{"Update": {"IndexName": name, "ProvisionedThroughput": self.throughput()}}
                           for name in action.indexes]
                if updates:
                    arguments["GlobalSecondaryIndexUpdates"] = updates
        elif action.change is Change.DISABLE_STREAM:
            arguments["StreamSpecification"] = {"StreamEnabled": False}
        elif action.change is Change.ENABLE_STREAM:
            arguments["StreamSpecification"] = self.stream_specification()
        else:
            raise ValueError(f"{action.change.value} is not done with UpdateTable")
        return arguments


def table_spec(settings: Settings) -> TableSpec:
    return TableSpec(name=settings.table_name, billing_mode=settings.billing_mode)


def _key_schema(partition: KeyAttribute, sort: KeyAttribute) -> list[dict[str, str]]:
    return [{"AttributeName": partition.name, "KeyType": "HASH"}, {"AttributeName": sort.name, "KeyType": "RANGE"}]


# --- planning (pure) --------------------------------------------------------------


class Change(str, Enum):
    # Declaration order is the order in which repairs run: an index is dropped
    # before billing changes (PROVISIONED needs capacity for each remaining
    # index), and a stream must be disabled before it can be enabled with
    # another view type.
    DELETE_TABLE = "delete table"
    CREATE_TABLE = "create table"
    DELETE_INDEX = "delete index"
    SET_BILLING = "set billing mode"
    CREATE_INDEX = "create index"
    DISABLE_STREAM = "disable stream"
    ENABLE_STREAM = "enable stream"


_CHANGE_ORDER = {change: position for position, change in enumerate(Change)}


@dataclass(frozen=True)
class TableAction:
    change: Change
    indexes: tuple[str, ...] = ()  # SET_BILLING: the indexes that stay and need capacity too

    def __str__(self) -> str:
        return self.change.value


@dataclass(frozen=True)
class Difference:
    """One way the live table differs from the spec; no ``repairs`` means only recreating fixes it."""

    what: str
    expected: str
    found: str
    repairs: tuple[TableAction, ...] = ()

    def __str__(self) -> str:
        return f"{self.what}: expected {self.expected}, found {self.found}"


@dataclass(frozen=True)
class TablePlan:
    table: str
    differences: tuple[Difference, ...]
    actions: tuple[TableAction, ...]
    blocked: tuple[Difference, ...] = ()  # differences that need --recreate, which was not given

    @property
    def unchanged(self) -> bool:
        return not self.differences and not self.actions

    def describe(self) -> str:
        return "; ".join(str(difference) for difference in self.differences) or "none"


def plan_table(spec: TableSpec, description: Mapping[str, Any] | None, recreate: bool = False) -> TablePlan:
    """What to do to make the table described by ``description`` (DescribeTable's "Table") match ``spec``.

    None means the table does not exist. Differences DynamoDB can repair in
    place become UpdateTable actions; the rest need ``recreate`` (drop and
    create, losing every item) or end up in ``blocked``.
    """
    if description is None:
        return TablePlan(spec.name, (), (TableAction(Change.CREATE_TABLE),))
    differences = tuple(_differences(spec, description))
    unrepairable = tuple(difference for difference in differences if not difference.repairs)
    if unrepairable and recreate:
        actions = (TableAction(Change.DELETE_TABLE), TableAction(Change.CREATE_TABLE))
        return TablePlan(spec.name, differences, actions)
    if unrepairable:
        return TablePlan(spec.name, differences, (), blocked=unrepairable)
    repairs = [action for difference in differences for action in difference.repairs]
    return TablePlan(spec.name, differences, tuple(sorted(repairs, key=lambda a: _CHANGE_ORDER[a.change])))


def _differences(spec: TableSpec, description: Mapping[str, Any]) -> Iterator[Difference]:
    types = {d["AttributeName"]: d["AttributeType"] for d in description.get("AttributeDefinitions", [])}
    expected_keys = _describe_keys(_key_schema(spec.partition_key, spec.sort_key), _spec_types(spec))
    found_keys = _describe_keys(description.get("KeySchema", []), types)
    if found_keys != expected_keys:
        yield Difference("key schema", expected_keys, found_keys)

    indexes = {index["IndexName"]: index for index in description.get("GlobalSecondaryIndexes") or []}
    expected_index = _describe_index(spec.index_definition(), _spec_types(spec))
    found_index = _describe_index(indexes[spec.index.name], types) if spec.index.name in indexes else None
    if found_index is None:
        yield Difference(f"index {spec.index.name}", expected_index, "missing", (TableAction(Change.CREATE_INDEX),))
    elif found_index != expected_index:
        repairs = (TableAction(Change.DELETE_INDEX), TableAction(Change.CREATE_INDEX))
        yield Difference(f"index {spec.index.name}", expected_index, found_index, repairs)

    stream = description.get("StreamSpecification") or {}
    found_stream = stream.get("StreamViewType") if stream.get("StreamEnabled") else None
    if found_stream != spec.stream_view_type:
        repairs = (TableAction(Change.ENABLE_STREAM),)
        if found_stream is not None:
            repairs = (TableAction(Change.DISABLE_STREAM),) + repairs
        yield Difference("stream", f"enabled, {spec.stream_view_type}",
                         f"enabled, {found_stream}" if found_stream else "disabled", repairs)

    # Tables that were always provisioned carry no BillingModeSummary. Capacity
    # numbers are not compared: scaling them is an operational decision (and
    # auto scaling would fight us), the billing mode is not.
    billing = (description.get("BillingModeSummary") or {}).get("BillingMode", "PROVISIONED")
    if billing != spec.billing_mode:
        replaced = spec.index.name if found_index != expected_index else None
        staying = tuple(name for name in indexes if name != replaced)
        yield Difference("billing mode", spec.billing_mode, billing, (TableAction(Change.SET_BILLING, staying),))


def _spec_types(spec: TableSpec) -> dict[str, str]:
    return {d["AttributeName"]: d["AttributeType"] for d in spec.attribute_definitions()}


def _describe_keys(key_schema: Sequence[Mapping[str, str]], types: Mapping[str, str]) -> str:
    return ", ".join(f"{k['AttributeName']} ({types.get(k['AttributeName'], '?')}) {k['KeyType']}"
                     for k in key_schema) or "none"


def _describe_index(index: Mapping[str, Any], types: Mapping[str, str]) -> str:
    projection = index.get("Projection", {})
    text = f"{_describe_keys(index.get('KeySchema', []), types)}, projection {projection.get('ProjectionType')}"
    if projection.get("NonKeyAttributes"):
        text += f" {sorted(projection['NonKeyAttributes'])}"
    return text


# --- doing: schema-load, drop, list -----------------------------------------------


def schema_load(endpoints: Endpoints, spec: TableSpec, recreate: bool = False) -> StepResult:
    """Create the table, or bring it in line with ``spec``; DriftError when that needs ``recreate``."""
    client = endpoints.client("dynamodb")
    with aws_errors(f"loading the schema of table {spec.name}"):
        plan = plan_table(spec, _settled_description(client, spec.name), recreate)
        if plan.blocked:
            listed = "\n".join(f"  - {difference}" + ("" if difference.repairs else " (cannot change in place)")
                               for difference in plan.differences)
            raise DriftError(
                f"table {spec.name} differs from the spec and DynamoDB cannot change all of it in place:\n{listed}\n"
                "Re-run with --recreate to drop and recreate it (this deletes every item in it)."
            )
        for difference in plan.differences:
            say(f"  {spec.name}: {difference}")
        for action in plan.actions:
            log.debug("table %s: %s", spec.name, action)
            _apply(client, spec, action)
    return _schema_result(spec, plan)


def _schema_result(spec: TableSpec, plan: TablePlan) -> StepResult:
    step = "ddb.schema-load"
    if not plan.actions:
        return StepResult(step, Action.UNCHANGED, f"table {spec.name} matches the spec")
    if plan.differences and plan.actions[0].change is Change.DELETE_TABLE:
        return StepResult(step, Action.CREATED, f"table {spec.name} (dropped and recreated: {plan.describe()})",
                          writes=2)
    if plan.actions[0].change is Change.CREATE_TABLE:
        stream = f"stream {spec.stream_view_type}"
        return StepResult(step, Action.CREATED, f"table {spec.name} ({spec.billing_mode}, {stream})", writes=1)
    done = ", ".join(str(action) for action in plan.actions)
    return StepResult(step, Action.UPDATED, f"table {spec.name}: {done}", writes=len(plan.actions))


def _apply(client: Any, spec: TableSpec, action: TableAction) -> None:
    if action.change is Change.DELETE_TABLE:
        _delete_and_wait(client, spec.name)
    elif action.change is Change.CREATE_TABLE:
        client.create_table(**spec.create_arguments())
        _wait_until(client, spec.name, _is_settled_table, "ACTIVE")
    else:
        client.update_table(**spec.update_arguments(action))
        _wait_until(client, spec.name, _is_settled_table, "ACTIVE with every index ACTIVE")


def describe_table(endpoints: Endpoints, name: str) -> dict[str, Any] | None:
    """DescribeTable's "Table", or None when there is no such table."""
    with aws_errors(f"describing table {name}"):
        return _describe(endpoints.client("dynamodb"), name)


def _describe(client: Any, name: str) -> dict[str, Any] | None:
    try:
        return client.describe_table(TableName=name)["Table"]
    except client.exceptions.ResourceNotFoundException:
        return None


def _is_settled_table(description: Mapping[str, Any] | None) -> bool:
    if description is None:
        return False
    indexes = description.get("GlobalSecondaryIndexes") or []
    return description.get("TableStatus") == "ACTIVE" and all(i.get("IndexStatus") == "ACTIVE" for i in indexes)


def _settled_description(client: Any, name: str) -> dict[str, Any] | None:
    """The table's description once no create, update or delete is in progress; None if there is no table."""
    description = _describe(client, name)
    if description is None or _is_settled_table(description):
        return description
    if description.get("TableStatus") == "DELETING":
        _wait_until(client, name, lambda d: d is None, "deleted")
        return None
    return _wait_until(client, name, _is_settled_table, "ACTIVE with every index ACTIVE")


def _wait_until(client: Any, name: str, done: Callable[[dict[str, Any] | None], bool], what: str) -> Any:
    from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_exponential

    retrying = Retrying(stop=stop_after_delay(TABLE_WAIT_SECONDS), wait=wait_exponential(multiplier=0.1, max=5),
                        retry=retry_if_result(lambda description: not done(description)))
    try:
        return retrying(_describe, client, name)
    except RetryError as exc:
        last = exc.last_attempt.result()
        status = last.get("TableStatus") if last else "missing"
        raise ServiceError(f"table {name} was not {what} after {TABLE_WAIT_SECONDS:.0f}s (last status: {status})") \
            from None


def _delete_and_wait(client: Any, name: str) -> None:
    try:
        client.delete_table(TableName=name)
    except client.exceptions.ResourceNotFoundException:
        return
    _wait_until(client, name, lambda description: description is None, "deleted")


def drop_table(endpoints: Endpoints, name: str) -> StepResult:
    """Delete the table ``name`` and wait until it is gone; a missing table is not an error."""
    client = endpoints.client("dynamodb")
    with aws_errors(f"dropping table {name}"):
        if _settled_description(client, name) is None:
            return StepResult("ddb.drop", Action.UNCHANGED, f"table {name} does not exist")
        _delete_and_wait(client, name)
    return StepResult("ddb.drop", Action.REMOVED, f"table {name}", writes=1)


@dataclass(frozen=True)
class TableSummary:
    name: str
    status: str
    item_count: int  # DescribeTable's count: exact on moto, refreshed about every six hours on AWS


def list_tables(endpoints: Endpoints) -> list[TableSummary]:
    client = endpoints.client("dynamodb")
    summaries = []
    with aws_errors("listing tables"):
        for page in client.get_paginator("list_tables").paginate():
            for name in page["TableNames"]:
                description = _describe(client, name)
                if description is not None:
                    summaries.append(TableSummary(name, description["TableStatus"], description.get("ItemCount", 0)))
    return summaries


# --- seeding: what to write (pure) ------------------------------------------------


@dataclass(frozen=True)
class SyntheticSpec:
    """``--synthetic GROUPS:MESSAGES``: generated conversations for load and scale tests."""

    groups: int
    messages: int

    def __str__(self) -> str:
        return f"{self.groups}:{self.messages}"

    @property
    def item_count(self) -> int:
        return self.groups * (self.messages + 2)

    def span(self) -> timedelta:
        # Group i starts i minutes after the first and sends one message a minute.
        return timedelta(minutes=self.groups - 1 + self.messages - 1)


def parse_synthetic(text: str) -> SyntheticSpec:
    match = re.fullmatch(r"\s*(\d+)\s*:\s*(\d+)\s*", text or "")
    if not match or int(match[1]) < 1 or int(match[2]) < 1:
        raise InputError(f"--synthetic {text!r}: expected GROUPS:MESSAGES, two whole numbers of at least 1, "
                         "e.g. 1000:100")
    spec = SyntheticSpec(int(match[1]), int(match[2]))
    if spec.span() > MAX_SEED_SPAN:
        raise InputError(f"--synthetic {text!r}: GROUPS + MESSAGES minutes must fit into {MAX_SEED_SPAN.days} days "
                         "so the seeded times stay within one year")
    return spec


@dataclass(frozen=True)
class SeedMessage:
    sender: UserRef
    after: timedelta  # after the conversation's start
    text: str


@dataclass(frozen=True)
class SeedConversation:
    """One conversation placed on the timeline: ``start`` is measured from the seed epoch."""

    group_uuid: str
    members: tuple[UserRef, UserRef]
    start: timedelta
    messages: tuple[SeedMessage, ...]

    @property
    def end(self) -> timedelta:
        return self.start + self.messages[-1].after

    def items(self, epoch: datetime) -> Iterator[dict[str, str]]:
        """Every message item, then both members' group items (each names the other member)."""
        from .fixtures.model import message_uuid
        from .messaging import format_time, group_item, message_item

        for index, message in enumerate(self.messages):
            at = format_time(epoch + self.start + message.after)
            yield message_item(self.group_uuid, message_uuid(self.group_uuid, index), message.sender, message.text, at)
        last = self.messages[-1]
        last_at = format_time(epoch + self.end)
        first, second = self.members
        yield group_item(first, second, self.group_uuid, last.text, last_at)
        yield group_item(second, first, self.group_uuid, last.text, last_at)


def describe_seed(fixtures: Fixtures) -> str:
    """What seeding the fixtures writes, for refusals on prod."""
    conversations = fixtures.conversations
    messages = sum(len(conversation.messages) for conversation in conversations)
    return f"{len(conversations)} conversations: {messages} message items and {2 * len(conversations)} group items"


def fixture_conversations(
    conversations: Sequence[ConversationFixture], users: Mapping[str, UserRef]
) -> list[SeedConversation]:
    """The fixture conversations one after another, an hour apart; InputError names handles Postgres lacks."""
    missing = sorted({h for c in conversations for h in c.members if h not in users})
    if missing:
        raise InputError(f"users {', '.join(missing)} are not in Postgres; run `invoke db.seed` first")
    placed, start = [], timedelta(0)
    for conversation in conversations:
        messages = tuple(SeedMessage(users[m.sender], timedelta(minutes=m.minutes), m.text)
                         for m in conversation.messages)
        members = (users[conversation.members[0]], users[conversation.members[1]])
        placed.append(SeedConversation(conversation.group_uuid, members, start, messages))
        start = placed[-1].end + GAP
    return placed


def synthetic_user(number: int) -> UserRef:
    from .fixtures.model import user_uuid
    from .messaging import UserRef

    handle = f"{SYNTHETIC_PREFIX}_{number:05d}"
    return UserRef(user_uuid(handle), handle, f"Synthetic User {number:05d}")


def synthetic_group_uuid(number: int) -> str:
    from .fixtures.model import group_uuid

    return group_uuid(f"{SYNTHETIC_PREFIX}-{number:05d}")


def synthetic_conversations(spec: SyntheticSpec, start: timedelta) -> Iterator[SeedConversation]:
    """Group i between synth_i and synth_i+1, so most users have two groups; generated one at a time.

    Groups start a minute apart, so no user's two group items share a sort key.
    """
    for number in range(1, spec.groups + 1):
        members = (synthetic_user(number), synthetic_user(number + 1))
        messages = tuple(
            SeedMessage(members[index % 2], timedelta(minutes=index),
                        f"Synthetic message {index + 1} of {spec.messages} in group {number}")
            for index in range(spec.messages)
        )
        yield SeedConversation(synthetic_group_uuid(number), members, start + timedelta(minutes=number - 1), messages)


def seed_span(conversations: Sequence[ConversationFixture], synthetic: SyntheticSpec | None = None) -> timedelta:
    """From the epoch to the last seeded message (``fixture_conversations`` places them so)."""
    spans = [timedelta(minutes=conversation.span_minutes) for conversation in conversations]
    fixtures_end = sum(spans, timedelta(0)) + GAP * max(len(spans) - 1, 0)
    if synthetic is None:
        return fixtures_end
    return _synthetic_start(conversations) + synthetic.span()


def _synthetic_start(conversations: Sequence[ConversationFixture]) -> timedelta:
    return seed_span(conversations) + GAP if conversations else timedelta(0)


def choose_epoch(recorded: str | None, now: datetime, span: timedelta) -> datetime:
    """When the seeded timeline starts: the recorded epoch while it still fits, else a new one.

    The recorded epoch fits when every seeded time (epoch .. epoch + span)
    falls in ``now``'s year and none lies in the future. A new epoch ends the
    timeline at ``now`` (to the minute), but never starts before 1 January,
    since patterns A and B only read the current year.
    """
    now = now.astimezone(timezone.utc)
    new_year = datetime(now.year, 1, 1, tzinfo=timezone.utc)
    previous = _parse_epoch(recorded)
    if previous is not None and new_year <= previous and previous + span <= now:
        return previous
    return max((now - span).replace(second=0, microsecond=0), new_year)


def seed_probe_key(conversations: Sequence[ConversationFixture], recorded_epoch: str | None) -> tuple[str, str] | None:
    """The key of the first seeded message: one GetItem tells whether the seeded data is (still) in the table."""
    from .messaging import format_time, message_pk

    epoch = _parse_epoch(recorded_epoch)
    if epoch is None or not conversations:
        return None
    first = conversations[0]
    return message_pk(first.group_uuid), format_time(epoch + timedelta(minutes=first.messages[0].minutes))


def seed_is_present(endpoints: Endpoints, table: str, key: tuple[str, str] | None) -> bool:
    if key is None:
        return False
    found = endpoints.client("dynamodb").get_item(
        TableName=table, Key={"pk": {"S": key[0]}, "sk": {"S": key[1]}}, ProjectionExpression="pk")
    return "Item" in found


def epoch_is_current(recorded: str | None, conversations: Sequence[ConversationFixture],
                     synthetic: SyntheticSpec | None = None, now: datetime | None = None) -> bool:
    """Whether a seed run now would keep the ``recorded`` epoch (so the seeded items stay where they are)."""
    previous = _parse_epoch(recorded)
    span = seed_span(conversations, synthetic)
    return previous is not None and choose_epoch(recorded, now or datetime.now(timezone.utc), span) == previous


def _parse_epoch(text: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat(text) if text else None
    except ValueError:
        return None
    if moment is None or moment.tzinfo is None:
        return None
    return moment.astimezone(timezone.utc)


@dataclass(frozen=True)
class SeededGroup:
    """A fixture group a seed wrote; without ``member_uuids`` its group items are found through the GSI."""

    group_uuid: str
    member_uuids: tuple[str, ...] = ()


@dataclass(frozen=True)
class SeedRecord:
    """What a seed run wrote, remembered in the Postgres meta table so the next run can clean up after it."""

    epoch: datetime
    conversation_ids: tuple[str, ...]
    fingerprint: str
    synthetic: SyntheticSpec | None = None
    synthetic_start: timedelta = timedelta(0)

    def meta_values(self) -> dict[str, str]:
        layout = {"conversations": list(self.conversation_ids), "fingerprint": self.fingerprint,
                  "synthetic": str(self.synthetic) if self.synthetic else None,
                  "synthetic_start_minutes": self.synthetic_start // timedelta(minutes=1)}
        return {DDB_SEED_EPOCH: self.epoch.isoformat(), DDB_SEED_LAYOUT: json.dumps(layout, sort_keys=True)}

    @classmethod
    def from_meta(cls, meta: Mapping[str, str]) -> SeedRecord | None:
        epoch = _parse_epoch(meta.get(DDB_SEED_EPOCH))
        if epoch is None:
            return None
        try:
            layout = json.loads(meta.get(DDB_SEED_LAYOUT) or "null")
            synthetic = parse_synthetic(layout["synthetic"]) if layout["synthetic"] else None
            start = timedelta(minutes=int(layout["synthetic_start_minutes"]))
            return cls(epoch, tuple(layout["conversations"]), layout["fingerprint"], synthetic, start)
        except (ValueError, TypeError, KeyError, InputError):
            log.debug("ignoring an unreadable %s in the meta table", DDB_SEED_LAYOUT)
            return None

    def pending_values(self) -> dict[str, str]:
        """This record as the one of a run in progress (see ``pending_in``)."""
        return {DDB_SEED_PENDING: json.dumps(self.meta_values(), sort_keys=True)}

    @classmethod
    def pending_in(cls, meta: Mapping[str, str]) -> SeedRecord | None:
        """The record of a seed run that started and did not finish, if any."""
        try:
            return cls.from_meta(json.loads(meta.get(DDB_SEED_PENDING) or "{}"))
        except (ValueError, TypeError):
            return None

    def fixture_groups(self) -> Iterator[SeededGroup]:
        from .fixtures.model import group_uuid

        yield from (SeededGroup(group_uuid(conversation_id)) for conversation_id in self.conversation_ids)


def stale_synthetic_keys(previous: SeedRecord, synthetic: SyntheticSpec | None, epoch: datetime,
                         start: timedelta) -> Iterator[tuple[str, str]]:
    """Keys the ``previous`` seed wrote for synthetic groups that this one (``synthetic`` from ``epoch``) does not.

    Computed, not read: synthetic items are a pure function of the record, and
    reading them back would cost a query per group.
    """
    if previous.synthetic is None:
        return
    old = synthetic_conversations(previous.synthetic, previous.synthetic_start)
    new = synthetic_conversations(synthetic, start) if synthetic else iter(())
    for before, now in itertools.zip_longest(old, new):
        if before is None:
            return
        keep = {_key(item) for item in now.items(epoch)} if now else set()
        yield from (key for key in map(_key, before.items(previous.epoch)) if key not in keep)


def _key(item: Mapping[str, str]) -> tuple[str, str]:
    return item["pk"], item["sk"]


# --- seeding: writing -------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How often a batch's UnprocessedItems are sent again, with exponential backoff between tries."""

    attempts: int = 8
    first_wait: float = 0.05
    max_wait: float = 2.0


DEFAULT_RETRY = RetryPolicy()


class _Unwritten(Exception):
    def __init__(self, count: int) -> None:
        super().__init__(f"{count} items unprocessed")
        self.count = count


def seed_from_fixtures(endpoints: Endpoints, settings: Settings, fixtures: Fixtures,
                       synthetic: SyntheticSpec | None = None, now: datetime | None = None) -> StepResult:
    """Seed the fixture conversations (plus ``synthetic`` ones) with users from Postgres; re-runnable.

    The epoch is remembered in the Postgres meta table; when it or the seeded
    layout changes, items of earlier seed runs that this run did not rewrite are removed.
    """
    from .messaging import UserRef
    from .pg.bookkeeping import read_meta, write_meta
    from .pg.users import fetch_users

    spec = table_spec(settings)
    users = {handle: UserRef(str(row.uuid), row.handle, row.display_name or handle)
             for handle, row in fetch_users(endpoints.postgres_url).items()}
    meta = read_meta(endpoints.postgres_url)
    # What earlier runs wrote: the last finished one and one that was interrupted.
    earlier = tuple(r for r in (SeedRecord.from_meta(meta), SeedRecord.pending_in(meta)) if r is not None)
    span = seed_span(fixtures.conversations, synthetic)
    epoch = choose_epoch(meta.get(DDB_SEED_EPOCH), now or datetime.now(timezone.utc), span)
    record = SeedRecord(epoch, tuple(c.id for c in fixtures.conversations), fixtures.conversations_fingerprint,
                        synthetic, _synthetic_start(fixtures.conversations) if synthetic else timedelta(0))
    # Said before writing, so that a run killed halfway is known and cleaned up by the next.
    write_meta(endpoints.postgres_url, record.pending_values())
    result = seed_conversations(endpoints, spec, fixtures.conversations, users, epoch, synthetic=synthetic,
                                prune=earlier != (record,), earlier=earlier)
    write_meta(endpoints.postgres_url, {**record.meta_values(), DDB_SEED_PENDING: ""})
    return result


def seed_conversations(
    endpoints: Endpoints,
    spec: TableSpec,
    conversations: Sequence[ConversationFixture],
    users: Mapping[str, UserRef],
    epoch: datetime,
    *,
    synthetic: SyntheticSpec | None = None,
    prune: bool = False,
    earlier: Sequence[SeedRecord] = (),
    workers: int = WRITER_THREADS,
    retry: RetryPolicy = DEFAULT_RETRY,
) -> StepResult:
    """Write every message and group item of ``conversations`` (and ``synthetic`` ones) placed from ``epoch``.

    Keys are deterministic, so writing again overwrites. With ``prune``, seeded
    items that this run did not write are deleted afterwards: those of the
    written fixture groups (another epoch, edited fixtures) and, from the
    ``earlier`` runs' records, their fixture groups and their synthetic items.
    """
    placed = fixture_conversations(conversations, users)
    client = endpoints.client("dynamodb")
    with aws_errors(f"seeding table {spec.name}"):
        if _describe(client, spec.name) is None:
            raise BootstrapError(f"table {spec.name} does not exist; run `invoke ddb.schema-load` first")
        if prune and _is_empty(client, spec.name):
            prune = False  # nothing earlier to clean up

        start = _synthetic_start(conversations)
        moved_on = _group_items_moved_on(client, spec, placed, epoch)
        everything = itertools.chain(placed, synthetic_conversations(synthetic, start) if synthetic else ())
        total = sum(len(c.messages) + 2 for c in placed) + (synthetic.item_count if synthetic else 0)
        requests = ({"PutRequest": {"Item": _attributes(item)}} for c in everything for item in c.items(epoch)
                    if (item["pk"], item.get("message_group_uuid")) not in moved_on)
        written = write_requests(client, spec.name, requests, total, workers, retry)
        removed = 0
        if prune:
            gone = itertools.chain.from_iterable(record.fixture_groups() for record in earlier)
            stale = itertools.chain(
                _stale_fixture_keys(client, spec, placed, epoch, gone, frozenset(moved_on.values())),
                *(stale_synthetic_keys(record, synthetic, epoch, start) for record in earlier),
            )
            removed = write_requests(client, spec.name, map(_delete_request, stale), None, workers, retry,
                                     f"removing items of earlier seeds from {spec.name}")
    groups = len(placed) + (synthetic.groups if synthetic else 0)
    detail = f"{groups} conversations, {written} items in {spec.name}"
    if removed:
        detail += f"; removed {removed} items of an earlier seed"
    return StepResult("ddb.seed", Action.UPDATED, detail, writes=written + removed)


def _is_empty(client: Any, table: str) -> bool:
    return not client.scan(TableName=table, Limit=1, ProjectionExpression="pk").get("Items")


def _attributes(item: Mapping[str, str]) -> dict[str, dict[str, str]]:
    from .messaging import to_attributes

    return to_attributes(item)


def write_requests(client: Any, table: str, requests: Iterable[dict[str, Any]], total: int | None,
                   workers: int = WRITER_THREADS, retry: RetryPolicy = DEFAULT_RETRY,
                   description: str | None = None) -> int:
    """Send Put/DeleteRequests in batches of 25 from ``workers`` threads; the number written.

    More than ``PROGRESS_THRESHOLD`` requests show progress, as ``description`` (default: writing the table).

    ``requests`` is consumed lazily through a bounded queue, so memory stays
    flat however many there are. The first failure stops the producer; it is
    raised once every thread has finished.
    """
    batches: queue.Queue[list[dict[str, Any]] | None] = queue.Queue(maxsize=workers * 2)
    failed = threading.Event()
    errors: list[BaseException] = []
    counter = _Counter()

    with progress(total, description or f"writing {table}", PROGRESS_THRESHOLD) as advance:

        def work() -> None:
            while (batch := batches.get()) is not None:
                if failed.is_set():
                    continue  # keep draining so the producer never blocks on a full queue
                try:
                    _write_batch(client, table, batch, retry)
                except BaseException as exc:  # handed to the main thread, which re-raises it
                    if isinstance(exc, _Unwritten):
                        counter.add(len(batch) - exc.count)
                    errors.append(exc)
                    failed.set()
                    continue
                counter.add(len(batch))
                advance(len(batch))

        threads = [threading.Thread(target=work, name=f"ddb-writer-{n}", daemon=True) for n in range(workers)]
        for thread in threads:
            thread.start()
        try:
            for batch in _batched(requests, BATCH_SIZE):
                if failed.is_set():
                    break
                batches.put(batch)
        finally:
            for _ in threads:
                batches.put(None)
            for thread in threads:
                thread.join()
    if errors:
        first = errors[0]
        if isinstance(first, _Unwritten):
            unwritten = sum(e.count for e in errors if isinstance(e, _Unwritten))
            raise BootstrapError(
                f"{unwritten} items were not written to {table}: DynamoDB kept returning them as unprocessed "
                f"after {retry.attempts} attempts (throttling?); {counter.value} of {total or 'the'} items were "
                "written. Raise the table's capacity or wait, then run the same command again."
            )
        raise first
    return counter.value


class _Counter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self, count: int) -> None:
        with self._lock:
            self.value += count


def _batched(requests: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for request in requests:
        batch.append(request)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _write_batch(client: Any, table: str, batch: list[dict[str, Any]], retry: RetryPolicy) -> None:
    """Write one batch, resending its UnprocessedItems with backoff; _Unwritten when they never go through."""
    from tenacity import RetryError, Retrying, retry_if_result, stop_after_attempt, wait_exponential

    pending = batch

    def attempt() -> list[dict[str, Any]]:
        nonlocal pending
        response = client.batch_write_item(RequestItems={table: pending})
        pending = response.get("UnprocessedItems", {}).get(table, [])
        if pending:
            log.debug("%s: %d of %d items unprocessed; retrying", table, len(pending), len(batch))
        return pending

    retrying = Retrying(stop=stop_after_attempt(retry.attempts),
                        wait=wait_exponential(multiplier=retry.first_wait, max=retry.max_wait),
                        retry=retry_if_result(bool))
    try:
        retrying(attempt)
    except RetryError:
        raise _Unwritten(len(pending)) from None


def _group_items_moved_on(client: Any, spec: TableSpec, placed: Sequence[SeedConversation],
                          epoch: datetime) -> dict[tuple[str, str], tuple[str, str]]:
    """Group items the app has moved past the seeded last message (pattern E), by (pk, group): their keys.

    The seed must neither write its older group item beside them (a member
    would see the group twice) nor prune them.
    """
    from .messaging import GROUP_PREFIX, format_time

    moved: dict[tuple[str, str], tuple[str, str]] = {}
    for conversation in placed:
        seeded_at = format_time(epoch + conversation.end)
        for item in _query_keys(client, spec, spec.index.partition_key.name, conversation.group_uuid, spec.index.name):
            if item["pk"].startswith(GROUP_PREFIX) and item["sk"] > seeded_at:
                moved[(item["pk"], conversation.group_uuid)] = _key(item)
    return moved


def _stale_fixture_keys(client: Any, spec: TableSpec, placed: Sequence[SeedConversation], epoch: datetime,
                        gone: Iterable[SeededGroup], keep_too: frozenset[tuple[str, str]] = frozenset()
                        ) -> Iterator[tuple[str, str]]:
    """Keys of seeded items in fixture groups that the current seed did not write, read one group at a time."""
    seen: set[str] = set()
    written = ((SeededGroup(c.group_uuid, tuple(member.uuid for member in c.members)),
                {_key(item) for item in c.items(epoch)} | keep_too) for c in placed)
    for group, keep in itertools.chain(written, ((group, set()) for group in gone)):
        if group.group_uuid not in seen:
            seen.add(group.group_uuid)
            yield from (key for key in map(_key, _seeded_items(client, spec, group)) if key not in keep)


def _seeded_items(client: Any, spec: TableSpec, group: SeededGroup) -> Iterator[dict[str, str]]:
    """The keys of the group's seeded messages and of its members' items for the group."""
    from .messaging import GROUP_PREFIX, group_pk, message_pk

    messages = _query_keys(client, spec, spec.partition_key.name, message_pk(group.group_uuid))
    yield from (item for item in messages if _is_seeded_id(item.get("message_uuid")))
    if group.member_uuids:
        # Each member's partition is smaller than what the GSI has to look through.
        for member in group.member_uuids:
            owned = _query_keys(client, spec, spec.partition_key.name, group_pk(member))
            yield from (item for item in owned if item.get("message_group_uuid") == group.group_uuid)
    else:
        indexed = _query_keys(client, spec, spec.index.partition_key.name, group.group_uuid, spec.index.name)
        yield from (item for item in indexed if item["pk"].startswith(GROUP_PREFIX))


def _is_seeded_id(value: str | None) -> bool:
    """Seeded ids are uuid5 (see bootstrap.fixtures); the app's own are uuid4."""
    try:
        return value is not None and uuid.UUID(value).version == 5
    except ValueError:
        return False


def _delete_request(key: tuple[str, str]) -> dict[str, Any]:
    return {"DeleteRequest": {"Key": {"pk": {"S": key[0]}, "sk": {"S": key[1]}}}}


def _query_keys(client: Any, spec: TableSpec, key: str, value: str,
               index: str | None = None) -> Iterator[dict[str, str]]:
    """Keys, message_uuid and message_group_uuid of every item whose ``key`` is ``value``."""
    arguments: dict[str, Any] = {
        "TableName": spec.name,
        "KeyConditionExpression": "#k = :v",
        "ExpressionAttributeNames": {"#k": key, "#pk": "pk", "#sk": "sk", "#m": "message_uuid",
                                     "#g": "message_group_uuid"},
        "ExpressionAttributeValues": {":v": {"S": value}},
        "ProjectionExpression": "#pk, #sk, #m, #g",
    }
    if index:
        arguments["IndexName"] = index
    for page in client.get_paginator("query").paginate(**arguments):
        yield from (_plain(item) for item in page["Items"])


# --- reading: scan and the access patterns ----------------------------------------


def _plain(attributes: Mapping[str, Mapping[str, Any]]) -> dict[str, str]:
    """An item for display: strings and numbers as text, anything else (not in the contract) as JSON."""
    plain = {}
    for name, value in attributes.items():
        kind, content = next(iter(value.items()))
        plain[name] = content if kind in ("S", "N") else json.dumps(content, default=str)
    return plain


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
                    yield _plain(item)


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
    from .messaging import Messages

    meter = _CapacityMeter(endpoints.client("dynamodb"))
    with aws_errors(f"reading conversation {group_uuid}"):
        page = Messages(meter, spec.name).list_messages(group_uuid, limit=limit)
    return Listing(list(page.items), meter.units, page.cursor)


def list_conversations(endpoints: Endpoints, spec: TableSpec, user_uuid: str, limit: int = 20) -> Listing:
    """Pattern B: a user's message groups, newest first."""
    from .messaging import Messages

    meter = _CapacityMeter(endpoints.client("dynamodb"))
    with aws_errors(f"listing the conversations of user {user_uuid}"):
        page = Messages(meter, spec.name).list_message_groups(user_uuid, limit=limit)
    return Listing(list(page.items), meter.units, page.cursor)


def find_user(endpoints: Endpoints, handle: str) -> UserRef:
    """The Postgres user with ``handle``, as the message items name users."""
    from .messaging import UserRef
    from .pg.users import fetch_users

    row = fetch_users(endpoints.postgres_url).get(handle)
    if row is None:
        raise InputError(f"no user with the handle {handle!r} in Postgres; run `invoke db.seed` first")
    return UserRef(str(row.uuid), row.handle, row.display_name)


def first_group_uuid(fixtures: Fixtures) -> str:
    """The default conversation of ``ddb.get-conversation``: the first one in the fixtures."""
    if not fixtures.conversations:
        raise InputError("seeds/conversations.yaml has no conversations; pass --group")
    return fixtures.conversations[0].group_uuid


def first_user_handle(fixtures: Fixtures) -> str:
    if not fixtures.users:
        raise InputError("seeds/users.yaml has no users; pass --handle")
    return fixtures.users[0].handle


def local_time(sort_key: str) -> str:
    """A sort key (UTC ISO 8601) as local wall-clock time for people to read."""
    try:
        return datetime.fromisoformat(sort_key).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return sort_key


def shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


# --- showing ----------------------------------------------------------------------

MESSAGE_WIDTH = 60


def show_tables(summaries: Sequence[TableSummary]) -> None:
    from .console import print_table

    print_table(["table", "status", "items"], [[s.name, s.status, s.item_count] for s in summaries])


def show_items(items: Iterable[Mapping[str, str]], as_json: bool = False) -> int:
    """Print scanned items as a table (pk, sk, handle, message cut to a width) or as JSON; how many."""
    from .console import print_json, print_table

    items = list(items)
    if as_json:
        print_json(items)
    else:
        print_table(["pk", "sk", "handle", "message"],
                    [[i.get("pk"), i.get("sk"), i.get("user_handle"), shorten(i.get("message", ""), MESSAGE_WIDTH)]
                     for i in items])
    return len(items)


def show_conversation(listing: Listing, title: str) -> None:
    from .console import print_table

    print_table(["time", "from", "message"],
                [[local_time(i["sk"]), i.get("user_handle"), i.get("message")] for i in listing.items], title=title)
    _say_capacity(listing)


def show_conversations(listing: Listing, title: str) -> None:
    from .console import print_table

    rows = [[local_time(i["sk"]), i.get("user_handle"), shorten(i.get("message", ""), MESSAGE_WIDTH),
             i.get("message_group_uuid")] for i in listing.items]
    print_table(["last message", "with", "message", "group"], rows, title=title)
    _say_capacity(listing)


def _say_capacity(listing: Listing) -> None:
    if listing.consumed_capacity is not None:
        say(f"{len(listing.items)} items; consumed {listing.consumed_capacity:g} read capacity units")
