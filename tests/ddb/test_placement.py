"""bootstrap.ddb.placement: the seed's timeline and records, with plain values."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bootstrap.ddb.placement import (
    GAP,
    SeedRecord,
    SyntheticSpec,
    choose_epoch,
    epoch_is_current,
    fixture_conversations,
    parse_synthetic,
    seed_span,
    stale_synthetic_keys,
    synthetic_conversations,
    synthetic_group_uuid,
)
from bootstrap.errors import InputError
from bootstrap.meta import DDB_SEED_EPOCH, DDB_SEED_LAYOUT
from tests.ddb.conftest import NOW, UTC, fixture_users

SPAN = timedelta(days=3)


def test_choose_epoch_without_a_record_ends_the_timeline_now():
    assert choose_epoch(None, NOW, SPAN) == datetime(2026, 11, 20, 17, 30, tzinfo=UTC)


def test_choose_epoch_reuses_a_record_that_still_fits():
    recorded = datetime(2026, 6, 1, tzinfo=UTC)
    assert choose_epoch(recorded.isoformat(), NOW, SPAN) == recorded


@pytest.mark.parametrize("recorded", [
    "2025-12-30T00:00:00+00:00",  # last year: patterns A and B would not see it
    "2026-11-22T00:00:00+00:00",  # its last messages would lie in the future
    "2026-12-01T00:00:00+00:00",  # in the future
    "2026-06-01T00:00:00",  # naive: ambiguous
    "yesterday",
])
def test_choose_epoch_replaces_a_record_that_no_longer_fits(recorded):
    assert choose_epoch(recorded, NOW, SPAN) == datetime(2026, 11, 20, 17, 30, tzinfo=UTC)


def test_choose_epoch_never_starts_before_new_year():
    early = datetime(2026, 1, 2, 8, 0, tzinfo=UTC)
    new_year = datetime(2026, 1, 1, tzinfo=UTC)
    assert choose_epoch(None, early, SPAN) == new_year
    # the clamped epoch is kept on the next run, though its end still lies ahead
    assert choose_epoch(new_year.isoformat(), early + timedelta(hours=1), SPAN) == new_year


def test_epoch_is_current_follows_choose_epoch(fixtures):
    span = seed_span(fixtures.conversations)
    fitting = (NOW - span - timedelta(days=1)).isoformat()
    assert epoch_is_current(fitting, fixtures.conversations, now=NOW)
    assert not epoch_is_current((NOW - span + timedelta(hours=1)).isoformat(), fixtures.conversations, now=NOW)
    assert not epoch_is_current(None, fixtures.conversations, now=NOW)


def test_parse_synthetic():
    assert parse_synthetic("1000:100") == SyntheticSpec(1000, 100)
    assert SyntheticSpec(3, 4).item_count == 18


@pytest.mark.parametrize("text", ["abc", "0:5", "5", "5:0", "-1:3", "", "1:1:1", "500000:1"])
def test_parse_synthetic_rejects_bad_values_naming_them(text):
    with pytest.raises(InputError, match="--synthetic"):
        parse_synthetic(text)


def test_fixture_conversations_follow_each_other_and_name_missing_users(fixtures):
    users = fixture_users(fixtures)
    placed = fixture_conversations(fixtures.conversations, users)
    assert placed[1].start == placed[0].end + GAP
    assert placed[-1].end == seed_span(fixtures.conversations)
    del users["noor_h"]
    with pytest.raises(InputError, match="noor_h.*db.seed"):
        fixture_conversations(fixtures.conversations, users)


def test_synthetic_conversations_never_share_a_users_group_sort_key():
    items = [i for c in synthetic_conversations(SyntheticSpec(4, 3), timedelta(0))
             for i in c.items(NOW)]
    assert len(items) == 4 * 5
    keys = [(i["pk"], i["sk"]) for i in items]
    assert len(set(keys)) == len(keys)
    assert items[0]["user_handle"] == "synth_00001"


def test_seed_record_round_trips_through_meta_values():
    record = SeedRecord(NOW, ("a", "b"), "f" * 64, SyntheticSpec(2, 3), timedelta(minutes=90))
    assert SeedRecord.from_meta(record.meta_values()) == record
    assert len(list(record.fixture_groups())) == 2
    assert SeedRecord.from_meta({DDB_SEED_EPOCH: NOW.isoformat(), DDB_SEED_LAYOUT: "{"}) is None


def test_stale_synthetic_keys_are_the_old_keys_no_longer_written():
    old_epoch, start = NOW - timedelta(days=2), timedelta(minutes=10)
    previous = SeedRecord(old_epoch, (), "f", SyntheticSpec(3, 4), start)
    assert list(stale_synthetic_keys(previous, SyntheticSpec(3, 4), old_epoch, start)) == []
    shrunk = list(stale_synthetic_keys(previous, SyntheticSpec(2, 4), old_epoch, start))
    assert len(shrunk) == 6 and all(synthetic_group_uuid(3) in pk or pk.startswith("GRP#") for pk, _ in shrunk)
    moved = set(stale_synthetic_keys(previous, SyntheticSpec(3, 4), NOW, start))
    old_keys = {(i["pk"], i["sk"]) for c in synthetic_conversations(previous.synthetic, start)
                for i in c.items(old_epoch)}
    assert moved == old_keys
