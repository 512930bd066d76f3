"""bootstrap.dynamo: pure planning with plain values, then the real moto server for everything else."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest

from bootstrap.meta import DDB_SEED_EPOCH, DDB_SEED_LAYOUT
from bootstrap import dynamo
from bootstrap.config import Endpoints, resolve_settings
from bootstrap.dynamo import Change, TableAction, TableSpec
from bootstrap.errors import BootstrapError, DriftError, InputError
from bootstrap.fixtures.model import Fixtures
from bootstrap.fixtures.parse import load_fixtures
from bootstrap.messaging import UserRef, message_item, to_attributes
from bootstrap.steps import Action

pytestmark = pytest.mark.both_engines

UTC = timezone.utc
NOW = datetime(2026, 11, 23, 17, 30, 45, tzinfo=UTC)
FAST_RETRY = dynamo.RetryPolicy(attempts=3, first_wait=0.001, max_wait=0.005)


# --- plain values -------------------------------------------------------------------------


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


@pytest.fixture(scope="module")
def fixtures() -> Fixtures:
    return load_fixtures(resolve_settings({}, {}, {}).seeds_dir)


def fixture_users(fixtures: Fixtures) -> dict[str, UserRef]:
    return {u.handle: UserRef(u.uuid, u.handle, u.display_name) for u in fixtures.users}


def changes(plan: dynamo.TablePlan) -> list[Change]:
    return [action.change for action in plan.actions]


def test_table_spec_comes_from_settings_and_matches_the_contract():
    spec = dynamo.table_spec(resolve_settings({}, {}, {}))
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
    spec = dynamo.table_spec(resolve_settings({}, {}, {"billing_mode": "PAY_PER_REQUEST", "table_name": "other"}))
    arguments = spec.create_arguments()
    assert (arguments["TableName"], arguments["BillingMode"]) == ("other", "PAY_PER_REQUEST")
    assert "ProvisionedThroughput" not in arguments
    assert "ProvisionedThroughput" not in arguments["GlobalSecondaryIndexes"][0]


def test_plan_creates_a_missing_table():
    plan = dynamo.plan_table(TableSpec("t"), None, recreate=False)
    assert changes(plan) == [Change.CREATE_TABLE] and not plan.differences


def test_plan_leaves_a_matching_table_alone():
    spec = TableSpec("t")
    plan = dynamo.plan_table(spec, described(spec), recreate=True)
    assert plan.unchanged and plan.describe() == "none"


def test_plan_treats_an_always_provisioned_table_without_billing_summary_as_provisioned():
    spec = TableSpec("t")
    description = described(spec)
    del description["BillingModeSummary"]
    assert dynamo.plan_table(spec, description).unchanged


def test_plan_adds_a_missing_index_and_enables_the_stream_in_place():
    spec = TableSpec("t")
    plan = dynamo.plan_table(spec, described(spec, GlobalSecondaryIndexes=[], StreamSpecification=None))
    assert changes(plan) == [Change.CREATE_INDEX, Change.ENABLE_STREAM]
    assert [d.what for d in plan.differences] == ["index message-group-sk-index", "stream"]
    assert "missing" in plan.describe() and "disabled" in plan.describe()
    assert not plan.blocked


def test_plan_replaces_an_index_with_another_projection():
    spec = TableSpec("t")
    index = {**spec.index_definition(), "Projection": {"ProjectionType": "KEYS_ONLY"}}
    plan = dynamo.plan_table(spec, described(spec, GlobalSecondaryIndexes=[index]))
    assert changes(plan) == [Change.DELETE_INDEX, Change.CREATE_INDEX]
    assert "projection KEYS_ONLY" in str(plan.differences[0])


def test_plan_switches_the_stream_view_type_by_disabling_first():
    spec = TableSpec("t")
    stream = {"StreamEnabled": True, "StreamViewType": "KEYS_ONLY"}
    plan = dynamo.plan_table(spec, described(spec, StreamSpecification=stream))
    assert changes(plan) == [Change.DISABLE_STREAM, Change.ENABLE_STREAM]


def test_plan_changes_billing_and_gives_capacity_to_the_indexes_that_stay():
    spec = TableSpec("t")
    other = {"IndexName": "other", "KeySchema": [{"AttributeName": "sk", "KeyType": "HASH"}],
             "Projection": {"ProjectionType": "ALL"}, "IndexStatus": "ACTIVE"}
    description = described(replace(spec, billing_mode="PAY_PER_REQUEST"))
    description["GlobalSecondaryIndexes"].append(other)
    plan = dynamo.plan_table(spec, description)
    assert plan.actions == (TableAction(Change.SET_BILLING, ("message-group-sk-index", "other")),)
    arguments = spec.update_arguments(plan.actions[0])
    assert arguments["BillingMode"] == "PROVISIONED"
    assert [u["Update"]["IndexName"] for u in arguments["GlobalSecondaryIndexUpdates"]] == [
        "message-group-sk-index", "other"]


def test_plan_orders_repairs_so_a_replaced_index_is_dropped_before_billing_changes():
    spec = TableSpec("t")
    stale_index = {**spec.index_definition(), "Projection": {"ProjectionType": "KEYS_ONLY"}}
    description = described(replace(spec, billing_mode="PAY_PER_REQUEST"), GlobalSecondaryIndexes=[stale_index],
                            StreamSpecification={"StreamEnabled": False})
    plan = dynamo.plan_table(spec, description)
    assert changes(plan) == [Change.DELETE_INDEX, Change.SET_BILLING, Change.CREATE_INDEX, Change.ENABLE_STREAM]
    assert plan.actions[1].indexes == ()


def test_plan_blocks_on_other_keys_unless_recreating():
    spec = TableSpec("t")
    keys = [{"AttributeName": "id", "KeyType": "HASH"}]
    description = described(spec, KeySchema=keys, AttributeDefinitions=[{"AttributeName": "id",
                                                                          "AttributeType": "N"}])
    plan = dynamo.plan_table(spec, description, recreate=False)
    assert not plan.actions
    assert [d.what for d in plan.blocked] == ["key schema"]
    assert "expected pk (S) HASH, sk (S) RANGE, found id (N) HASH" in str(plan.blocked[0])
    recreate = dynamo.plan_table(spec, description, recreate=True)
    assert changes(recreate) == [Change.DELETE_TABLE, Change.CREATE_TABLE] and not recreate.blocked


def test_update_arguments_for_each_repair():
    spec = TableSpec("t", billing_mode="PAY_PER_REQUEST")
    create = spec.update_arguments(TableAction(Change.CREATE_INDEX))
    assert create["GlobalSecondaryIndexUpdates"][0]["Create"]["IndexName"] == "message-group-sk-index"
    assert {"AttributeName": "message_group_uuid", "AttributeType": "S"} in create["AttributeDefinitions"]
    assert spec.update_arguments(TableAction(Change.SET_BILLING)) == {"TableName": "t",
                                                                       "BillingMode": "PAY_PER_REQUEST"}
    assert spec.update_arguments(TableAction(Change.DISABLE_STREAM))["StreamSpecification"] == {
        "StreamEnabled": False}
    with pytest.raises(ValueError):
        spec.update_arguments(TableAction(Change.CREATE_TABLE))


SPAN = timedelta(days=3)


def test_choose_epoch_without_a_record_ends_the_timeline_now():
    assert dynamo.choose_epoch(None, NOW, SPAN) == datetime(2026, 11, 20, 17, 30, tzinfo=UTC)


def test_choose_epoch_reuses_a_record_that_still_fits():
    recorded = datetime(2026, 6, 1, tzinfo=UTC)
    assert dynamo.choose_epoch(recorded.isoformat(), NOW, SPAN) == recorded


@pytest.mark.parametrize("recorded", [
    "2025-12-30T00:00:00+00:00",  # last year: patterns A and B would not see it
    "2026-11-22T00:00:00+00:00",  # its last messages would lie in the future
    "2026-12-01T00:00:00+00:00",  # in the future
    "2026-06-01T00:00:00",  # naive: ambiguous
    "yesterday",
])
def test_choose_epoch_replaces_a_record_that_no_longer_fits(recorded):
    assert dynamo.choose_epoch(recorded, NOW, SPAN) == datetime(2026, 11, 20, 17, 30, tzinfo=UTC)


def test_choose_epoch_never_starts_before_new_year():
    early = datetime(2026, 1, 2, 8, 0, tzinfo=UTC)
    new_year = datetime(2026, 1, 1, tzinfo=UTC)
    assert dynamo.choose_epoch(None, early, SPAN) == new_year
    # the clamped epoch is kept on the next run, though its end still lies ahead
    assert dynamo.choose_epoch(new_year.isoformat(), early + timedelta(hours=1), SPAN) == new_year


def test_epoch_is_current_follows_choose_epoch(fixtures):
    span = dynamo.seed_span(fixtures.conversations)
    fitting = (NOW - span - timedelta(days=1)).isoformat()
    assert dynamo.epoch_is_current(fitting, fixtures.conversations, now=NOW)
    assert not dynamo.epoch_is_current((NOW - span + timedelta(hours=1)).isoformat(), fixtures.conversations, now=NOW)
    assert not dynamo.epoch_is_current(None, fixtures.conversations, now=NOW)


def test_parse_synthetic():
    assert dynamo.parse_synthetic("1000:100") == dynamo.SyntheticSpec(1000, 100)
    assert dynamo.SyntheticSpec(3, 4).item_count == 18


@pytest.mark.parametrize("text", ["abc", "0:5", "5", "5:0", "-1:3", "", "1:1:1", "500000:1"])
def test_parse_synthetic_rejects_bad_values_naming_them(text):
    with pytest.raises(InputError, match="--synthetic"):
        dynamo.parse_synthetic(text)


def test_fixture_conversations_follow_each_other_and_name_missing_users(fixtures):
    users = fixture_users(fixtures)
    placed = dynamo.fixture_conversations(fixtures.conversations, users)
    assert placed[1].start == placed[0].end + dynamo.GAP
    assert placed[-1].end == dynamo.seed_span(fixtures.conversations)
    del users["noor_h"]
    with pytest.raises(InputError, match="noor_h.*db.seed"):
        dynamo.fixture_conversations(fixtures.conversations, users)


def test_synthetic_conversations_never_share_a_users_group_sort_key():
    items = [i for c in dynamo.synthetic_conversations(dynamo.SyntheticSpec(4, 3), timedelta(0))
             for i in c.items(NOW)]
    assert len(items) == 4 * 5
    keys = [(i["pk"], i["sk"]) for i in items]
    assert len(set(keys)) == len(keys)
    assert items[0]["user_handle"] == "synth_00001"


def test_seed_record_round_trips_through_meta_values():
    record = dynamo.SeedRecord(NOW, ("a", "b"), "f" * 64, dynamo.SyntheticSpec(2, 3), timedelta(minutes=90))
    assert dynamo.SeedRecord.from_meta(record.meta_values()) == record
    assert len(list(record.fixture_groups())) == 2
    assert dynamo.SeedRecord.from_meta({DDB_SEED_EPOCH: NOW.isoformat(), DDB_SEED_LAYOUT: "{"}) is None


def test_stale_synthetic_keys_are_the_old_keys_no_longer_written():
    old_epoch, start = NOW - timedelta(days=2), timedelta(minutes=10)
    previous = dynamo.SeedRecord(old_epoch, (), "f", dynamo.SyntheticSpec(3, 4), start)
    assert list(dynamo.stale_synthetic_keys(previous, dynamo.SyntheticSpec(3, 4), old_epoch, start)) == []
    shrunk = list(dynamo.stale_synthetic_keys(previous, dynamo.SyntheticSpec(2, 4), old_epoch, start))
    assert len(shrunk) == 6 and all(dynamo.synthetic_group_uuid(3) in pk or pk.startswith("GRP#") for pk, _ in shrunk)
    moved = set(dynamo.stale_synthetic_keys(previous, dynamo.SyntheticSpec(3, 4), NOW, start))
    old_keys = {(i["pk"], i["sk"]) for c in dynamo.synthetic_conversations(previous.synthetic, start)
                for i in c.items(old_epoch)}
    assert moved == old_keys


# --- the real moto server -----------------------------------------------------------------


@pytest.fixture
def spec(table_name: str) -> TableSpec:
    return replace(dynamo.table_spec(resolve_settings({}, {}, {})), name=table_name)


@pytest.fixture
def table(endpoints: Endpoints, spec: TableSpec) -> TableSpec:
    dynamo.schema_load(endpoints, spec)
    return spec


def epoch_for(fixtures: Fixtures, synthetic: dynamo.SyntheticSpec | None = None) -> datetime:
    return dynamo.choose_epoch(None, datetime.now(UTC), dynamo.seed_span(fixtures.conversations, synthetic))


def all_keys(endpoints: Endpoints, table: str) -> set[tuple[str, str]]:
    return {(i["pk"], i["sk"]) for i in dynamo.scan_items(endpoints, table)}


def test_schema_load_creates_then_reports_unchanged(endpoints, spec):
    first = dynamo.schema_load(endpoints, spec)
    second = dynamo.schema_load(endpoints, spec)
    assert (first.action, second.action) == (Action.CREATED, Action.UNCHANGED)
    description = dynamo.describe_table(endpoints, spec.name)
    assert description["TableStatus"] == "ACTIVE"
    assert description["GlobalSecondaryIndexes"][0]["IndexStatus"] == "ACTIVE"
    assert description["StreamSpecification"]["StreamViewType"] == "NEW_AND_OLD_IMAGES"


def test_schema_load_repairs_a_table_without_index_and_stream(endpoints, spec):
    arguments = spec.create_arguments()
    del arguments["GlobalSecondaryIndexes"], arguments["StreamSpecification"]
    arguments["AttributeDefinitions"] = [d for d in arguments["AttributeDefinitions"]
                                         if d["AttributeName"] in ("pk", "sk")]
    endpoints.client("dynamodb").create_table(**arguments)
    result = dynamo.schema_load(endpoints, spec)
    assert result.action is Action.UPDATED
    assert "create index" in result.detail and "enable stream" in result.detail
    assert dynamo.plan_table(spec, dynamo.describe_table(endpoints, spec.name)).unchanged


def test_schema_load_switches_billing_in_place(endpoints, spec):
    dynamo.schema_load(endpoints, spec)
    result = dynamo.schema_load(endpoints, replace(spec, billing_mode="PAY_PER_REQUEST"))
    assert (result.action, result.detail) == (Action.UPDATED, f"table {spec.name}: set billing mode")


def test_schema_load_refuses_other_keys_then_recreates(endpoints, spec):
    endpoints.client("dynamodb").create_table(
        TableName=spec.name, AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}], BillingMode="PAY_PER_REQUEST")
    with pytest.raises(DriftError) as refused:
        dynamo.schema_load(endpoints, spec)
    message = str(refused.value)
    assert "key schema: expected pk (S) HASH, sk (S) RANGE, found id (S) HASH (cannot change in place)" in message
    assert "stream: expected enabled, NEW_AND_OLD_IMAGES, found disabled\n" in message
    assert "--recreate" in message
    assert dynamo.describe_table(endpoints, spec.name)["KeySchema"][0]["AttributeName"] == "id"
    recreated = dynamo.schema_load(endpoints, spec, recreate=True)
    assert recreated.action is Action.CREATED and "dropped and recreated" in recreated.detail
    assert dynamo.plan_table(spec, dynamo.describe_table(endpoints, spec.name)).unchanged


def test_drop_missing_table_is_not_an_error(endpoints, table_name):
    assert dynamo.drop_table(endpoints, table_name).action is Action.UNCHANGED


def test_drop_and_list_tables(endpoints, table):
    assert table.name in {s.name for s in dynamo.list_tables(endpoints)}
    assert dynamo.drop_table(endpoints, table.name).action is Action.REMOVED
    assert dynamo.describe_table(endpoints, table.name) is None


def test_seed_twice_writes_the_same_keys(endpoints, table, fixtures):
    users, epoch = fixture_users(fixtures), epoch_for(fixtures)
    first = dynamo.seed_conversations(endpoints, table, fixtures.conversations, users, epoch)
    keys = all_keys(endpoints, table.name)
    expected = sum(len(c.messages) + 2 for c in fixtures.conversations)
    assert first.writes == len(keys) == expected
    dynamo.seed_conversations(endpoints, table, fixtures.conversations, users, epoch, prune=True)
    assert all_keys(endpoints, table.name) == keys


def test_seed_with_a_new_epoch_removes_the_old_items_but_not_the_apps(endpoints, table, fixtures):
    users, epoch = fixture_users(fixtures), epoch_for(fixtures)
    dynamo.seed_conversations(endpoints, table, fixtures.conversations, users, epoch)
    group, sender = fixtures.conversations[0].group_uuid, users[fixtures.conversations[0].members[0]]
    apps = message_item(group, str(uuid.uuid4()), sender, "sent from the app", "2026-01-01T00:00:00.000000+00:00")
    endpoints.client("dynamodb").put_item(TableName=table.name, Item=to_attributes(apps))
    dynamo.seed_conversations(endpoints, table, fixtures.conversations, users, epoch - timedelta(days=1),
                              prune=True)
    keys = all_keys(endpoints, table.name)
    expected = sum(len(c.messages) + 2 for c in fixtures.conversations) + 1
    assert len(keys) == expected
    assert (apps["pk"], apps["sk"]) in keys


def test_reseed_keeps_a_group_the_app_moved_on_once_per_member(endpoints, table, fixtures):
    """Pattern E moved the group to the app's newer message; reseeding (same or new epoch) must not regress it."""
    from bootstrap.messaging import Messages

    users, epoch = fixture_users(fixtures), epoch_for(fixtures)
    dynamo.seed_conversations(endpoints, table, fixtures.conversations, users, epoch)
    conversation = fixtures.conversations[0]
    messages = Messages(endpoints.client("dynamodb"), table.name)
    sent = messages.create_message(conversation.group_uuid, users[conversation.members[0]], "newer, from the app")
    record = {"eventName": "INSERT", "dynamodb": {"Keys": to_attributes({"pk": sent["pk"], "sk": sent["sk"]}),
                                                  "NewImage": to_attributes(sent), "SequenceNumber": "1"}}
    messages.apply_stream_records([record])

    for reseed_epoch, prune in ((epoch, False), (epoch - timedelta(hours=1), True)):
        dynamo.seed_conversations(endpoints, table, fixtures.conversations, users, reseed_epoch, prune=prune)
        for handle in conversation.members:
            groups = [g for g in messages.list_message_groups(users[handle].uuid, limit=50).items
                      if g["message_group_uuid"] == conversation.group_uuid]
            assert [(g["sk"], g["message"]) for g in groups] == [(sent["sk"], "newer, from the app")]


