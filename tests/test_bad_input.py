"""Bad input at the task level: each case exits 2 with a message naming file:line and value, and writes nothing.

One environment is brought up once for the module, from a copy of the seeds
into which hostile but valid strings were put (quotes, SQL, placeholders,
emoji, right-to-left text). Each bad-input case copies those seeds, breaks one
thing, runs the tasks that read it as separate processes, and compares a
snapshot of every Postgres row (with its xmin, which any rewrite changes),
every DynamoDB item and table, and every Cognito user with the snapshot taken
before: equal snapshots mean nothing was written. The hostile strings are read
back from Postgres and through patterns A and B, and must come back exactly.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

import pytest

from bootstrap.config import Endpoints
from bootstrap.fixtures.model import activity_uuid, group_uuid, user_uuid
from tests.conftest import engine_environment, session_cli
from tests.helpers import PROJECT_ROOT, Cli, run_concurrently

TABLE = "cruddur-messages"

HOSTILE_DISPLAY_NAME = "O'Brien \"Bobby\" '; drop table users; -- 🔥 نور"
HOSTILE_ACTIVITY = "'; drop table users; -- %s %(x)s {0} $1 \\ \u202eright-to-left override"
HOSTILE_TEXTS = (
    "Robert'); DROP TABLE users;--",
    "\"double\" and 'single' quotes, a backslash \\ and a %s placeholder",
    "emoji 👩🏽‍🔬 🇳🇴 with a zero-width joiner, and \u202ereversed",
    "نص من اليمين إلى اليسار مع English في الوسط",
    "  leading and trailing spaces  ",
    "GRP#not-a-key MSG#not-a-key {\"S\": \"json\"}",
    "two\nlines",
)
HOSTILE_CONVERSATION = "hostile-strings"


@dataclass(frozen=True)
class Environment:
    cli: Cli
    seeds: Path
    endpoints: Endpoints


def _write_hostile_seeds(seeds: Path) -> None:
    """The project's seeds, edited as text (so their line numbers stay), plus the hostile strings."""
    shutil.copytree(PROJECT_ROOT / "seeds", seeds)
    users = seeds / "users.yaml"
    text = users.read_text(encoding="utf-8")
    assert "display_name: Maren Solberg\n" in text
    users.write_text(text.replace("Maren Solberg", _quoted(HOSTILE_DISPLAY_NAME)), encoding="utf-8")
    _append(seeds / "activities.yaml", f"  - handle: maren_kiln\n    message: {_quoted(HOSTILE_ACTIVITY)}\n")
    messages = "".join(
        f"      - from: {('tobias_w', 'maren_kiln')[i % 2]}\n        minutes: {i}\n        text: {_quoted(text)}\n"
        for i, text in enumerate(HOSTILE_TEXTS)
    )
    _append(seeds / "conversations.yaml",
            f"  - id: {HOSTILE_CONVERSATION}\n    between: [maren_kiln, tobias_w]\n    messages:\n{messages}")


def _quoted(text: str) -> str:
    # A JSON string is a YAML double-quoted scalar: every character survives, escapes included.
    return json.dumps(text, ensure_ascii=False)


pytestmark = pytest.mark.slow  # every test runs `invoke` against the module's environment


@pytest.fixture(scope="module")
def environment(tmp_path_factory: pytest.TempPathFactory, ddb_engine: str) -> Iterator[Environment]:
    root = tmp_path_factory.mktemp("bad-input")
    seeds = root / "seeds"
    _write_hostile_seeds(seeds)
    cli = session_cli(root / ".cruddur", tmp_path_factory.getbasetemp() / "cruddur-cache",  # the session's cache
                      CRUDDUR_SEEDS_DIR=str(seeds), COLUMNS="200", **engine_environment(ddb_engine))
    try:
        cli("up")
        yield Environment(cli, seeds, cli.endpoints())
    finally:
        cli("down", check=False)


