"""``invoke verify``: real reads that prove the environment is usable by the app.

Each check is a small function returning ``Check(name, ok, detail)``; all
checks run even when some fail, so the report names every failure. How much is
read depends on the ``Depth``:

- ``spot``: what ``invoke up`` reads when its plan changed nothing. The
  recorded fingerprints already say the data is the fixtures' (and the
  tables are as when they last matched ``sql/schema.sql``), and ``up`` has
  just observed the table against its spec, the pool and every user's
  Cognito id; these reads prove the services answer and the access patterns
  work: Postgres's seeded rows and handles over one connection, and patterns
  A and B on the smallest conversation.
- ``quick`` (``invoke verify``, and ``invoke up`` after it changed something):
  the same for every conversation, and the live app tables compared with
  ``sql/schema.sql``; bounded by the size of the fixtures.
- ``full`` (``invoke verify --full``): adds a paginated scan of the whole
  table that proves every item has one of the contract's shapes.

On the prod target the data is the app's own, not the fixtures', so other
checks run (``_prod_checks``): the app tables exist, handles are unique, every
user carries the Cognito sub of a user of the pool, the table matches its spec
(keys, index, stream, billing), the group index answers a query, and the
stream has an enabled trigger (pattern E's Lambda).

Checks that need the same data share one read of it.
"""

from __future__ import annotations

import enum
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Generic, Iterable, Iterator, TypeVar

from .config import Endpoints, Settings
from .ddb.table import (INDEX_PARTITION_KEY, MESSAGE_UUID, PARTITION_KEY, SORT_KEY, TEXT, USER_DISPLAY_NAME,
                        USER_HANDLE, USER_UUID, TableSpec)
from .errors import VerifyError
from .fixtures.model import ConversationFixture, Fixtures
from .pg.users import MOCK_COGNITO_USER_ID

if TYPE_CHECKING:  # imported where it is used: the module is loaded only when DynamoDB is checked
    from .messaging import Messages


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str = ""


class Depth(enum.Enum):
    SPOT = "spot"
    QUICK = "quick"
    FULL = "full"


Thunk = Callable[[], Check]
T = TypeVar("T")

# Against a remote endpoint (prod) each read is a network round trip, so several
# run at once; locally the reads are CPU-bound and more threads buy nothing.
WORKERS = 4


def run_checks(settings: Settings, endpoints: Endpoints, fixtures: Fixtures, depth: Depth = Depth.QUICK) -> list[Check]:
    """Run every check of ``depth``, several at a time, reported in a stable order."""
    from concurrent.futures import ThreadPoolExecutor

    if settings.is_prod:
        thunks = _prod_checks(settings, endpoints, depth)
    else:
        thunks = (_postgres_checks(settings, endpoints, fixtures, depth)
                  + _dynamodb_checks(settings, endpoints, fixtures, depth))
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        return list(pool.map(lambda thunk: thunk(), thunks))


def conversations_to_check(fixtures: Fixtures, depth: Depth) -> list[ConversationFixture]:
    """Every conversation, or for a spot check the one with the fewest messages.

    A spot check exercises each access pattern once; the reads of a small
    conversation cost a few milliseconds, those of a 100-message one ten times more.
    """
    conversations = list(fixtures.conversations)
    if depth is Depth.SPOT and conversations:
        return [min(conversations, key=lambda c: len(c.messages))]
    return conversations


def raise_for_failures(checks: list[Check]) -> None:
    failed = [c for c in checks if not c.ok]
    if failed:
        lines = "\n".join(f"  FAIL {c.name}: {c.detail}" for c in failed)
        raise VerifyError(f"{len(failed)} of {len(checks)} checks failed:\n{lines}")


def _guarded(name: str, body: Callable[[], Check]) -> Thunk:
    """A check to run later; one that crashes is a failed check with the error as its detail."""

    def run() -> Check:
        try:
            return body()
        except Exception as exc:  # noqa: BLE001 - any failure to read is a failed check
            return Check(name, False, f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}")

    return run


