"""bootstrap.ddb.seed: writing and pruning the seed on the session's real engine (and Postgres for the task path)."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import timedelta

import pytest

from bootstrap.ddb.placement import (
    GAP, SeedRecord, SyntheticSpec, epoch_is_current, fixture_conversations, key_of, seed_span,
)
from bootstrap.ddb.schema import schema_load
from bootstrap.ddb.seed import seed_conversations, seed_from_fixtures
from bootstrap.ddb.table import message_item, table_spec, to_attributes
from bootstrap.errors import BootstrapError
from bootstrap.fixtures.model import ddb_seed_fingerprint
from bootstrap.meta import DDB_SEED_EPOCH, DDB_SEED_FINGERPRINT
from tests.ddb.conftest import NOW, all_keys, epoch_for, fixture_users

pytestmark = pytest.mark.both_engines


def test_seed_twice_writes_the_same_keys(endpoints, table, fixtures):
    users, epoch = fixture_users(fixtures), epoch_for(fixtures)
    first = seed_conversations(endpoints, table, fixtures.conversations, users, epoch)
    keys = all_keys(endpoints, table.name)
    expected = sum(len(c.messages) + 2 for c in fixtures.conversations)
    assert first.writes == len(keys) == expected
    seed_conversations(endpoints, table, fixtures.conversations, users, epoch, prune=True)
    assert all_keys(endpoints, table.name) == keys


def test_seed_with_a_new_epoch_removes_the_old_items_but_not_the_apps(endpoints, table, fixtures):
    users, epoch = fixture_users(fixtures), epoch_for(fixtures)
    seed_conversations(endpoints, table, fixtures.conversations, users, epoch)
    group, sender = fixtures.conversations[0].group_uuid, users[fixtures.conversations[0].members[0]]
    apps = message_item(group, str(uuid.uuid4()), sender, "sent from the app", "2026-01-01T00:00:00.000000+00:00")
    endpoints.client("dynamodb").put_item(TableName=table.name, Item=to_attributes(apps))
    earlier = epoch - timedelta(days=1)
    seed_conversations(endpoints, table, fixtures.conversations, users, earlier, prune=True)
    # Every item where the earlier epoch places it: the old group items, whose last message now sorts
    # after the new one, are the seed's own and must not pass for groups the app moved on.
    placed = fixture_conversations(fixtures.conversations, users)
    wanted = {key_of(item) for conversation in placed for item in conversation.items(earlier)}
    assert all_keys(endpoints, table.name) == wanted | {(apps["pk"], apps["sk"])}


def test_reseed_keeps_a_group_the_app_moved_on_once_per_member(endpoints, table, fixtures):
    """Pattern E moved the group to the app's newer message; reseeding (same or new epoch) must not regress it."""
    from bootstrap.messaging import Messages

    users, epoch = fixture_users(fixtures), epoch_for(fixtures)
    seed_conversations(endpoints, table, fixtures.conversations, users, epoch)
    conversation = fixtures.conversations[0]
    messages = Messages(endpoints.client("dynamodb"), table.name)
    sent = messages.create_message(conversation.group_uuid, users[conversation.members[0]], "newer, from the app")
    record = {"eventName": "INSERT", "dynamodb": {"Keys": to_attributes({"pk": sent["pk"], "sk": sent["sk"]}),
                                                  "NewImage": to_attributes(sent), "SequenceNumber": "1"}}
    messages.apply_stream_records([record])

    for reseed_epoch, prune in ((epoch, False), (epoch - timedelta(hours=1), True)):
        seed_conversations(endpoints, table, fixtures.conversations, users, reseed_epoch, prune=prune)
        for handle in conversation.members:
            groups = [g for g in messages.list_message_groups(users[handle].uuid, limit=50).items
                      if g["message_group_uuid"] == conversation.group_uuid]
            assert [(g["sk"], g["message"]) for g in groups] == [(sent["sk"], "newer, from the app")]


def test_seed_clears_groups_no_longer_seeded(endpoints, table, fixtures):
    users, epoch = fixture_users(fixtures), epoch_for(fixtures)
    seed_conversations(endpoints, table, fixtures.conversations, users, epoch)
    previous = SeedRecord(epoch, tuple(c.id for c in fixtures.conversations), "earlier")
    seed_conversations(endpoints, table, fixtures.conversations[:-1], users, epoch, prune=True,
                              earlier=(previous,))
    assert len(all_keys(endpoints, table.name)) == sum(len(c.messages) + 2 for c in fixtures.conversations[:-1])


