"""Writing the seed: the fixture conversations (and optional synthetic ones), and pruning earlier seeds' items.

``seed_from_fixtures`` reads the users from Postgres, places the conversations
(``bootstrap.ddb.placement``), says in the Postgres meta table that a run is in
progress, writes every item with ``bootstrap.ddb.writer`` and records what it
wrote. When the epoch or the layout changed, seeded items this run did not
rewrite are deleted.

Assumes every seeded id is a uuid5 from ``bootstrap.fixtures``: that is how
pruning tells seeded items from items the app created, which it never deletes.
Group items the app has moved past the seed (pattern E) are neither rewritten
nor pruned.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any, Iterable, Iterator, Mapping, Sequence

from ..config import Endpoints, Settings
from ..errors import BootstrapError, aws_errors
from ..fixtures.model import ConversationFixture, Fixtures, ddb_seed_fingerprint
from ..meta import DDB_SEED_EPOCH, DDB_SEED_FINGERPRINT, DDB_SEED_PENDING
from ..pg.bookkeeping import read_meta, write_meta
from ..pg.users import fetch_users
from ..steps import DDB_SEED, Action, StepResult
from .placement import (
    SeedConversation,
    SeededGroup,
    SeedRecord,
    SyntheticSpec,
    choose_epoch,
    fixture_conversations,
    key_of,
    seed_span,
    stale_synthetic_keys,
    synthetic_conversations,
    synthetic_start,
)
from .schema import describe
from .table import (
    GROUP_PREFIX,
    INDEX_PARTITION_KEY,
    PARTITION_KEY,
    SORT_KEY,
    TableSpec,
    UserRef,
    format_time,
    from_attributes,
    group_pk,
    message_pk,
    plain_item,
    table_spec,
    to_attributes,
)
from .writer import DEFAULT_RETRY, WRITER_THREADS, RetryPolicy, write_requests


def seed_from_fixtures(endpoints: Endpoints, settings: Settings, fixtures: Fixtures,
                       synthetic: SyntheticSpec | None = None, now: datetime | None = None,
                       new_table: bool = False) -> StepResult:
    """Seed the fixture conversations (plus ``synthetic`` ones) with users from Postgres; re-runnable.

    The epoch is remembered in the Postgres meta table; when it or the seeded
    layout changes, items of earlier seed runs that this run did not rewrite are removed.
    ``new_table``: the caller has just created the table, so there is nothing to read before writing.
    """
    spec = table_spec(settings)
    users = {handle: row.as_ref() for handle, row in fetch_users(endpoints.postgres_url).items()}
    meta = read_meta(endpoints.postgres_url)
    # What earlier runs wrote: the last finished one and one that was interrupted.
    earlier = tuple(r for r in (SeedRecord.from_meta(meta), SeedRecord.pending_in(meta)) if r is not None)
    span = seed_span(fixtures.conversations, synthetic)
    epoch = choose_epoch(meta.get(DDB_SEED_EPOCH), now or datetime.now(timezone.utc), span)
    record = SeedRecord(epoch, tuple(c.id for c in fixtures.conversations), fixtures.conversations_fingerprint,
                        synthetic, synthetic_start(fixtures.conversations) if synthetic else timedelta(0))
    # Said before writing, so that a run killed halfway is known and cleaned up by the next.
    write_meta(endpoints.postgres_url, record.pending_values())
    result = seed_conversations(endpoints, spec, fixtures.conversations, users, epoch, synthetic=synthetic,
                                prune=earlier != (record,), earlier=earlier, new_table=new_table)
    # The fingerprint too, whoever ran the seed (`up` or `invoke ddb.seed`): the next `up` knows it is done.
    fingerprint = ddb_seed_fingerprint(fixtures.conversations_fingerprint, fixtures.users_fingerprint)
    write_meta(endpoints.postgres_url, {**record.meta_values(), DDB_SEED_PENDING: "", DDB_SEED_FINGERPRINT: fingerprint})
    return result


def seed_conversations(
    endpoints: Endpoints,
    spec: TableSpec,
    conversations: Sequence[ConversationFixture],
    users: Mapping[str, UserRef],
    epoch: datetime,
    *,
    synthetic: SyntheticSpec | None = None,
    prune: bool = False,
    earlier: Sequence[SeedRecord] = (),
    workers: int = WRITER_THREADS,
    retry: RetryPolicy = DEFAULT_RETRY,
    new_table: bool = False,
) -> StepResult:
    """Write every message and group item of ``conversations`` (and ``synthetic`` ones) placed from ``epoch``.

    Keys are deterministic, so writing again overwrites. With ``prune``, seeded
    items that this run did not write are deleted afterwards: those of the
    written fixture groups (another epoch, edited fixtures) and, from the
    ``earlier`` runs' records, their fixture groups and their synthetic items.
    A ``new_table`` holds nothing to prune or to keep, so nothing is read first (on a DynamoDB Local that has just
    started, each first Scan or Query costs a tenth of a second).
    """
    placed = fixture_conversations(conversations, users)
    client = endpoints.client("dynamodb")
    with aws_errors(f"seeding table {spec.name}"):
        if describe(client, spec.name) is None:
            raise BootstrapError(f"table {spec.name} does not exist; run `invoke ddb.schema-load` first")
        if new_table or (prune and _is_empty(client, spec.name)):
            prune = False  # nothing earlier to clean up

        start = synthetic_start(conversations)
        moved_on = {} if new_table else _group_items_moved_on(client, spec, placed, epoch)
        # Read before writing, while the table is smallest (moto answers a query by looking through the whole
        # table or index): the fixture groups' seeded items this run does not write. What it writes is kept anyway.
        stale_fixtures = list(_stale_fixture_keys(
            client, spec, placed, epoch, itertools.chain.from_iterable(record.fixture_groups() for record in earlier),
            frozenset(moved_on.values()))) if prune else []
        everything = itertools.chain(placed, synthetic_conversations(synthetic, start) if synthetic else ())
        total = sum(len(c.messages) + 2 for c in placed) + (synthetic.item_count if synthetic else 0)
        requests = ({"PutRequest": {"Item": to_attributes(item)}} for c in everything for item in c.items(epoch)
                    if (item[PARTITION_KEY], item.get(INDEX_PARTITION_KEY)) not in moved_on)
        written = write_requests(client, spec.name, requests, total, workers, retry)
        removed = 0
        if prune:
            stale = itertools.chain(stale_fixtures,
                                    *(stale_synthetic_keys(record, synthetic, epoch, start) for record in earlier))
            removed = write_requests(client, spec.name, map(_delete_request, stale), None, workers, retry,
                                     f"removing items of earlier seeds from {spec.name}")
    groups = len(placed) + (synthetic.groups if synthetic else 0)
    detail = f"{groups} conversations, {written} items in {spec.name}"
    if removed:
        detail += f"; removed {removed} items of an earlier seed"
    return StepResult(DDB_SEED, Action.UPDATED, detail, writes=written + removed)


def seed_is_present(endpoints: Endpoints, table: str, key: tuple[str, str] | None) -> bool:
    """Whether the item at ``key`` (``placement.seed_probe_key``) is in the table: one GetItem."""
    if key is None:
        return False
    found = endpoints.client("dynamodb").get_item(
        TableName=table, Key=to_attributes({PARTITION_KEY: key[0], SORT_KEY: key[1]}),
        ProjectionExpression=PARTITION_KEY)
    return "Item" in found


def _is_empty(client: Any, table: str) -> bool:
    return not client.scan(TableName=table, Limit=1, ProjectionExpression=PARTITION_KEY).get("Items")


def _group_items_moved_on(client: Any, spec: TableSpec, placed: Sequence[SeedConversation],
                          epoch: datetime) -> dict[tuple[str, str], tuple[str, str]]:
    """Group items the app has moved past the seeded last message (pattern E), by (pk, group): their keys.

    The seed must neither write its older group item beside them (a member
    would see the group twice) nor prune them. A later last message is the
    app's only when it is not a seeded message: an earlier seed placed from a
    later epoch leaves group items that sort after this seed's own.
    """
    moved: dict[tuple[str, str], tuple[str, str]] = {}
    for conversation in placed:
        seeded_at = format_time(epoch + conversation.end)
        for item in _query_keys(client, spec, spec.index.partition_key.name, conversation.group_uuid, spec.index.name):
            if (item[PARTITION_KEY].startswith(GROUP_PREFIX) and item[SORT_KEY] > seeded_at
                    and not _is_seeded_message(client, spec, conversation.group_uuid, item[SORT_KEY])):
                moved[(item[PARTITION_KEY], conversation.group_uuid)] = key_of(item)
    return moved


def _is_seeded_message(client: Any, spec: TableSpec, group_uuid: str, sort_key: str) -> bool:
    """Whether the group's message at ``sort_key`` is one a seed wrote (asked only for a later group item)."""
    key = to_attributes({PARTITION_KEY: message_pk(group_uuid), SORT_KEY: sort_key})
    found = client.get_item(TableName=spec.name, Key=key, ProjectionExpression="message_uuid").get("Item")
    return found is not None and _is_seeded_id(from_attributes(found).get("message_uuid"))