def test_seed_clears_groups_no_longer_seeded(endpoints, table, fixtures):
    users, epoch = fixture_users(fixtures), epoch_for(fixtures)
    dynamo.seed_conversations(endpoints, table, fixtures.conversations, users, epoch)
    previous = dynamo.SeedRecord(epoch, tuple(c.id for c in fixtures.conversations), "earlier")
    dynamo.seed_conversations(endpoints, table, fixtures.conversations[:-1], users, epoch, prune=True,
                              earlier=(previous,))
    assert len(all_keys(endpoints, table.name)) == sum(len(c.messages) + 2 for c in fixtures.conversations[:-1])


def test_seed_removes_synthetic_items_of_a_larger_earlier_run(endpoints, table, fixtures):
    users, epoch = fixture_users(fixtures), epoch_for(fixtures, dynamo.SyntheticSpec(6, 4))
    dynamo.seed_conversations(endpoints, table, fixtures.conversations, users, epoch,
                              synthetic=dynamo.SyntheticSpec(6, 4))
    start = dynamo.seed_span(fixtures.conversations) + dynamo.GAP
    previous = dynamo.SeedRecord(epoch, tuple(c.id for c in fixtures.conversations), "earlier",
                                 dynamo.SyntheticSpec(6, 4), start)
    result = dynamo.seed_conversations(endpoints, table, fixtures.conversations, users, epoch + timedelta(hours=1),
                                       synthetic=dynamo.SyntheticSpec(4, 4), prune=True, earlier=(previous,))
    expected = sum(len(c.messages) + 2 for c in fixtures.conversations) + 4 * 6
    assert len(all_keys(endpoints, table.name)) == expected
    assert "removed" in result.detail


