"""Messaging patterns A-E: pure unit tests for item shapes, cursors and stream planning,
then integration tests against the session's real moto server (one table per test)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterator

import pytest

from bootstrap import messaging, streams
from bootstrap.ddb.table import format_time, group_item, message_item, to_attributes
from bootstrap.errors import BootstrapError, InputError
from bootstrap.messaging import (
    Messages,
    NewMessage,
    Replacement,
    StreamResult,
    decode_cursor,
    encode_cursor,
    plan_replacements,
    plan_stream_batch,
    validate_text,
)
from bootstrap.state import StateDir
from tests.messaging_helpers import ALICE, BOB, CAROL, T0, at, contract_table, scan

pytestmark = pytest.mark.both_engines


# --- pure ----------------------------------------------------------------------------


def test_validate_text() -> None:
    assert validate_text("x" * messaging.MAX_TEXT_LENGTH) == "x" * 1024
    for bad in ("", "   \n", "x" * 1025):
        with pytest.raises(InputError):
            validate_text(bad)


def test_cursor_round_trip_and_tampering() -> None:
    key = to_attributes({"pk": "MSG#g1", "sk": "2026-03-01T12:00:00.000000+00:00"})
    cursor = encode_cursor(key)
    assert cursor is not None and cursor.isascii() and "=" not in cursor
    assert decode_cursor(cursor, "MSG#g1") == key
    assert encode_cursor(None) is None and encode_cursor({}) is None
    with pytest.raises(InputError):
        decode_cursor(cursor, "MSG#other-group")
    for garbage in ("not base64!", "eyJ4IjoxfQ", ""):
        with pytest.raises(InputError):
            decode_cursor(garbage, "MSG#g1")


def _record(event: str, item: dict[str, str], sequence: int = 1) -> dict[str, Any]:
    change: dict[str, Any] = {"Keys": to_attributes({"pk": item["pk"], "sk": item["sk"]}), "SequenceNumber": str(sequence)}
    if event != "REMOVE":
        change["NewImage"] = to_attributes(item)
    return {"eventName": event, "dynamodb": change}


def test_plan_stream_batch_keeps_the_newest_message_per_group() -> None:
    older = message_item("g1", "m1", ALICE, "first", format_time(at(1)))
    newer = message_item("g1", "m2", BOB, "second", format_time(at(2)))
    other = message_item("g2", "m3", BOB, "elsewhere", format_time(at(0)))
    group = group_item(ALICE, BOB, "g1", "first", format_time(at(1)))
    records = [_record("INSERT", newer), _record("INSERT", older), _record("INSERT", other),
               _record("INSERT", group), _record("REMOVE", older), _record("MODIFY", older)]
    plan = plan_stream_batch(records)
    assert plan.latest == {"g1": NewMessage("g1", newer["sk"], "second"), "g2": NewMessage("g2", other["sk"], "elsewhere")}
    assert (plan.superseded, plan.ignored) == (1, 3)


def test_plan_replacements_only_moves_forward() -> None:
    items = [group_item(ALICE, BOB, "g1", "old", format_time(at(1))), group_item(BOB, ALICE, "g1", "new", format_time(at(3)))]
    (replacement,) = plan_replacements(items, NewMessage("g1", format_time(at(2)), "middle"))
    assert replacement.old == items[0]
    assert replacement.new == {**items[0], "sk": format_time(at(2)), "message": "middle"}
    assert [r.old for r in plan_replacements(items, NewMessage("g1", format_time(at(1)), "replay"))] == []


# --- against moto ----------------------------------------------------------------------


@pytest.fixture
def messages(endpoints, table_name: str) -> Iterator[Messages]:
    with contract_table(endpoints, table_name):
        yield Messages(endpoints.client("dynamodb"), table_name)


@pytest.fixture
def state(tmp_path: Path) -> StateDir:
    return StateDir(tmp_path / "worker-state")


def stream_records(endpoints, table_name: str) -> list[dict[str, Any]]:
    """Every record of the table's stream so far, read from the oldest."""
    client = endpoints.client("dynamodbstreams")
    arn = streams.latest_stream_arn(endpoints, table_name)
    records: list[dict[str, Any]] = []
    for shard in streams.list_shards(client, arn):
        iterator = client.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                             ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records.extend(client.get_records(ShardIterator=iterator)["Records"])
    return records


