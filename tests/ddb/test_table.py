"""bootstrap.ddb.table: the contract's spec, keys and item shapes with plain values; CreateTable arguments both ways."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from bootstrap.config import Endpoints, resolve_settings
from bootstrap.ddb.schema import describe_table, schema_load
from bootstrap.ddb.table import (
    DEFAULT_TABLE_NAME,
    TableSpec,
    UserRef,
    create_arguments_of,
    format_time,
    from_attributes,
    group_item,
    item_shape_problem,
    message_item,
    plain_item,
    table_spec,
    to_attributes,
)

pytestmark = pytest.mark.both_engines

ALICE = UserRef("11111111-1111-4111-8111-111111111111", "alice", "Alice A")
BOB = UserRef("22222222-2222-4222-8222-222222222222", "bob", "Bob B")
T0 = datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc)

DESCRIPTION = {
    "TableName": "cruddur-messages",
    "TableStatus": "ACTIVE",
    "AttributeDefinitions": [{"AttributeName": "pk", "AttributeType": "S"},
                             {"AttributeName": "sk", "AttributeType": "S"},
                             {"AttributeName": "message_group_uuid", "AttributeType": "S"}],
    "KeySchema": [{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5, "NumberOfDecreasesToday": 0},
    "GlobalSecondaryIndexes": [{
        "IndexName": "message-group-sk-index",
        "KeySchema": [{"AttributeName": "message_group_uuid", "KeyType": "HASH"},
                      {"AttributeName": "sk", "KeyType": "RANGE"}],
        "Projection": {"ProjectionType": "ALL"},
        "IndexStatus": "ACTIVE",
        "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
    }],
    "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    "LatestStreamArn": "arn:aws:dynamodb:us-east-1:123456789012:table/cruddur-messages/stream/x",
    "ItemCount": 2,
}


# --- the spec ----------------------------------------------------------------------------


def test_table_spec_comes_from_settings_and_matches_the_contract():
    spec = table_spec(resolve_settings({}, {}, {}))
    arguments = spec.create_arguments()
    assert arguments["TableName"] == "cruddur-messages"
    assert arguments["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"},
                                      {"AttributeName": "sk", "KeyType": "RANGE"}]
    assert {d["AttributeName"]: d["AttributeType"] for d in arguments["AttributeDefinitions"]} == {
        "pk": "S", "sk": "S", "message_group_uuid": "S"}
    index = arguments["GlobalSecondaryIndexes"][0]
    assert index["IndexName"] == "message-group-sk-index"
    assert index["KeySchema"][0]["AttributeName"] == "message_group_uuid"
    assert index["Projection"] == {"ProjectionType": "ALL"}
    assert arguments["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert arguments["ProvisionedThroughput"] == index["ProvisionedThroughput"] == {
        "ReadCapacityUnits": 5, "WriteCapacityUnits": 5}


def test_pay_per_request_has_no_capacity():
    spec = table_spec(resolve_settings({}, {}, {"billing_mode": "PAY_PER_REQUEST", "table_name": "other"}))
    arguments = spec.create_arguments()
    assert (arguments["TableName"], arguments["BillingMode"]) == ("other", "PAY_PER_REQUEST")
    assert "ProvisionedThroughput" not in arguments
    assert "ProvisionedThroughput" not in arguments["GlobalSecondaryIndexes"][0]


def test_the_default_table_name_is_the_settings_default():
    assert resolve_settings({}, {}, {}).table_name == DEFAULT_TABLE_NAME == "cruddur-messages"


# --- CreateTable arguments from a description --------------------------------------------


def test_create_arguments_keep_keys_index_billing_and_stream_but_no_read_only_fields() -> None:
    arguments = create_arguments_of(DESCRIPTION)
    assert arguments == {
        "TableName": "cruddur-messages",
        "AttributeDefinitions": DESCRIPTION["AttributeDefinitions"],
        "KeySchema": DESCRIPTION["KeySchema"],
        "BillingMode": "PROVISIONED",
        "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
        "GlobalSecondaryIndexes": [{
            "IndexName": "message-group-sk-index",
            "KeySchema": DESCRIPTION["GlobalSecondaryIndexes"][0]["KeySchema"],
            "Projection": {"ProjectionType": "ALL"},
            "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
        }],
        "StreamSpecification": {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"},
    }


def test_on_demand_table_without_stream_has_no_throughput_and_no_stream() -> None:
    description = {**DESCRIPTION, "BillingModeSummary": {"BillingMode": "PAY_PER_REQUEST"},
                   "StreamSpecification": {"StreamEnabled": False}}
    arguments = create_arguments_of(description)
    assert arguments["BillingMode"] == "PAY_PER_REQUEST"
    assert "ProvisionedThroughput" not in arguments and "StreamSpecification" not in arguments
    assert "ProvisionedThroughput" not in arguments["GlobalSecondaryIndexes"][0]


def test_the_description_of_the_spec_gives_back_its_create_arguments() -> None:
    assert create_arguments_of(DESCRIPTION) == TableSpec(DEFAULT_TABLE_NAME).create_arguments()


def test_a_table_created_from_the_spec_describes_back_to_the_spec(endpoints: Endpoints, table_name: str) -> None:
    spec = TableSpec(table_name)
    schema_load(endpoints, spec)
    rebuilt = create_arguments_of(describe_table(endpoints, table_name))
    expected = spec.create_arguments()
    for arguments in (rebuilt, expected):
        arguments["AttributeDefinitions"].sort(key=lambda definition: definition["AttributeName"])
    assert rebuilt == expected


# --- keys and items ----------------------------------------------------------------------


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def test_format_time_is_fixed_width_utc() -> None:
    assert format_time(datetime(2026, 11, 23, 17, 34, 26, tzinfo=timezone.utc)) == "2026-11-23T17:34:26.000000+00:00"
    plus_two = timezone(timedelta(hours=2))
    assert format_time(datetime(2026, 1, 1, 1, 0, 0, 5, tzinfo=plus_two)) == "2025-12-31T23:00:00.000005+00:00"
    times = [at(0), at(0) + timedelta(microseconds=1), at(1), at(600)]
    assert sorted(map(format_time, times)) == [format_time(t) for t in times]
    with pytest.raises(ValueError):
        format_time(datetime(2026, 1, 1))


def test_item_shapes_follow_the_contract() -> None:
    created = "2026-03-01T12:00:00.000000+00:00"
    assert message_item("g1", "m1", ALICE, "hi", created) == {
        "pk": "MSG#g1", "sk": created, "message_uuid": "m1", "message": "hi",
        "user_uuid": ALICE.uuid, "user_display_name": "Alice A", "user_handle": "alice",
    }
    assert group_item(ALICE, BOB, "g1", "hi", created) == {
        "pk": f"GRP#{ALICE.uuid}", "sk": created, "message_group_uuid": "g1", "message": "hi",
        "user_uuid": BOB.uuid, "user_display_name": "Bob B", "user_handle": "bob",
    }
    item = group_item(BOB, ALICE, "g1", "hi", created)
    assert to_attributes(item)["pk"] == {"S": f"GRP#{BOB.uuid}"}
    assert from_attributes(to_attributes(item)) == item


def test_item_shape_problem_names_what_is_off() -> None:
    created = "2026-03-01T12:00:00.000000+00:00"
    message = to_attributes(message_item("g1", "m1", ALICE, "hi", created))
    group = to_attributes(group_item(ALICE, BOB, "g1", "hi", created))
    assert item_shape_problem(message) is None and item_shape_problem(group) is None
    assert item_shape_problem({**message, "extra": {"S": "x"}}) == f"MSG#g1/{created}: attributes ['extra'] differ"
    assert item_shape_problem({**message, "message": {"N": "1"}}) == "MSG#g1: an attribute is not a string"
    assert item_shape_problem({"pk": {"S": "OTHER#1"}}) == "OTHER#1: pk is neither MSG# nor GRP#"


def test_plain_item_shows_any_item_as_text() -> None:
    item = {"pk": {"S": "MSG#g1"}, "count": {"N": "3"}, "tags": {"SS": ["a"]}, "seen": {"BOOL": True}}
    assert plain_item(item) == {"pk": "MSG#g1", "count": "3", "tags": '["a"]', "seen": "true"}