def _stale_fixture_keys(client: Any, spec: TableSpec, placed: Sequence[SeedConversation], epoch: datetime,
                        gone: Iterable[SeededGroup], keep_too: frozenset[tuple[str, str]] = frozenset()
                        ) -> Iterator[tuple[str, str]]:
    """Keys of seeded items in fixture groups that the current seed did not write, read one group at a time."""
    seen: set[str] = set()
    written = ((SeededGroup(c.group_uuid, tuple(member.uuid for member in c.members)),
                {key_of(item) for item in c.items(epoch)} | keep_too) for c in placed)
    for group, keep in itertools.chain(written, ((group, set()) for group in gone)):
        if group.group_uuid not in seen:
            seen.add(group.group_uuid)
            yield from (key for key in map(key_of, _seeded_items(client, spec, group)) if key not in keep)


def _seeded_items(client: Any, spec: TableSpec, group: SeededGroup) -> Iterator[dict[str, str]]:
    """The keys of the group's seeded messages and of its members' items for the group."""
    messages = _query_keys(client, spec, spec.partition_key.name, message_pk(group.group_uuid))
    yield from (item for item in messages if _is_seeded_id(item.get("message_uuid")))
    if group.member_uuids:
        # Each member's partition is smaller than what the GSI has to look through.
        for member in group.member_uuids:
            owned = _query_keys(client, spec, spec.partition_key.name, group_pk(member))
            yield from (item for item in owned if item.get(INDEX_PARTITION_KEY) == group.group_uuid)
    else:
        indexed = _query_keys(client, spec, spec.index.partition_key.name, group.group_uuid, spec.index.name)
        yield from (item for item in indexed if item[PARTITION_KEY].startswith(GROUP_PREFIX))