def _everything(endpoints: Endpoints) -> dict[str, object]:
    """Every row, item, table, pool and user the environment holds; equal results mean nothing was written."""
    import psycopg

    with psycopg.connect(endpoints.postgres_url) as conn:
        rows = {
            table: conn.execute(f"select t.*::text, t.xmin::text from public.{table} t order by 1").fetchall()
            for table in ("users", "activities", "bootstrap_meta")
        }
        rows["databases"] = conn.execute("select datname from pg_database order by 1").fetchall()
    dynamodb = endpoints.client("dynamodb")
    tables = dynamodb.list_tables()["TableNames"]
    items = sorted(repr(sorted(item.items())) for name in tables for item in _scan(dynamodb, name))
    cognito = endpoints.client("cognito-idp")
    pools = cognito.list_user_pools(MaxResults=60)["UserPools"]
    users = sorted(
        (pool["Id"], user["Username"], repr(sorted((a["Name"], a["Value"]) for a in user["Attributes"])),
         str(user["UserLastModifiedDate"]))
        for pool in pools for user in cognito.list_users(UserPoolId=pool["Id"])["Users"]
    )
    return {"rows": rows, "tables": tables, "items": items, "pools": [p["Id"] for p in pools], "users": users}


def _scan(client: object, table: str) -> Iterator[dict]:
    arguments = {"TableName": table}
    while True:
        page = client.scan(**arguments)
        yield from page["Items"]
        if "LastEvaluatedKey" not in page:
            return
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


# --- the catalogue -------------------------------------------------------------------------


def _append(path: Path, snippet: str | bytes) -> int:
    """Append ``snippet`` to the fixture file; the 1-based line number its first line lands on."""
    data = path.read_bytes()
    if not data.endswith(b"\n"):
        data += b"\n"
    path.write_bytes(data + (snippet if isinstance(snippet, bytes) else snippet.encode("utf-8")))
    return data.count(b"\n") + 1


def _user(handle: str, display_name: str = "Someone", email: str = "someone@example.test") -> str:
    return f"  - handle: {handle}\n    display_name: {display_name}\n    email: {email}\n"


def _conversation(between: str, sender: str = "maren_kiln", text: str = "hi") -> str:
    return (f"  - id: broken-one\n    between: {between}\n    messages:\n"
            f"      - from: {sender}\n        minutes: 0\n        text: {text}\n")


@dataclass(frozen=True)
class Case:
    """Break one fixture file; ``expected`` builds the message fragments from the line the break landed on."""

    file: str
    breaks: Callable[[Path], int]
    expected: Callable[[int], list[str]]

    @property
    def seed_task(self) -> str:
        return "ddb.seed" if self.file == "conversations.yaml" else "db.seed"


def _replace_file(content: str | bytes) -> Callable[[Path], int]:
    def breaks(path: Path) -> int:
        path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
        return 1

    return breaks


def _appending(snippet: str | bytes) -> Callable[[Path], int]:
    return lambda path: _append(path, snippet)


