"""Drift planning (pure): how a live table differs from its ``TableSpec`` and which calls repair it.

``plan_table`` compares the spec with what DescribeTable reports and returns a
``TablePlan``: the differences, and the actions that make the table match, in
the order they must run. ``update_arguments`` turns one repair into the
arguments of its UpdateTable call. Nothing here talks to a service;
``bootstrap.ddb.schema`` does what the plan says.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, Iterator, Mapping, Sequence

from .table import TableSpec


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


def update_arguments(spec: TableSpec, action: TableAction) -> dict[str, Any]:
    """The keyword arguments of the UpdateTable call that performs one repair ``action``."""
    arguments: dict[str, Any] = {"TableName": spec.name}
    if action.change is Change.CREATE_INDEX:
        # AWS wants the new index's key attributes defined; defining all of ours is always valid.
        arguments["AttributeDefinitions"] = spec.attribute_definitions()
        arguments["GlobalSecondaryIndexUpdates"] = [{"Create": spec.index_definition()}]
    elif action.change is Change.DELETE_INDEX:
        arguments["GlobalSecondaryIndexUpdates"] = [{"Delete": {"IndexName": spec.index.name}}]
    elif action.change is Change.SET_BILLING:
        arguments["BillingMode"] = spec.billing_mode
        if spec.is_provisioned:
            # Switching to PROVISIONED needs capacity for the table and for every index that stays.
            arguments["ProvisionedThroughput"] = spec.throughput()
            updates = [{"Update": {"IndexName": name, "ProvisionedThroughput": spec.throughput()}}
                       for name in action.indexes]
            if updates:
                arguments["GlobalSecondaryIndexUpdates"] = updates
    elif action.change is Change.DISABLE_STREAM:
        arguments["StreamSpecification"] = {"StreamEnabled": False}
    elif action.change is Change.ENABLE_STREAM:
        arguments["StreamSpecification"] = spec.stream_specification()
    else:
        raise ValueError(f"{action.change.value} is not done with UpdateTable")
    return arguments


def _differences(spec: TableSpec, description: Mapping[str, Any]) -> Iterator[Difference]:
    types = {d["AttributeName"]: d["AttributeType"] for d in description.get("AttributeDefinitions", [])}
    expected_keys = _describe_keys(spec.key_schema(), spec.attribute_types())
    found_keys = _describe_keys(description.get("KeySchema", []), types)
    if found_keys != expected_keys:
        yield Difference("key schema", expected_keys, found_keys)

    indexes = {index["IndexName"]: index for index in description.get("GlobalSecondaryIndexes") or []}
    expected_index = _describe_index(spec.index_definition(), spec.attribute_types())
    found_index = _describe_index(indexes[spec.index.name], types) if spec.index.name in indexes else None
    if found_index is None:
        yield Difference(f"index {spec.index.name}", expected_index, "missing", (TableAction(Change.CREATE_INDEX),))
    elif found_index != expected_index:
        repairs: tuple[TableAction, ...] = (TableAction(Change.DELETE_INDEX), TableAction(Change.CREATE_INDEX))
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


def _describe_keys(key_schema: Sequence[Mapping[str, str]], types: Mapping[str, str]) -> str:
    return ", ".join(f"{k['AttributeName']} ({types.get(k['AttributeName'], '?')}) {k['KeyType']}"
                     for k in key_schema) or "none"


def _describe_index(index: Mapping[str, Any], types: Mapping[str, str]) -> str:
    projection = index.get("Projection", {})
    text = f"{_describe_keys(index.get('KeySchema', []), types)}, projection {projection.get('ProjectionType')}"
    if projection.get("NonKeyAttributes"):
        text += f" {sorted(projection['NonKeyAttributes'])}"
    return text