class SharedRead(Generic[T]):
    """A read that several checks need: the first caller does it, the others get its result or its error."""

    def __init__(self, read: Callable[[], T]) -> None:
        self._read = read
        self._lock = threading.Lock()
        self._outcome: tuple[T | None, BaseException | None] | None = None

    def __call__(self) -> T:
        with self._lock:
            if self._outcome is None:
                try:
                    self._outcome = (self._read(), None)
                except Exception as exc:  # noqa: BLE001 - handed to every check that shares the read
                    self._outcome = (None, exc)
        value, error = self._outcome
        if error is not None:
            raise error
        return value  # type: ignore[return-value]  # a T when no error was kept (T may include None)


# --- Postgres --------------------------------------------------------------------------


@dataclass(frozen=True)
class PostgresFacts:
    users: int
    activities: int
    duplicate_handles: list[str]
    subs: dict[str, str | None]  # seeded handle -> cognito_user_id


def _postgres_facts(url: str, handles: list[str], activity_ids: list[str]) -> PostgresFacts:
    """Everything the Postgres checks look at, over one connection."""
    from .pg import users
    from .pg.connection import connect

    with connect(url) as conn:
        subs = users.cognito_user_ids(conn, handles)
        activities = conn.execute(
            "select count(*) from activities where uuid = any(%s::uuid[])", (activity_ids,)).fetchone()[0]
        dupes = users.duplicate_handles(conn)
    return PostgresFacts(len(subs), activities, dupes, subs)


def _postgres_checks(settings: Settings, endpoints: Endpoints, fixtures: Fixtures, depth: Depth) -> list[Thunk]:
    handles = [u.handle for u in fixtures.users]
    activity_ids = [a.uuid for a in fixtures.activities]
    facts = SharedRead(lambda: _postgres_facts(endpoints.postgres_url, handles, activity_ids))

    def counts() -> Check:
        found = facts()
        ok = (found.users, found.activities) == (len(handles), len(activity_ids))
        return Check("postgres: seeded rows", ok,
                     f"users {found.users}/{len(handles)}, activities {found.activities}/{len(activity_ids)}")

    checks = [_guarded("postgres: seeded rows", counts),
              _guarded("postgres: handles unique", lambda: _handles_check(facts().duplicate_handles))]
    if depth is not Depth.SPOT:  # up's observation has just read these
        checks.append(_guarded("postgres: tables match sql/schema.sql", lambda: _schema_matches(endpoints)))
        checks.append(_guarded("postgres: cognito ids synced",
                               lambda: _cognito_ids_synced(settings, endpoints, facts().subs)))
    return checks


def _schema_matches(endpoints: Endpoints) -> Check:
    """Every difference between the live app tables and sql/schema.sql, named (a column dropped by hand too)."""
    from .pg.schema import schema_report

    plan = schema_report(endpoints).plan
    detail = "; ".join(plan.describe()) or "tables, columns, keys, checks and indexes as declared"
    return Check("postgres: tables match sql/schema.sql", plan.unchanged, detail)


def _cognito_ids_synced(settings: Settings, endpoints: Endpoints, rows: dict[str, str | None]) -> Check:
    from . import cognito

    pool_id = cognito.find_pool_id(endpoints, settings.user_pool_name)
    if pool_id is None:
        return Check("postgres: cognito ids synced", False, f"user pool {settings.user_pool_name!r} not found")
    subs = {u.handle: u.sub for u in cognito.list_users(endpoints, pool_id) if u.handle}
    wrong = [handle for handle, sub in rows.items() if sub in (None, MOCK_COGNITO_USER_ID) or sub != subs.get(handle)]
    return Check("postgres: cognito ids synced", not wrong,
                 f"not synced: {', '.join(sorted(wrong))}" if wrong else f"{len(rows)} users match their Cognito sub")


# --- DynamoDB ----------------------------------------------------------------------------


