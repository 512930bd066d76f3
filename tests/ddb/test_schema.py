"""bootstrap.ddb.schema: creating, repairing, dropping and listing tables on the session's real engine."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bootstrap.ddb.plan import plan_table
from bootstrap.ddb.schema import describe_table, drop_table, list_tables, schema_load
from bootstrap.errors import DriftError
from bootstrap.steps import Action

pytestmark = pytest.mark.both_engines


def test_schema_load_creates_then_reports_unchanged(endpoints, spec):
    first = schema_load(endpoints, spec)
    second = schema_load(endpoints, spec)
    assert (first.action, second.action) == (Action.CREATED, Action.UNCHANGED)
    description = describe_table(endpoints, spec.name)
    assert description["TableStatus"] == "ACTIVE"
    assert description["GlobalSecondaryIndexes"][0]["IndexStatus"] == "ACTIVE"
    assert description["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"


def test_schema_load_repairs_a_table_without_index_and_stream(endpoints, spec):
    arguments = spec.create_arguments()
    del arguments["GlobalSecondaryIndexes"], arguments["StreamSpecification"]
    arguments["AttributeDefinitions"] = [d for d in arguments["AttributeDefinitions"]
                                         if d["AttributeName"] in ("pk", "sk")]
    endpoints.client("dynamodb").create_table(**arguments)
    result = schema_load(endpoints, spec)
    assert result.action is Action.UPDATED
    assert "create index" in result.detail and "enable stream" in result.detail
    assert plan_table(spec, describe_table(endpoints, spec.name)).unchanged


def test_schema_load_switches_billing_in_place(endpoints, spec):
    schema_load(endpoints, spec)
    result = schema_load(endpoints, replace(spec, billing_mode="PAY_PER_REQUEST"))
    assert (result.action, result.detail) == (Action.UPDATED, f"table {spec.name}: set billing mode")


def test_schema_load_refuses_other_keys_then_recreates(endpoints, spec):
    endpoints.client("dynamodb").create_table(
        TableName=spec.name, AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
    with pytest.raises(DriftError) as refused:
        schema_load(endpoints, spec)
    message = str(refused.value)
    assert "key schema: expected pk (S) HASH, sk (S) RANGE, found id (S) HASH (cannot change in place)" in message
    assert "stream: expected enabled, NEW_AND_OLD_IMAGES, found disabled\n" in message
    assert "--recreate" in message
    assert describe_table(endpoints, spec.name)["KeySchema"][0]["AttributeName"] == "id"
    recreated = schema_load(endpoints, spec, recreate=True)
    assert recreated.action is Action.CREATED and "dropped and recreated" in recreated.detail
    assert plan_table(spec, describe_table(endpoints, spec.name)).unchanged


def test_drop_missing_table_is_not_an_error(endpoints, table_name):
    assert drop_table(endpoints, table_name).action is Action.UNCHANGED


def test_drop_and_list_tables(endpoints, table):
    assert table.name in {s.name for s in list_tables(endpoints)}
    assert drop_table(endpoints, table.name).action is Action.REMOVED
    assert describe_table(endpoints, table.name) is None