def test_seed_removes_synthetic_items_of_a_larger_earlier_run(endpoints, table, fixtures):
    users, epoch = fixture_users(fixtures), epoch_for(fixtures, SyntheticSpec(6, 4))
    seed_conversations(endpoints, table, fixtures.conversations, users, epoch,
                              synthetic=SyntheticSpec(6, 4))
    start = seed_span(fixtures.conversations) + GAP
    previous = SeedRecord(epoch, tuple(c.id for c in fixtures.conversations), "earlier",
                                 SyntheticSpec(6, 4), start)
    result = seed_conversations(endpoints, table, fixtures.conversations, users, epoch + timedelta(hours=1),
                                       synthetic=SyntheticSpec(4, 4), prune=True, earlier=(previous,))
    expected = sum(len(c.messages) + 2 for c in fixtures.conversations) + 4 * 6
    assert len(all_keys(endpoints, table.name)) == expected
    assert "removed" in result.detail


def test_seed_needs_the_table(endpoints, spec, fixtures):
    with pytest.raises(BootstrapError, match="schema-load"):
        seed_conversations(endpoints, spec, fixtures.conversations, fixture_users(fixtures), NOW)


def test_synthetic_seed_writes_every_item(endpoints, table, fixtures):
    synthetic = SyntheticSpec(50, 20)
    result = seed_conversations(endpoints, table, fixtures.conversations, fixture_users(fixtures),
                                       epoch_for(fixtures, synthetic), synthetic=synthetic)
    expected = sum(len(c.messages) + 2 for c in fixtures.conversations) + 50 * 22
    assert result.writes == expected
    count = endpoints.client("dynamodb").scan(TableName=table.name, Select="COUNT")["Count"]
    assert count == expected


def test_a_new_table_is_written_without_reading_it_first(endpoints, table, fixtures):
    """`up` seeds the table ddb.schema-load just created: the same items, and no Scan or Query before them."""
    users, epoch = fixture_users(fixtures), epoch_for(fixtures)
    client = endpoints.client("dynamodb")
    operations: list[str] = []

    def heard(model, **_: object) -> None:
        operations.append(model.name)

    client.meta.events.register("before-call.dynamodb", heard)
    try:
        result = seed_conversations(endpoints, table, fixtures.conversations, users, epoch, prune=True,
                                    new_table=True)
    finally:
        client.meta.events.unregister("before-call.dynamodb", heard)
    assert set(operations) == {"DescribeTable", "BatchWriteItem"}
    placed = fixture_conversations(fixtures.conversations, users)
    assert all_keys(endpoints, table.name) == {key_of(item) for c in placed for item in c.items(epoch)}
    assert result.writes == sum(len(c.messages) + 2 for c in fixtures.conversations)


def test_seed_from_fixtures_remembers_the_epoch_in_postgres(endpoints, stack, fixtures):
    """The task-level path: users and the epoch come from the test's own Postgres database."""
    from bootstrap.pg.bookkeeping import read_meta
    from bootstrap.pg.schema import load_schema
    from bootstrap.pg.seed import seed

    settings = replace(stack.settings, table_name=f"cruddur-messages-{uuid.uuid4().hex[:8]}")
    load_schema(endpoints)
    seed(endpoints, fixtures)
    schema_load(endpoints, table_spec(settings))
    first = seed_from_fixtures(endpoints, settings, fixtures)
    recorded = read_meta(endpoints.postgres_url)[DDB_SEED_EPOCH]
    second = seed_from_fixtures(endpoints, settings, fixtures)
    assert read_meta(endpoints.postgres_url)[DDB_SEED_EPOCH] == recorded
    assert first.writes == second.writes == len(all_keys(endpoints, settings.table_name))
    assert epoch_is_current(recorded, fixtures.conversations)
    # The seed records its own fingerprint, so `invoke ddb.seed` leaves what `up` would.
    expected = ddb_seed_fingerprint(fixtures.conversations_fingerprint, fixtures.users_fingerprint)
    assert read_meta(endpoints.postgres_url)[DDB_SEED_FINGERPRINT] == expected