def _dynamodb_checks(settings: Settings, endpoints: Endpoints, fixtures: Fixtures, depth: Depth) -> list[Thunk]:
    from .ddb.table import table_spec
    from .messaging import Messages

    spec = table_spec(settings)
    client = endpoints.client("dynamodb")
    messages = Messages(client, spec.name)
    conversations = conversations_to_check(fixtures, depth)
    members = {fixtures.user(handle).uuid for c in conversations for handle in c.members}

    def groups_of(user_uuid: str) -> SharedRead[list[dict[str, str]]]:
        return SharedRead(lambda: _all_items(
            lambda cursor: messages.list_message_groups(user_uuid, limit=20, cursor=cursor)))

    groups = {user_uuid: groups_of(user_uuid) for user_uuid in members}

    def checks_of(c: ConversationFixture) -> list[Thunk]:
        """The checks of one conversation (a function, so that each closure holds its own conversation)."""
        items = SharedRead(lambda: _message_items(client, spec.name, c))
        return [
            _guarded(f"dynamodb: {c.id}: message count", lambda: _message_count(items(), c)),
            _guarded(f"dynamodb: {c.id}: pattern A", lambda: _pattern_a(messages, items(), c)),
            _guarded(f"dynamodb: {c.id}: pattern B", lambda: _pattern_b(lambda u: groups[u](), fixtures, c)),
            _guarded(f"dynamodb: {c.id}: group index", lambda: _group_index(client, spec, c)),
        ]

    # A spot check follows up's observation, which has just compared the table with its spec.
    checks = [] if depth is Depth.SPOT else [_guarded("dynamodb: table matches spec",
                                                      lambda: _table_matches(endpoints, spec))]
    for conversation in conversations:
        checks += checks_of(conversation)
    if depth is Depth.FULL:
        checks.append(_guarded("dynamodb: full scan shapes", lambda: _full_scan(client, spec.name)))
    return checks


def _table_matches(endpoints: Endpoints, spec: TableSpec) -> Check:
    from .ddb.plan import plan_table
    from .ddb.schema import describe_table

    description = describe_table(endpoints, spec.name)
    if description is None:
        return Check("dynamodb: table matches spec", False, f"table {spec.name} missing")
    plan = plan_table(spec, description)
    statuses = [description.get("TableStatus")] + [g.get("IndexStatus") for g in description.get("GlobalSecondaryIndexes", [])]
    active = all(s == "ACTIVE" for s in statuses)
    ok = plan.unchanged and active
    detail = "ACTIVE, matches" if ok else f"status {statuses}; differences: {plan.describe()}"
    return Check("dynamodb: table matches spec", ok, detail)


def _message_items(client: Any, table: str, conversation: ConversationFixture) -> list[dict[str, str]]:
    """Every message item of the conversation, oldest first (keys, uuid and text only)."""
    from .ddb.table import message_pk

    items: list[dict[str, str]] = []
    for page in _pages(client.query, TableName=table, KeyConditionExpression=f"{PARTITION_KEY} = :pk",
                       ExpressionAttributeValues={":pk": {"S": message_pk(conversation.group_uuid)}},
                       ProjectionExpression=f"{SORT_KEY}, {MESSAGE_UUID}, #text",
                       ExpressionAttributeNames={"#text": TEXT}):
        items.extend({name: value["S"] for name, value in item.items()} for item in page["Items"])
    return items


def _message_count(items: list[dict[str, str]], conversation: ConversationFixture) -> Check:
    """Every seeded message is there; messages the app added since are fine and counted apart."""
    from .fixtures.model import message_uuid

    seeded = {message_uuid(conversation.group_uuid, index) for index in range(len(conversation.messages))}
    present = {item.get(MESSAGE_UUID) for item in items}
    found, extra = len(seeded & present), len(present - seeded)
    detail = f"{found}/{len(seeded)} seeded messages" + (f" (+{extra} from the app)" if extra else "")
    return Check(f"dynamodb: {conversation.id}: message count", found == len(seeded), detail)


def _pattern_a(messages: Messages, items: list[dict[str, str]], conversation: ConversationFixture) -> Check:
    """Pattern A returns the group's newest 20 messages of the current year, oldest first."""
    from .messaging import year_prefix

    page = messages.list_messages(conversation.group_uuid, limit=20)
    this_year = [i for i in items if i[SORT_KEY].startswith(year_prefix())]
    got, expected = [i[SORT_KEY] for i in page.items], [i[SORT_KEY] for i in this_year[-20:]]
    ok = got == expected and len(got) >= min(20, len(conversation.messages))
    detail = (f"{len(got)} newest messages in order" if ok else
              f"got {len(got)} messages, expected the newest {len(expected)} of this year in order")
    return Check(f"dynamodb: {conversation.id}: pattern A", ok, detail)


