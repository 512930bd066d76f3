"""bootstrap.ddb.reads: patterns A and B and the scan read what the seed wrote, on the session's real engine."""

from __future__ import annotations

import pytest

from bootstrap.ddb.reads import get_conversation, list_conversations, scan_items
from bootstrap.ddb.seed import seed_conversations
from tests.ddb.conftest import epoch_for, fixture_users

pytestmark = pytest.mark.both_engines


def test_patterns_a_and_b_read_the_seeded_data(endpoints, table, fixtures):
    users = fixture_users(fixtures)
    seed_conversations(endpoints, table, fixtures.conversations, users, epoch_for(fixtures))
    conversation = fixtures.conversations[0]
    listing = get_conversation(endpoints, table, conversation.group_uuid)
    assert [i["message"] for i in listing.items] == [m.text for m in conversation.messages[-20:]]
    assert [i["user_handle"] for i in listing.items] == [m.sender for m in conversation.messages[-20:]]
    assert listing.consumed_capacity is not None  # moto reports it

    owner = users[conversation.members[0]]
    groups = list_conversations(endpoints, table, owner.uuid).items
    mine = [c for c in fixtures.conversations if owner.handle in c.members]
    assert [g["message_group_uuid"] for g in groups] == [c.group_uuid for c in reversed(mine)]
    first = next(g for g in groups if g["message_group_uuid"] == conversation.group_uuid)
    assert (first["user_handle"], first["message"]) == (conversation.members[1], conversation.messages[-1].text)


def test_scan_follows_pages_and_honours_the_limit(endpoints, table, fixtures):
    seed_conversations(endpoints, table, fixtures.conversations, fixture_users(fixtures), epoch_for(fixtures))
    expected = sum(len(c.messages) + 2 for c in fixtures.conversations)
    assert len(list(scan_items(endpoints, table.name, page_size=10))) == expected
    assert len(list(scan_items(endpoints, table.name, limit=15, page_size=10))) == 15