def test_seed_needs_the_table(endpoints, spec, fixtures):
    with pytest.raises(BootstrapError, match="schema-load"):
        dynamo.seed_conversations(endpoints, spec, fixtures.conversations, fixture_users(fixtures), NOW)


@dataclass(frozen=True)
class UnprocessedEndpoints(Endpoints):
    """Endpoints whose DynamoDB client holds back the last items of each BatchWriteItem.

    A stand-in is needed because moto never returns UnprocessedItems; only
    ``batch_write_item`` is wrapped, everything else goes to the real moto server.
    """

    refusals: int = 1  # how often the same items are held back before they go through
    held_back: int = 2

    def client(self, service_name: str) -> Any:
        return _HoldingBackClient(super().client(service_name), self.refusals, self.held_back)


class _HoldingBackClient:
    def __init__(self, client: Any, refusals: int, held_back: int) -> None:
        self._client, self._refusals, self._held_back = client, refusals, held_back
        self._refused: dict[str, int] = {}

    def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:
        ((table, requests),) = RequestItems.items()
        last = next(iter(requests[-1].values()))
        key = str(last.get("Item", last.get("Key")))
        self._refused[key] = self._refused.get(key, 0) + 1
        if self._refused[key] > self._refusals:
            return self._client.batch_write_item(RequestItems=RequestItems)
        written, held = requests[: -self._held_back], requests[-self._held_back:]
        if written:
            self._client.batch_write_item(RequestItems={table: written})
        return {"UnprocessedItems": {table: held}}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def wrapped(endpoints: Endpoints, refusals: int) -> Endpoints:
    return UnprocessedEndpoints(endpoints.postgres_url, endpoints.aws_endpoint_url, endpoints.region,
                                refusals=refusals)


