"""Seeding and the Cognito sync measured in-process, against embedded stacks the benchmark starts itself.

DynamoDB seeding is timed three ways on each engine: ours, one ``put_item`` per
item (the old ``bin/ddb/seed``), and the engine's ceiling (the same items,
prepared beforehand, as raw BatchWriteItem calls from four threads). Each way of
each run gets a fresh engine of its own. The Cognito id sync is timed against
one UPDATE per user over a new connection (the old
``bin/db/update_cognito_user_ids``), in a database of its own. Every stack is
stopped on the way out, also on Ctrl-C or error.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

from benchmarks.commands import BenchmarkFailed, say
from benchmarks.figures import Figure, messages, seeding_figures, sync_figures
from bootstrap import cognito
from bootstrap.config import Endpoints, Settings, resolve_settings, with_database
from bootstrap.ddb.placement import SyntheticSpec, choose_epoch, parse_synthetic, synthetic_conversations
from bootstrap.ddb.schema import drop_table, schema_load
from bootstrap.ddb.seed import seed_conversations
from bootstrap.ddb.table import TableSpec, table_spec, to_attributes
from bootstrap.ddb.writer import BATCH_SIZE
from bootstrap.lifecycle import running_services
from bootstrap.pg.connection import connect
from bootstrap.pg.database import create_database
from bootstrap.pg.schema import load_schema
from bootstrap.processes import free_port

COGNITO_SETUP_THREADS = 8


# --- one embedded stack for the in-process measurements -----------------------------------


@dataclass(frozen=True)
class Stack:
    settings: Settings
    endpoints: Endpoints


@contextlib.contextmanager
def embedded_stack(root: Path, engine: str) -> Iterator[Stack]:
    """Embedded Postgres and ``engine`` (with moto for Cognito) in ``root``, ready; stopped on the way out."""
    settings = resolve_settings({}, {}, {
        "state_dir": str(root / f"stack-{engine}" / ".cruddur"), "pg_port": free_port(), "ddb_port": free_port(),
        "cognito_port": free_port(), "backend": "embedded", "ddb_engine": engine})
    with running_services(settings) as (_, endpoints):
        yield Stack(settings, endpoints)


# --- DynamoDB seeding: ours vs one put_item per item ---------------------------------------


def measure_seeding(root: Path, runs: int, synthetic_text: str, engine: str) -> list[Figure]:
    """The three ways, each run of each on a fresh engine of its own (then stopped and deleted).

    A fresh engine each time, because DynamoDB Local slows down as its file
    fills up (a dropped table's pages are not given back): ways measured one
    after the other on one engine would each find it slower than the last.
    """
    synthetic = parse_synthetic(synthetic_text)
    ways: dict[str, tuple[Callable[[Stack], Callable[[TableSpec], None]], list[float]]] = {
        "ours": (lambda stack: lambda spec: _seed_ours(stack.endpoints, spec, synthetic), []),
        "one put_item per item": (lambda stack: lambda spec: _seed_one_by_one(stack.endpoints, spec, synthetic), []),
        "raw ceiling": (lambda stack: raw_batches(stack.endpoints, synthetic), []),
    }
    for run in range(runs):
        for name, (writer, samples) in ways.items():
            with embedded_stack(root / f"seed-{uuid.uuid4().hex[:8]}", engine) as stack:
                samples.append(timed_on_fresh_table(stack, writer(stack)))
        say(f"  seeding on {engine} {run + 1}/{runs}: "
            + ", ".join(f"{name} {samples[-1]:.2f}s" for name, (_, samples) in ways.items()))
    ours, baseline, ceiling = (samples for _, samples in ways.values())
    return seeding_figures(engine, messages(synthetic_text), ours, baseline, ceiling, synthetic.item_count)


def timed_on_fresh_table(stack: Stack, write: Callable[[TableSpec], None]) -> float:
    spec = dataclasses.replace(table_spec(stack.settings), name=f"bench-{uuid.uuid4().hex[:10]}")
    schema_load(stack.endpoints, spec)
    try:
        started = time.perf_counter()
        write(spec)
        return time.perf_counter() - started
    finally:
        drop_table(stack.endpoints, spec.name)  # keeps the engine's memory and files from growing


def raw_batches(endpoints: Endpoints, synthetic: SyntheticSpec) -> Callable[[TableSpec], None]:
    """The engine's ceiling: the same items, prepared beforehand, sent as bare BatchWriteItem calls from 4 threads.

    No queue, progress, retry policy or pruning: what the endpoint takes with nothing else going on.
    The items are built here, before the clock starts; the returned writer is what is timed.
    """
    requests = [{"PutRequest": {"Item": item}} for item in _synthetic_items(synthetic)]
    client = endpoints.client("dynamodb")

    def write(spec: TableSpec) -> None:
        batches = [requests[i:i + BATCH_SIZE] for i in range(0, len(requests), BATCH_SIZE)]
        lock = threading.Lock()

        def work() -> None:
            while True:
                with lock:
                    if not batches:
                        return
                    batch = batches.pop()
                unprocessed = client.batch_write_item(RequestItems={spec.name: batch}).get("UnprocessedItems")
                if unprocessed:
                    with lock:
                        batches.append(unprocessed[spec.name])

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    return write


def _seed_epoch(synthetic: SyntheticSpec) -> datetime:
    return choose_epoch(None, datetime.now(timezone.utc), synthetic.span())


def _seed_ours(endpoints: Endpoints, spec: TableSpec, synthetic: SyntheticSpec) -> None:
    result = seed_conversations(endpoints, spec, (), {}, _seed_epoch(synthetic), synthetic=synthetic)
    if result.writes != synthetic.item_count:
        raise BenchmarkFailed(f"our seeder wrote {result.writes} of {synthetic.item_count} items")


def _seed_one_by_one(endpoints: Endpoints, spec: TableSpec, synthetic: SyntheticSpec) -> None:
    """The original bin/ddb/seed: the same items, one put_item call each, in order."""
    client = endpoints.client("dynamodb")
    for item in _synthetic_items(synthetic):
        client.put_item(TableName=spec.name, Item=item)


def _synthetic_items(synthetic: SyntheticSpec) -> Iterator[dict[str, Any]]:
    """The items our seeder writes for ``synthetic``, in DynamoDB's wire form, for the two references."""
    epoch = _seed_epoch(synthetic)
    for conversation in synthetic_conversations(synthetic, timedelta(0)):
        for item in conversation.items(epoch):
            yield to_attributes(item)


# --- Cognito sync: ours vs one UPDATE per user over a new connection -----------------------

_INSERT_USERS = """
insert into public.users (handle, display_name, email, cognito_user_id)
select handle, handle, handle || '@example.com', 'MOCK' from unnest(%s::text[]) as handle
"""
_RESET_IDS = "update public.users set cognito_user_id = 'MOCK'"
_UPDATE_ONE = "update public.users set cognito_user_id = %s where handle = %s"


def measure_cognito_sync(stack: Stack, runs: int, users: int) -> list[Figure]:
    endpoints = dataclasses.replace(stack.endpoints, postgres_url=_bench_database(stack.endpoints))
    handles = [f"bench_{n:05d}" for n in range(users)]
    pool_id = _pool_with_users(endpoints, handles)
    with connect(endpoints.postgres_url) as conn:
        conn.execute(_INSERT_USERS, (handles,))
    ours, baseline = [], []
    for run in range(runs):
        _reset_ids(endpoints)
        started = time.perf_counter()
        result = cognito.sync_user_ids(endpoints, pool_id)
        ours.append(time.perf_counter() - started)
        if result.writes != users:
            raise BenchmarkFailed(f"the sync updated {result.writes} of {users} users")
        _reset_ids(endpoints)
        started = time.perf_counter()
        _sync_one_by_one(endpoints, pool_id)
        baseline.append(time.perf_counter() - started)
        say(f"  cognito sync {run + 1}/{runs}: ours {ours[-1]:.2f}s, one UPDATE per user {baseline[-1]:.2f}s")
    return sync_figures(users, ours, baseline)


def _bench_database(endpoints: Endpoints) -> str:
    url = with_database(endpoints.postgres_url, f"bench_{uuid.uuid4().hex[:8]}")
    bench = dataclasses.replace(endpoints, postgres_url=url)
    create_database(bench)
    load_schema(bench)
    return url


def _pool_with_users(endpoints: Endpoints, handles: Sequence[str]) -> str:
    """A new pool with one user per handle, created directly (no stable-id seeding) from a few threads."""
    client = endpoints.client("cognito-idp")
    pool_id = client.create_user_pool(PoolName=f"bench-{uuid.uuid4().hex[:8]}")["UserPool"]["Id"]

    def create(handle: str) -> None:
        client.admin_create_user(UserPoolId=pool_id, Username=handle, MessageAction="SUPPRESS",
                                 UserAttributes=[{"Name": "preferred_username", "Value": handle}])

    with ThreadPoolExecutor(COGNITO_SETUP_THREADS) as pool:
        list(pool.map(create, handles))
    return pool_id


def _reset_ids(endpoints: Endpoints) -> None:
    with connect(endpoints.postgres_url) as conn:
        conn.execute(_RESET_IDS)


def _sync_one_by_one(endpoints: Endpoints, pool_id: str) -> None:
    """The original bin/db/update_cognito_user_ids: list the users, then one connection and UPDATE per user."""
    for user in cognito.list_users(endpoints, pool_id):
        with connect(endpoints.postgres_url) as conn:
            conn.execute(_UPDATE_ONE, (user.sub, user.handle))