CASES = {
    "yaml-does-not-parse": Case(
        "users.yaml", _appending("  - handle: a: b\n"),
        lambda line: [f"users.yaml:{line}:14: YAML does not parse", "mapping values are not allowed"]),
    "empty-file": Case(
        "activities.yaml", _replace_file(""), lambda line: ["activities.yaml: file is empty"]),
    "wrong-top-level-type": Case(
        "conversations.yaml", _replace_file("- just\n- a list\n"),
        lambda line: ["conversations.yaml:1:1: the top level must be a mapping", "got a list"]),
    "missing-field": Case(
        "users.yaml", _appending("  - handle: no_email\n    display_name: No Email\n"),
        lambda line: [f"users.yaml:{line}:5: a user is missing the key 'email'"]),
    "number-for-a-handle": Case(
        "users.yaml", _appending(_user("12345")),
        lambda line: [f"users.yaml:{line}:13: handle must be a string, not a number", "(got 12345)"]),
    "duplicate-handle": Case(
        "users.yaml", _appending(_user("Maren_Kiln", email="other@example.test")),
        lambda line: [f"users.yaml:{line}:13: handle is already used on line 4", "(got 'Maren_Kiln')"]),
    "not-an-email": Case(
        "users.yaml", _appending(_user("new_user", email="new.user.example.test")),
        lambda line: [f"users.yaml:{line + 2}:12: email must look like name@domain.tld",
                      "(got 'new.user.example.test')"]),
    "handle-with-a-space": Case(
        "users.yaml", _appending(_user("'maren kiln'")),
        lambda line: [f"users.yaml:{line}:13: handle may only use letters", "(got 'maren kiln')"]),
    "handle-with-a-hash": Case(
        "users.yaml", _appending(_user("'maren#kiln'")),
        lambda line: [f"users.yaml:{line}:13: handle may only use letters", "(got 'maren#kiln')"]),
    "unknown-sender": Case(
        "conversations.yaml", _appending(_conversation("[maren_kiln, tobias_w]", sender="ghost_user")),
        lambda line: [f"conversations.yaml:{line + 3}:15: from must be one of the conversation's members",
                      "(got 'ghost_user')"]),
    "unknown-member": Case(
        "conversations.yaml", _appending(_conversation("[maren_kiln, ghost_user]")),
        lambda line: [f"conversations.yaml:{line + 1}:27: between names no user in users.yaml",
                      "(got 'ghost_user')"]),
    "conversation-with-itself": Case(
        "conversations.yaml", _appending(_conversation("[maren_kiln, maren_kiln]")),
        lambda line: [f"conversations.yaml:{line + 1}:14: a conversation needs two different users",
                      "(got ['maren_kiln', 'maren_kiln'])"]),
    "empty-message": Case(
        "conversations.yaml", _appending(_conversation("[maren_kiln, tobias_w]", text='""')),
        lambda line: [f"conversations.yaml:{line + 5}:15: text must not be blank", "(got '')"]),
    "message-over-1024-characters": Case(
        "conversations.yaml", _appending(_conversation("[maren_kiln, tobias_w]", text="x" * 1025)),
        lambda line: [f"conversations.yaml:{line + 5}:15: text is 1025 characters long; at most 1024",
                      "(got 'xxxx"]),
    "not-utf-8": Case(
        "activities.yaml", _appending(b"  - handle: maren_kiln\n    message: caf\xe9 au lait\n"),
        lambda line: [f"activities.yaml:{line + 1}:17: file is not valid UTF-8", "(got b'\\xe9')"]),
    "over-the-size-limit": Case(
        "activities.yaml", _appending("# " + "x" * (2 * 1024 * 1024) + "\n"),
        lambda line: ["activities.yaml: file is", "fixture files may be at most 2097152 bytes"]),
}


@pytest.mark.parametrize("name", CASES)
def test_bad_fixture_exits_2_names_the_place_and_writes_nothing(
    environment: Environment, tmp_path: Path, name: str
) -> None:
    case = CASES[name]
    seeds = tmp_path / "seeds"
    shutil.copytree(environment.seeds, seeds)
    line = case.breaks(seeds / case.file)
    before = _everything(environment.endpoints)

    seeds_env = {"CRUDDUR_SEEDS_DIR": str(seeds)}
    results = run_concurrently(environment.cli.env, [(["up"], seeds_env), ([case.seed_task], seeds_env)])

    for result in results:
        assert result.returncode == 2, (result.args, result.stdout, result.stderr)
        assert "nothing was written" in result.stderr and "Traceback" not in result.stderr
        for fragment in case.expected(line):
            assert fragment in result.stderr, (result.args, result.stderr)
    assert _everything(environment.endpoints) == before