def test_seed_retries_unprocessed_items(endpoints, table, fixtures):
    """Uses a wrapper client (see UnprocessedEndpoints): moto never returns UnprocessedItems."""
    flaky = wrapped(endpoints, refusals=2)
    result = dynamo.seed_conversations(flaky, table, fixtures.conversations, fixture_users(fixtures),
                                       epoch_for(fixtures), retry=FAST_RETRY)
    expected = sum(len(c.messages) + 2 for c in fixtures.conversations)
    assert result.writes == len(all_keys(endpoints, table.name)) == expected


def test_seed_fails_clearly_when_items_stay_unprocessed(endpoints, table, fixtures):
    """Uses a wrapper client (see UnprocessedEndpoints): moto never returns UnprocessedItems."""
    stuck = wrapped(endpoints, refusals=10**6)
    with pytest.raises(BootstrapError, match=r"^2 items were not written .* after 3 attempts .*; 23 of 125"):
        dynamo.seed_conversations(stuck, table, fixtures.conversations, fixture_users(fixtures),
                                  epoch_for(fixtures), retry=FAST_RETRY, workers=1)


def test_patterns_a_and_b_read_the_seeded_data(endpoints, table, fixtures):
    users = fixture_users(fixtures)
    dynamo.seed_conversations(endpoints, table, fixtures.conversations, users, epoch_for(fixtures))
    conversation = fixtures.conversations[0]
    listing = dynamo.get_conversation(endpoints, table, conversation.group_uuid)
    assert [i["message"] for i in listing.items] == [m.text for m in conversation.messages[-20:]]
    assert [i["user_handle"] for i in listing.items] == [m.sender for m in conversation.messages[-20:]]
    assert listing.consumed_capacity is not None  # moto reports it

    owner = users[conversation.members[0]]
    groups = dynamo.list_conversations(endpoints, table, owner.uuid).items
    mine = [c for c in fixtures.conversations if owner.handle in c.members]
    assert [g["message_group_uuid"] for g in groups] == [c.group_uuid for c in reversed(mine)]
    first = next(g for g in groups if g["message_group_uuid"] == conversation.group_uuid)
    assert (first["user_handle"], first["message"]) == (conversation.members[1], conversation.messages[-1].text)