def _is_seeded_id(value: str | None) -> bool:
    """Seeded ids are uuid5 (see bootstrap.fixtures); the app's own are uuid4."""
    try:
        return value is not None and uuid.UUID(value).version == 5
    except ValueError:
        return False


def _delete_request(key: tuple[str, str]) -> dict[str, Any]:
    return {"DeleteRequest": {"Key": to_attributes({PARTITION_KEY: key[0], SORT_KEY: key[1]})}}


def _query_keys(client: Any, spec: TableSpec, key: str, value: str,
                index: str | None = None) -> Iterator[dict[str, str]]:
    """Keys, message_uuid and message_group_uuid of every item whose ``key`` is ``value``."""
    arguments: dict[str, Any] = {
        "TableName": spec.name,
        "KeyConditionExpression": "#k = :v",
        "ExpressionAttributeNames": {"#k": key, "#pk": PARTITION_KEY, "#sk": SORT_KEY, "#m": "message_uuid",
                                     "#g": INDEX_PARTITION_KEY},
        "ExpressionAttributeValues": {":v": {"S": value}},
        "ProjectionExpression": "#pk, #sk, #m, #g",
    }
    if index:
        arguments["IndexName"] = index
    for page in client.get_paginator("query").paginate(**arguments):
        yield from (plain_item(item) for item in page["Items"])