def _pattern_b(groups_of: Callable[[str], list[dict[str, str]]], fixtures: Fixtures,
               conversation: ConversationFixture) -> Check:
    problems = []
    for owner, other in (conversation.members, tuple(reversed(conversation.members))):
        owner_user, other_user = fixtures.user(owner), fixtures.user(other)
        groups = groups_of(owner_user.uuid)
        match = [g for g in groups if g.get(INDEX_PARTITION_KEY) == conversation.group_uuid]
        if not match:
            problems.append(f"{owner} does not see the group")
            continue
        group = match[0]
        expected = (other_user.uuid, other_user.handle, other_user.display_name)
        if (group.get(USER_UUID), group.get(USER_HANDLE), group.get(USER_DISPLAY_NAME)) != expected:
            problems.append(f"{owner}'s group names the wrong other user")
    return Check(f"dynamodb: {conversation.id}: pattern B", not problems, "; ".join(problems) or "both members see it")


def _all_items(fetch: Callable[[str | None], Any]) -> list[dict[str, str]]:
    items, cursor = [], None
    while True:
        page = fetch(cursor)
        items.extend(page.items)
        cursor = page.cursor
        if not cursor:
            return items


def _group_index(client: Any, spec: TableSpec, conversation: ConversationFixture) -> Check:
    count = 0
    for page in _pages(client.query, TableName=spec.name, IndexName=spec.gsi_name,
                       KeyConditionExpression=f"{spec.index.partition_key.name} = :g",
                       ExpressionAttributeValues={":g": {"S": conversation.group_uuid}}, Select="COUNT"):
        count += page["Count"]
    return Check(f"dynamodb: {conversation.id}: group index", count == 2, f"{count}/2 group items")


def _full_scan(client: Any, table: str) -> Check:
    from .console import progress
    from .ddb.reads import item_count
    from .ddb.table import item_shape_problem
    from .ddb.writer import PROGRESS_THRESHOLD

    bad: list[str] = []
    scanned = 0
    with progress(item_count(client, table), f"checking every item of {table}", PROGRESS_THRESHOLD) as advance:
        for page in _pages(client.scan, TableName=table):
            advance(len(page["Items"]))
            for item in page["Items"]:
                scanned += 1
                problem = item_shape_problem(item)
                if problem and len(bad) < 10:
                    bad.append(problem)
    return Check("dynamodb: full scan shapes", not bad, "; ".join(bad) or f"{scanned} items, all of contract shapes")


# --- prod ----------------------------------------------------------------------------------


def _prod_checks(settings: Settings, endpoints: Endpoints, depth: Depth) -> list[Thunk]:
    """What the app relies on in production; no check reads or expects a fixture row."""
    from .ddb.table import table_spec

    spec = table_spec(settings)
    client = endpoints.client("dynamodb")
    checks = [
        _guarded("postgres: schema loaded", lambda: _schema_loaded(endpoints)),
        _guarded("postgres: tables match sql/schema.sql", lambda: _schema_matches(endpoints)),
        _guarded("postgres: handles unique", lambda: _handles_unique(endpoints)),
        _guarded("postgres: users have cognito ids", lambda: _users_have_cognito_ids(settings, endpoints)),
        _guarded("dynamodb: table matches spec", lambda: _table_matches(endpoints, spec)),
        _guarded("dynamodb: group index answers", lambda: _index_answers(client, spec)),
        _guarded("dynamodb: stream has a trigger", lambda: _stream_trigger(endpoints, spec.name)),
    ]
    if depth is Depth.FULL:
        checks.append(_guarded("dynamodb: full scan shapes", lambda: _full_scan(client, spec.name)))
    return checks


def _schema_loaded(endpoints: Endpoints) -> Check:
    from .pg.connection import APP_TABLES
    from .pg.database import describe_row_counts, table_row_counts

    counts = table_row_counts(endpoints)
    missing = [table for table in APP_TABLES if table not in counts]
    return Check("postgres: schema loaded", not missing,
                 f"missing: {', '.join(missing)}" if missing else describe_row_counts(counts))