def test_d_c_stream_b_moves_both_members_to_the_new_message(endpoints, messages: Messages, state: StateDir) -> None:
    with_bob, first = messages.create_message_group(ALICE, BOB, "hi bob", now=at(1))
    with_carol, _ = messages.create_message_group(CAROL, ALICE, "hi alice", now=at(2))
    assert [g["message_group_uuid"] for g in messages.list_message_groups(ALICE.uuid, now=T0).items] == [with_carol, with_bob]

    reply = messages.create_message(with_bob, BOB, "hello alice", now=at(3))
    result = streams.drain_stream(endpoints, messages.table_name, state)

    # Only C's message moves a group. Skipped: D's 4 group items and 2 first messages (already the
    # groups' last), and the 4 records of the worker's own replacements, read in the same drain.
    assert result == StreamResult(applied=1, skipped=10)
    alice_groups = messages.list_message_groups(ALICE.uuid, now=T0).items
    assert [g["message_group_uuid"] for g in alice_groups] == [with_bob, with_carol]
    assert alice_groups[0] == group_item(ALICE, BOB, with_bob, "hello alice", reply["sk"])
    (bob_group,) = messages.list_message_groups(BOB.uuid, now=T0).items
    assert bob_group == group_item(BOB, ALICE, with_bob, "hello alice", reply["sk"])
    assert [m["message"] for m in messages.list_messages(with_bob, now=T0).items] == ["hi bob", "hello alice"]
    assert first["sk"] == format_time(at(1))


def test_same_batch_twice_changes_nothing(endpoints, messages: Messages) -> None:
    group, _ = messages.create_message_group(ALICE, BOB, "one", now=at(1))
    messages.create_message(group, ALICE, "two", now=at(2))
    batch = stream_records(endpoints, messages.table_name)

    assert messages.apply_stream_records(batch).applied == 1
    after_first = scan(messages)
    assert messages.apply_stream_records(batch) == StreamResult(applied=0, skipped=len(batch))
    assert scan(messages) == after_first


def test_older_record_after_newer_does_not_regress(endpoints, messages: Messages) -> None:
    group, _ = messages.create_message_group(ALICE, BOB, "one", now=at(1))
    messages.create_message(group, BOB, "two", now=at(2))
    latest = messages.create_message(group, ALICE, "three", now=at(3))
    two, three = [r for r in stream_records(endpoints, messages.table_name)
                  if r["eventName"] == "INSERT" and r["dynamodb"]["Keys"]["pk"]["S"].startswith("MSG#")][1:]

    assert messages.apply_stream_records([three]) == StreamResult(applied=1, skipped=0)
    assert messages.apply_stream_records([two]) == StreamResult(applied=0, skipped=1)
    for item in messages.group_items(group):
        assert (item["sk"], item["message"]) == (latest["sk"], "three")


def test_d_writes_nothing_when_invalid_or_conflicting(messages: Messages) -> None:
    for bad in ("", " ", "x" * 1025):
        with pytest.raises(InputError):
            messages.create_message_group(ALICE, BOB, bad, now=at(1))
    with pytest.raises(InputError):
        messages.create_message_group(ALICE, ALICE, "me", now=at(1))
    assert scan(messages) == []

    # Bob already has an item at the very key D would write: the whole transaction is refused.
    blocker = group_item(BOB, CAROL, "g0", "taken", format_time(at(1)))
    messages.client.put_item(TableName=messages.table_name, Item=to_attributes(blocker))
    with pytest.raises(BootstrapError, match="nothing written"):
        messages.create_message_group(ALICE, BOB, "hi", now=at(1))
    assert scan(messages) == [blocker]


def test_c_validates_before_writing(messages: Messages) -> None:
    with pytest.raises(InputError):
        messages.create_message("g1", ALICE, "")
    assert scan(messages) == []


