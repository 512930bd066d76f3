"""The verification checks: which reads each depth makes, and that they catch what they claim to."""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Iterator

import pytest

from bootstrap import cognito, verify
from bootstrap.config import Endpoints, Settings
from bootstrap.ddb.schema import drop_table, schema_load
from bootstrap.ddb.seed import seed_from_fixtures
from bootstrap.ddb.table import message_pk, table_spec
from bootstrap.fixtures.model import Fixtures
from bootstrap.fixtures.parse import load_fixtures
from bootstrap.pg.connection import connect
from bootstrap.pg.schema import load_schema
from bootstrap.pg.seed import seed
from bootstrap.verify import Depth, SharedRead, conversations_to_check
from tests.conftest import Stack
from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.both_engines

FIXTURES = load_fixtures(PROJECT_ROOT / "seeds")


# --- pure ------------------------------------------------------------------------------


def test_a_spot_check_reads_the_smallest_conversation_and_the_others_read_all() -> None:
    smallest = min(FIXTURES.conversations, key=lambda c: len(c.messages))
    assert conversations_to_check(FIXTURES, Depth.SPOT) == [smallest]
    assert conversations_to_check(FIXTURES, Depth.QUICK) == list(FIXTURES.conversations)
    assert conversations_to_check(FIXTURES, Depth.FULL) == list(FIXTURES.conversations)


def test_a_spot_check_of_no_conversations_checks_none() -> None:
    empty = Fixtures(users=FIXTURES.users, activities=(), conversations=())
    assert conversations_to_check(empty, Depth.SPOT) == []


def test_a_shared_read_runs_once_for_concurrent_callers() -> None:
    calls = []

    def slow_read() -> str:
        calls.append(1)
        time.sleep(0.05)
        return "rows"

    shared = SharedRead(slow_read)
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(shared())) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (len(calls), results) == (1, ["rows"] * 6)


def test_a_shared_read_that_fails_fails_every_caller_without_reading_again() -> None:
    calls = []

    def broken() -> str:
        calls.append(1)
        raise ConnectionError("refused")

    shared = SharedRead(broken)
    for _ in range(3):
        with pytest.raises(ConnectionError, match="refused"):
            shared()
    assert len(calls) == 1


# --- against the session's real services ------------------------------------------------


@pytest.fixture
def seeded(stack: Stack, endpoints: Endpoints, table_name: str, tmp_path: Path) -> Iterator[Settings]:
    """This test's own database, table and user pool, seeded from the project's fixtures and synced."""
    settings = stack.settings.with_values(table_name=table_name, user_pool_name=f"pool-{uuid.uuid4().hex[:10]}",
                                          state_dir=tmp_path / "state")
    load_schema(endpoints)
    seed(endpoints, FIXTURES)
    schema_load(endpoints, table_spec(settings))
    seed_from_fixtures(endpoints, settings, FIXTURES)
    cognito.seed_users(endpoints, settings, FIXTURES)
    cognito.sync_user_ids(endpoints, cognito.resolve_pool_id(endpoints, settings))
    yield settings
    drop_table(endpoints, table_name)


def _dynamodb_calls(endpoints: Endpoints) -> Counter:
    """Count the DynamoDB operations the (shared, cached) client sends from now on."""
    calls: Counter = Counter()
    endpoints.client("dynamodb").meta.events.register(
        "before-call.dynamodb.*", lambda model, **_: calls.update([model.name]))
    return calls


def test_a_seeded_environment_passes_every_depth(seeded: Settings, endpoints: Endpoints) -> None:
    # quick and full also compare the tables with sql/schema.sql.
    for depth, count in ((Depth.SPOT, 6), (Depth.QUICK, 5 + 4 * len(FIXTURES.conversations)),
                         (Depth.FULL, 6 + 4 * len(FIXTURES.conversations))):
        checks = verify.run_checks(seeded, endpoints, FIXTURES, depth)
        assert [c for c in checks if not c.ok] == [], depth
        assert len(checks) == count, depth


def test_a_spot_check_makes_a_handful_of_reads_and_each_partition_is_read_once(
        seeded: Settings, endpoints: Endpoints) -> None:
    calls = _dynamodb_calls(endpoints)
    verify.run_checks(seeded, endpoints, FIXTURES, Depth.SPOT)
    # For one conversation: its messages, pattern A, pattern B of both members and the group index
    # (up's observation has just read the table's description).
    assert calls == Counter({"Query": 5})

    calls.clear()
    verify.run_checks(seeded, endpoints, FIXTURES, Depth.QUICK)
    members = {handle for c in FIXTURES.conversations for handle in c.members}
    assert calls == Counter({"DescribeTable": 1, "Query": 3 * len(FIXTURES.conversations) + len(members)})


def test_each_depth_catches_a_missing_message_in_what_it_reads(seeded: Settings, endpoints: Endpoints) -> None:
    """A spot check reads one conversation; a message lost from another is found by `invoke verify`."""
    spot = conversations_to_check(FIXTURES, Depth.SPOT)[0]
    other = next(c for c in FIXTURES.conversations if c is not spot)
    for conversation in (spot, other):
        _delete_oldest_message(endpoints, seeded.table_name, conversation)

    spot_failed = {c.name for c in verify.run_checks(seeded, endpoints, FIXTURES, Depth.SPOT) if not c.ok}
    quick_failed = {c.name for c in verify.run_checks(seeded, endpoints, FIXTURES, Depth.QUICK) if not c.ok}
    assert f"dynamodb: {spot.id}: message count" in spot_failed
    assert not any(other.id in name for name in spot_failed)
    assert {f"dynamodb: {spot.id}: message count", f"dynamodb: {other.id}: message count"} <= quick_failed


def test_the_postgres_checks_share_one_read_and_name_what_is_wrong(seeded: Settings, endpoints: Endpoints) -> None:
    handle = FIXTURES.users[0].handle
    with connect(endpoints.postgres_url) as conn:
        conn.execute("update users set cognito_user_id = 'MOCK' where handle = %s", (handle,))
    checks = {c.name: c for c in verify.run_checks(seeded, endpoints, FIXTURES, Depth.QUICK)}
    synced = checks["postgres: cognito ids synced"]
    assert not synced.ok and synced.detail == f"not synced: {handle}"
    assert checks["postgres: seeded rows"].ok and checks["postgres: handles unique"].ok


def test_a_database_that_cannot_be_read_fails_each_postgres_check_with_the_reason(
        seeded: Settings, endpoints: Endpoints) -> None:
    gone = Endpoints(endpoints.postgres_url.rsplit("/", 1)[0] + "/no_such_database", endpoints.aws_endpoint_url,
                     endpoints.region)
    checks = [c for c in verify.run_checks(seeded, gone, FIXTURES, Depth.SPOT) if c.name.startswith("postgres")]
    assert len(checks) == 2
    assert all(not c.ok and "no_such_database" in c.detail for c in checks), checks


def _delete_oldest_message(endpoints: Endpoints, table: str, conversation) -> None:
    client = endpoints.client("dynamodb")
    oldest = client.query(TableName=table, KeyConditionExpression="pk = :pk", Limit=1,
                          ExpressionAttributeValues={":pk": {"S": message_pk(conversation.group_uuid)}})["Items"][0]
    client.delete_item(TableName=table, Key={"pk": oldest["pk"], "sk": oldest["sk"]})