def _handles_unique(endpoints: Endpoints) -> Check:
    from .pg import users
    from .pg.connection import connect

    with connect(endpoints.postgres_url) as conn:
        return _handles_check(users.duplicate_handles(conn))


def _handles_check(dupes: list[str]) -> Check:
    return Check("postgres: handles unique", not dupes, ", ".join(dupes) or "all unique")


def _users_have_cognito_ids(settings: Settings, endpoints: Endpoints) -> Check:
    """Every user's cognito_user_id is the sub of a user of the pool (the app looks users up by it)."""
    from . import cognito
    from .pg import users
    from .pg.connection import connect

    pool_id = cognito.resolve_pool_id(endpoints, settings)
    with connect(endpoints.postgres_url) as conn:
        rows = users.cognito_user_ids(conn)
    subs = {user.sub for user in cognito.list_users(endpoints, pool_id)}
    unsynced = sorted(handle for handle, sub in rows.items() if sub in (None, "", MOCK_COGNITO_USER_ID))
    unknown = sorted(handle for handle, sub in rows.items() if handle not in unsynced and sub not in subs)
    problems = ([f"no Cognito id: {', '.join(unsynced)}"] if unsynced else []) + (
        [f"not a user of pool {pool_id}: {', '.join(unknown)}"] if unknown else [])
    return Check("postgres: users have cognito ids", not problems,
                 "; ".join(problems) or f"{len(rows)} users, each with the sub of a user of pool {pool_id}")


def _index_answers(client: Any, spec: TableSpec) -> Check:
    """Pattern E finds group items through the index: one query proves it exists and is readable."""
    client.query(TableName=spec.name, IndexName=spec.gsi_name, Select="COUNT", Limit=1,
                 KeyConditionExpression=f"{spec.index.partition_key.name} = :g",
                 ExpressionAttributeValues={":g": {"S": "00000000-0000-0000-0000-000000000000"}})
    return Check("dynamodb: group index answers", True, f"{spec.gsi_name} answers queries")


def _stream_trigger(endpoints: Endpoints, table: str) -> Check:
    """In production pattern E runs only when a Lambda is triggered by the table's latest stream."""
    from .ddb.schema import describe_table

    stream_arn = (describe_table(endpoints, table) or {}).get("LatestStreamArn")
    if not stream_arn:
        return Check("dynamodb: stream has a trigger", False, f"table {table} has no stream")
    mappings = endpoints.client("lambda").list_event_source_mappings(EventSourceArn=stream_arn)["EventSourceMappings"]
    enabled = [m for m in mappings if m.get("State") in ("Enabled", "Enabling", "Updating", "Creating")]
    functions = ", ".join(sorted(m["FunctionArn"].rpartition(":")[2] for m in enabled))
    detail = f"function {functions}" if enabled else "none enabled: `invoke ddb.deploy-stream-worker --target prod`"
    return Check("dynamodb: stream has a trigger", bool(enabled), detail)


def _pages(operation: Callable[..., dict[str, Any]], **arguments: Any) -> Iterator[dict[str, Any]]:
    while True:
        page = operation(**arguments)
        yield page
        if "LastEvaluatedKey" not in page:
            return
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def format_checks(checks: Iterable[Check]) -> list[list[str]]:
    return [["pass" if c.ok else "FAIL", c.name, c.detail] for c in checks]


def verify(settings: Settings, full: bool = False, as_json: bool = False) -> list[Check]:
    """The `invoke verify` task: run the checks, print them, raise when any failed."""
    from .console import print_json, print_line, print_table
    from .fixtures.parse import load_fixtures
    from .backends import endpoints_for

    checks = run_checks(settings, endpoints_for(settings), load_fixtures(settings.seeds_dir),
                        Depth.FULL if full else Depth.QUICK)
    if as_json:
        print_json([c.__dict__ for c in checks])
    else:
        print_table(["result", "check", "detail"], format_checks(checks), wrap={"detail"})
    raise_for_failures(checks)
    if not as_json:
        print_line(f"{len(checks)} checks passed")
    return checks