def test_a_pages_through_50_messages_with_cursors(messages: Messages) -> None:
    group, _ = messages.create_message_group(ALICE, BOB, "message 0", now=at(0))
    for n in range(1, 50):
        messages.create_message(group, (ALICE, BOB)[n % 2], f"message {n}", now=at(n))
    # Last year's message is outside pattern A's filter.
    messages.create_message(group, ALICE, "last year", now=T0.replace(year=T0.year - 1))

    pages, cursor = [], None
    while True:
        page = messages.list_messages(group, limit=20, cursor=cursor, now=T0)
        pages.append([m["message"] for m in page.items])
        cursor = page.cursor
        if cursor is None:
            break
    assert [len(p) for p in pages] == [20, 20, 10]
    for page_texts in pages:
        numbers = [int(text.split()[1]) for text in page_texts]
        assert numbers == sorted(numbers)
    assert sorted(int(t.split()[1]) for p in pages for t in p) == list(range(50))
    assert pages[0][-1] == "message 49"

    with pytest.raises(InputError):
        messages.list_messages("another-group", cursor=messages.list_messages(group, limit=5, now=T0).cursor)


def test_lambda_handler_applies_a_synthetic_event(endpoints, messages: Messages, monkeypatch: pytest.MonkeyPatch) -> None:
    group, _ = messages.create_message_group(ALICE, BOB, "one", now=at(1))
    new = message_item(group, "m-2", BOB, "from the lambda", format_time(at(5)))
    event = {"Records": [
        _record("INSERT", new, 10),
        _record("REMOVE", new, 11),
        _record("INSERT", group_item(ALICE, BOB, group, "x", format_time(at(9))), 12),
    ]}
    monkeypatch.setenv("TABLE_NAME", messages.table_name)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoints.aws_endpoint_url)

    assert messaging.lambda_handler(event, None) == {"applied": 1, "skipped": 2}
    assert {(i["sk"], i["message"]) for i in messages.group_items(group)} == {(new["sk"], "from the lambda")}


def test_replacement_never_clobbers_a_concurrent_change(messages: Messages) -> None:
    group, _ = messages.create_message_group(ALICE, BOB, "one", now=at(1))
    current = next(i for i in messages.group_items(group) if i["pk"] == f"GRP#{ALICE.uuid}")
    stale = {**current, "message": "what another writer saw"}
    before = scan(messages)
    assert messages._replace(Replacement(stale, {**current, "sk": format_time(at(2))})) is False
    assert scan(messages) == before


@pytest.fixture
def users_db(endpoints) -> None:
    """The app's users table in this test's own database, holding ALICE, BOB and CAROL."""
    from bootstrap.pg.connection import connect
    from bootstrap.config import PROJECT_ROOT

    with connect(endpoints.postgres_url, autocommit=True) as conn:
        conn.execute((PROJECT_ROOT / "sql" / "schema.sql").read_text())
        for user in (ALICE, BOB, CAROL):
            conn.execute("insert into public.users (uuid, handle, display_name, email, cognito_user_id) "
                         "values (%s, %s, %s, %s, 'MOCK')", (user.uuid, user.handle, user.display_name, f"{user.handle}@x.test"))


def test_task_entry_points_resolve_users_from_postgres(endpoints, messages: Messages, users_db: None) -> None:
    table = messages.table_name
    assert messaging.start_conversation(endpoints, table, "alice", "bob", "hi bob").writes == 3
    (group,) = messages.list_message_groups(BOB.uuid).items
    assert group["user_handle"] == "alice" and group["user_display_name"] == "Alice A"

    group_uuid = group["message_group_uuid"]
    assert messaging.send_message(endpoints, table, group_uuid, "bob", "hi alice").writes == 1
    assert [m["user_handle"] for m in messages.list_messages(group_uuid).items] == ["alice", "bob"]

    with pytest.raises(InputError, match="carol is not a member"):
        messaging.send_message(endpoints, table, group_uuid, "carol", "let me in")
    with pytest.raises(InputError, match="no user 'nobody'; the known handles are "):
        messaging.start_conversation(endpoints, table, "alice", "nobody", "hello?")
    with pytest.raises(InputError, match="not a UUID"):
        messaging.send_message(endpoints, table, "g1", "bob", "x")
