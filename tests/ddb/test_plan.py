"""bootstrap.ddb.plan: drift planning with plain values (DescribeTable results built from the spec)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from bootstrap.ddb.plan import Change, TableAction, TablePlan, plan_table, update_arguments
from bootstrap.ddb.table import TableSpec


def described(spec: TableSpec, **overrides: Any) -> dict[str, Any]:
    """What DescribeTable reports for a table created from ``spec`` (moto's shape), with ``overrides``."""
    arguments = spec.create_arguments()
    index = {**arguments["GlobalSecondaryIndexes"][0], "IndexStatus": "ACTIVE"}
    description = {
        "TableName": spec.name,
        "TableStatus": "ACTIVE",
        "AttributeDefinitions": arguments["AttributeDefinitions"],
        "KeySchema": arguments["KeySchema"],
        "GlobalSecondaryIndexes": [index],
        "StreamSpecification": arguments["StreamSpecification"],
        "BillingModeSummary": {"BillingMode": spec.billing_mode},
    }
    description.update(overrides)
    return description


def changes(plan: TablePlan) -> list[Change]:
    return [action.change for action in plan.actions]


def test_plan_creates_a_missing_table():
    plan = plan_table(TableSpec("t"), None, recreate=False)
    assert changes(plan) == [Change.CREATE_TABLE] and not plan.differences


def test_plan_leaves_a_matching_table_alone():
    spec = TableSpec("t")
    plan = plan_table(spec, described(spec), recreate=True)
    assert plan.unchanged and plan.describe() == "none"


def test_plan_treats_an_always_provisioned_table_without_billing_summary_as_provisioned():
    spec = TableSpec("t")
    description = described(spec)
    del description["BillingModeSummary"]
    assert plan_table(spec, description).unchanged


def test_plan_adds_a_missing_index_and_enables_the_stream_in_place():
    spec = TableSpec("t")
    plan = plan_table(spec, described(spec, GlobalSecondaryIndexes=[], StreamSpecification=None))
    assert changes(plan) == [Change.CREATE_INDEX, Change.ENABLE_STREAM]
    assert [d.what for d in plan.differences] == ["index message-group-sk-index", "stream"]
    assert "missing" in plan.describe() and "disabled" in plan.describe()
    assert not plan.blocked


def test_plan_replaces_an_index_with_another_projection():
    spec = TableSpec("t")
    index = {**spec.index_definition(), "Projection": {"ProjectionType": "KEYS_ONLY"}}
    plan = plan_table(spec, described(spec, GlobalSecondaryIndexes=[index]))
    assert changes(plan) == [Change.DELETE_INDEX, Change.CREATE_INDEX]
    assert "projection KEYS_ONLY" in str(plan.differences[0])


def test_plan_switches_the_stream_view_type_by_disabling_first():
    spec = TableSpec("t")
    stream = {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}
    plan = plan_table(spec, described(spec, StreamSpecification=stream))
    assert changes(plan) == [Change.DISABLE_STREAM, Change.ENABLE_STREAM]


def test_plan_changes_billing_and_gives_capacity_to_the_indexes_that_stay():
    spec = TableSpec("t")
    other = {"IndexName": "other", "KeySchema": [{"AttributeName": "sk", "KeyType": "HASH"}],
             "Projection": {"ProjectionType": "ALL"}, "IndexStatus": "ACTIVE"}
    description = described(replace(spec, billing_mode="PAY_PER_REQUEST"))
    description["GlobalSecondaryIndexes"].append(other)
    plan = plan_table(spec, description)
    assert plan.actions == (TableAction(Change.SET_BILLING, ("message-group-sk-index", "other")),)
    arguments = update_arguments(spec, plan.actions[0])
    assert arguments["BillingMode"] == "PROVISIONED"
    assert [u["Update"]["IndexName"] for u in arguments["GlobalSecondaryIndexUpdates"]] == [
        "message-group-sk-index", "other"]


def test_plan_orders_repairs_so_a_replaced_index_is_dropped_before_billing_changes():
    spec = TableSpec("t")
    stale_index = {**spec.index_definition(), "Projection": {"ProjectionType": "KEYS_ONLY"}}
    description = described(replace(spec, billing_mode="PAY_PER_REQUEST"), GlobalSecondaryIndexes=[stale_index],
                            StreamSpecification={"StreamEnabled": False})
    plan = plan_table(spec, description)
    assert changes(plan) == [Change.DELETE_INDEX, Change.SET_BILLING, Change.CREATE_INDEX, Change.ENABLE_STREAM]
    assert plan.actions[1].indexes == ()


def test_plan_blocks_on_other_keys_unless_recreating():
    spec = TableSpec("t")
    keys = [{"AttributeName": "id", "KeyType": "HASH"}]
    description = described(spec, KeySchema=keys, AttributeDefinitions=[{"AttributeName": "id",
                                                                          "AttributeType": "N"}])
    plan = plan_table(spec, description, recreate=False)
    assert not plan.actions
    assert [d.what for d in plan.blocked] == ["key schema"]
    assert "expected pk (S) HASH, sk (S) RANGE, found id (N) HASH" in str(plan.blocked[0])
    recreate = plan_table(spec, description, recreate=True)
    assert changes(recreate) == [Change.DELETE_TABLE, Change.CREATE_TABLE] and not recreate.blocked


def test_update_arguments_for_each_repair():
    spec = TableSpec("t", billing_mode="PAY_PER_REQUEST")
    create = update_arguments(spec, TableAction(Change.CREATE_INDEX))
    assert create["GlobalSecondaryIndexUpdates"][0]["Create"]["IndexName"] == "message-group-sk-index"
    assert {"AttributeName": "message_group_uuid", "AttributeType": "S"} in create["AttributeDefinitions"]
    assert update_arguments(spec, TableAction(Change.SET_BILLING)) == {"TableName": "t",
                                                                       "BillingMode": "PAY_PER_REQUEST"}
    assert update_arguments(spec, TableAction(Change.DISABLE_STREAM))["StreamSpecification"] == {
        "StreamEnabled": False}
    with pytest.raises(ValueError):
        update_arguments(spec, TableAction(Change.CREATE_TABLE))