BAD_OPTIONS = {
    "unknown-target": (["up", "--target", "staging"], {},
                       "--target: invalid value 'staging' for target; choose one of: local, prod"),
    "unknown-target-of-a-db-task": (["db.seed", "--target", "staging"], {}, "invalid value 'staging' for target"),
    "unknown-backend": (["up", "--backend", "podman"], {}, "--backend: invalid value 'podman' for backend"),
    "timeout-not-a-number": (["up", "--timeout", "soon"], {}, "invalid value 'soon' for ready_timeout"),
    "table-name-with-space": (["up"], {"CRUDDUR_TABLE_NAME": "messages table!"},
                              "DynamoDB rejects the table name 'messages table!'"),
    "table-name-too-short": (["ddb.schema-load"], {"CRUDDUR_TABLE_NAME": "ab"}, "DynamoDB rejects the table name 'ab'"),
    "table-flag-with-slash": (["ddb.drop", "--table", "a/b"], {}, "DynamoDB rejects the table name 'a/b'"),
    "synthetic-zero-groups": (["ddb.seed", "--synthetic", "0:5"], {}, "--synthetic '0:5': expected GROUPS:MESSAGES"),
    "group-not-a-uuid": (["ddb.create-message", "--group", "not-a-uuid", "--handle", "maren_kiln", "--text", "hi"], {},
                         "--group: 'not-a-uuid' is not a UUID"),
    "message-over-1024-characters": (
        ["ddb.create-message", "--group", group_uuid("mud-and-fire"), "--handle", "maren_kiln", "--text", "x" * 1025],
        {}, "1025"),
    "group-with-oneself": (["ddb.create-group", "--from", "maren_kiln", "--to", "maren_kiln", "--text", "hi"], {},
                           "maren_kiln cannot start a conversation with themselves"),
    "group-with-unknown-user": (["ddb.create-group", "--from", "maren_kiln", "--to", "ghost_user", "--text", "hi"], {},
                                "no user 'ghost_user'; the known handles are"),
    "limit-not-a-number": (["ddb.scan", "--limit", "abc"], {}, "--limit: 'abc' is not a whole number"),
    "get-conversation-group-not-a-uuid": (["ddb.get-conversation", "--group", "not-a-uuid"], {},
                                          "--group: 'not-a-uuid' is not a UUID; group ids are listed by"),
    "get-conversation-group-a-key": (["ddb.get-conversation", "--group", "MSG#2026-01-01T00:00:00+00:00"], {},
                                     "is a table key, not a UUID"),
    "list-conversations-unknown-handle": (["ddb.list-conversations", "--handle", "nobody"], {},
                                          "--handle: no user 'nobody'; the known handles are "),
    "create-message-without-group": (["ddb.create-message", "--handle", "maren_kiln", "--text", "hi"], {},
                                     "--group is required: the message group's UUID"),
    "interval-not-a-number": (["ddb.stream-worker", "--once", "--interval", "often"], {},
                              "--interval: 'often' is not a number of seconds"),
    "dotenv-into-a-missing-folder": (["env", "--dotenv", "/nonexistent/dir/.env"], {},
                                     "--dotenv: the folder '/nonexistent/dir' does not exist"),
}


@pytest.mark.both_engines
def test_bad_option_values_exit_2_and_write_nothing(environment: Environment) -> None:
    """Every case of BAD_OPTIONS at once: they fail before writing, so they cannot interfere."""
    before = _everything(environment.endpoints)
    runs = [(command, extra_env) for command, extra_env, _ in BAD_OPTIONS.values()]
    results = dict(zip(BAD_OPTIONS, run_concurrently(environment.cli.env, runs)))
    wrong = {
        name: (result.returncode, result.stderr)
        for name, result in results.items()
        if result.returncode != 2 or BAD_OPTIONS[name][2] not in result.stderr or "Traceback" in result.stderr
    }
    assert not wrong
    assert _everything(environment.endpoints) == before
    assert not Path("/nonexistent").exists()


@pytest.mark.both_engines
def test_hostile_strings_round_trip_exactly(environment: Environment) -> None:
    """Valid input that would break string-built SQL or key formats comes back byte for byte."""
    import psycopg

    from bootstrap.messaging import Messages

    with psycopg.connect(environment.endpoints.postgres_url) as conn:
        display_name = conn.execute("select display_name from public.users where handle = %s",
                                    ("maren_kiln",)).fetchone()[0]
        message = conn.execute("select message from public.activities where uuid = %s",
                               (activity_uuid("maren_kiln", 2),)).fetchone()[0]
        assert conn.execute("select count(*) from public.users").fetchone()[0] == 5
    assert display_name == HOSTILE_DISPLAY_NAME
    assert message == HOSTILE_ACTIVITY

    messages = Messages(environment.endpoints.client("dynamodb"), TABLE)
    group = group_uuid(HOSTILE_CONVERSATION)
    listed = messages.list_messages(group).items
    assert [item["message"] for item in listed] == list(HOSTILE_TEXTS)
    assert {item["user_display_name"] for item in listed if item["user_handle"] == "maren_kiln"} == {
        HOSTILE_DISPLAY_NAME}

    groups = {item["message_group_uuid"]: item for item in messages.list_message_groups(user_uuid("tobias_w")).items}
    assert groups[group]["message"] == HOSTILE_TEXTS[-1]
    assert groups[group]["user_display_name"] == HOSTILE_DISPLAY_NAME