def test_scan_follows_pages_and_honours_the_limit(endpoints, table, fixtures):
    dynamo.seed_conversations(endpoints, table, fixtures.conversations, fixture_users(fixtures), epoch_for(fixtures))
    expected = sum(len(c.messages) + 2 for c in fixtures.conversations)
    assert len(list(dynamo.scan_items(endpoints, table.name, page_size=10))) == expected
    assert len(list(dynamo.scan_items(endpoints, table.name, limit=15, page_size=10))) == 15


def test_synthetic_seed_writes_every_item(endpoints, table, fixtures):
    synthetic = dynamo.SyntheticSpec(50, 20)
    result = dynamo.seed_conversations(endpoints, table, fixtures.conversations, fixture_users(fixtures),
                                       epoch_for(fixtures, synthetic), synthetic=synthetic)
    expected = sum(len(c.messages) + 2 for c in fixtures.conversations) + 50 * 22
    assert result.writes == expected
    count = endpoints.client("dynamodb").scan(TableName=table.name, Select="COUNT")["Count"]
    assert count == expected


def test_seed_from_fixtures_remembers_the_epoch_in_postgres(endpoints, stack, fixtures):
    """The task-level path: users and the epoch come from the test's own Postgres database."""
    from bootstrap.pg.bookkeeping import read_meta
    from bootstrap.pg.schema import load_schema
    from bootstrap.pg.seed import seed

    settings = replace(stack.settings, table_name=f"cruddur-messages-{uuid.uuid4().hex[:8]}")
    load_schema(endpoints)
    seed(endpoints, fixtures)
    dynamo.schema_load(endpoints, dynamo.table_spec(settings))
    first = dynamo.seed_from_fixtures(endpoints, settings, fixtures)
    recorded = read_meta(endpoints.postgres_url)[DDB_SEED_EPOCH]
    second = dynamo.seed_from_fixtures(endpoints, settings, fixtures)
    assert read_meta(endpoints.postgres_url)[DDB_SEED_EPOCH] == recorded
    assert first.writes == second.writes == len(all_keys(endpoints, settings.table_name))
    assert dynamo.epoch_is_current(recorded, fixtures.conversations)
