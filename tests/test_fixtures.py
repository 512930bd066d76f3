"""Unit tests for bootstrap.fixtures: the real seeds, deterministic ids, fingerprints and every validation rule.

Pure tests: no services. Bad fixtures are written to ``tmp_path``; each case names the file, the line and
the offending value it expects, so a regression in the positions users rely on shows up here.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from bootstrap.fixtures import (
    MAX_FIXTURE_BYTES,
    MAX_TEXT_LENGTH,
    NAMESPACE,
    Fixtures,
    FixtureError,
    Problem,
    activity_uuid,
    group_uuid,
    load_fixtures,
    message_uuid,
    user_uuid,
)

SEEDS = Path(__file__).resolve().parent.parent / "seeds"

USERS = """\
users:
  - handle: alice
    display_name: Alice
    email: alice@example.test
  - handle: bob
    display_name: Bob
    email: bob@example.test
  - handle: carol
    display_name: Carol
    email: carol@example.test
"""

ACTIVITIES = """\
activities:
  - handle: alice
    message: hello
"""

CONVERSATIONS = """\
conversations:
  - id: hello
    between: [alice, bob]
    messages:
      - {from: alice, minutes: 0, text: hi}
      - {from: bob, minutes: 1, text: hey}
"""


def _write(directory: Path, **files: str | bytes | None) -> Path:
    """Write the valid base fixtures, with ``users=...`` etc. replacing (or, with None, removing) a file."""
    contents = {"users": USERS, "activities": ACTIVITIES, "conversations": CONVERSATIONS, **files}
    for name, content in contents.items():
        path = directory / f"{name}.yaml"
        if isinstance(content, bytes):
            path.write_bytes(content)
        elif content is not None:
            path.write_text(textwrap.dedent(content), encoding="utf-8")
    return directory


def _load(directory: Path, **files: str | bytes | None) -> Fixtures:
    return load_fixtures(_write(directory, **files))


def _problems(directory: Path, **files: str | bytes | None) -> tuple[Problem, ...]:
    with pytest.raises(FixtureError) as caught:
        _load(directory, **files)
    return caught.value.problems


def _single_problem(directory: Path, **files: str | bytes | None) -> Problem:
    problems = _problems(directory, **files)
    assert len(problems) == 1, "\n".join(map(str, problems))
    return problems[0]


# --- the real seeds --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def seeds() -> Fixtures:
    return load_fixtures(SEEDS)


def test_real_seeds_meet_the_agreed_shape(seeds: Fixtures) -> None:
    assert len(seeds.users) >= 3
    assert 6 <= len(seeds.activities) <= 10
    long_ones = [c for c in seeds.conversations if len(c.messages) >= 60]
    short_ones = [c for c in seeds.conversations if 3 <= len(c.messages) <= 8]
    assert len(long_ones) == 1
    assert 3 <= len(short_ones) <= 4
    assert len(long_ones) + len(short_ones) == len(seeds.conversations)
    primary, second = long_ones[0].members
    assert seeds.users[0].handle == primary and seeds.users[1].handle == second


def test_real_seeds_have_strictly_increasing_minutes_within_two_days(seeds: Fixtures) -> None:
    for conversation in seeds.conversations:
        minutes = [message.minutes for message in conversation.messages]
        assert all(a < b for a, b in zip(minutes, minutes[1:])), conversation.id
        assert minutes[0] >= 0 and conversation.span_minutes < 2 * 24 * 60


def test_real_seeds_include_quotes_apostrophes_and_emoji(seeds: Fixtures) -> None:
    texts = [m.text for c in seeds.conversations for m in c.messages] + [a.message for a in seeds.activities]
    assert any('"' in text for text in texts)
    assert any("'" in text for text in texts)
    assert any(any(ord(char) > 0xFFFF for char in text) for text in texts)


def test_real_seeds_have_no_filler_text(seeds: Fixtures) -> None:
    texts = [m.text for c in seeds.conversations for m in c.messages]
    assert len(set(texts)) == len(texts)
    assert not any(text.lower().startswith("message ") for text in texts)


def test_lookup_by_handle(seeds: Fixtures) -> None:
    first = seeds.users[0]
    assert seeds.user(first.handle) is first
    with pytest.raises(KeyError, match="nobody"):
        seeds.user("nobody")


# --- deterministic ids ----------------------------------------------------------------------------------------


def test_uuids_are_stable_across_releases() -> None:
    # Hard-coded on purpose: changing NAMESPACE or a prefix would orphan every seeded row and item.
    assert str(NAMESPACE) == "818fe571-04d6-458a-a2c1-cc3000a8bad4"
    assert user_uuid("alice") == str(uuid.uuid5(NAMESPACE, "user:alice"))
    assert group_uuid("hello") == str(uuid.uuid5(NAMESPACE, "group:hello"))
    assert message_uuid(group_uuid("hello"), 3) == str(uuid.uuid5(NAMESPACE, f"message:{group_uuid('hello')}:3"))
    assert activity_uuid("alice", 0) == str(uuid.uuid5(NAMESPACE, "activity:alice:0"))


def test_uuids_differ_by_input() -> None:
    ids = {user_uuid("alice"), user_uuid("bob"), group_uuid("alice"), activity_uuid("alice", 0),
           activity_uuid("alice", 1), activity_uuid("bob", 0), message_uuid("g", 0), message_uuid("g", 1)}
    assert len(ids) == 8


def test_fixture_objects_expose_their_uuids(tmp_path: Path) -> None:
    fixtures = _load(tmp_path, activities="""\
        activities:
          - {handle: bob, message: one}
          - {handle: alice, message: two}
          - {handle: bob, message: three, expires_in_days: 3}
        """)
    assert [(a.handle, a.ordinal) for a in fixtures.activities] == [("bob", 0), ("alice", 0), ("bob", 1)]
    assert fixtures.activities[2].uuid == activity_uuid("bob", 1)
    assert fixtures.activities[2].expires_in_days == 3
    assert fixtures.user("alice").uuid == user_uuid("alice")
    conversation = fixtures.conversations[0]
    assert conversation.group_uuid == group_uuid("hello")
    assert conversation.members == ("alice", "bob")
    assert conversation.span_minutes == 1
    assert [(m.sender, m.minutes, m.text, m.line) for m in conversation.messages] == [
        ("alice", 0, "hi", 5), ("bob", 1, "hey", 6)]


# --- fingerprints ---------------------------------------------------------------------------------------------


def _fingerprints(fixtures: Fixtures) -> tuple[str, str, str]:
    return fixtures.users_fingerprint, fixtures.activities_fingerprint, fixtures.conversations_fingerprint


def test_fingerprints_are_stable_across_loads() -> None:
    assert _fingerprints(load_fixtures(SEEDS)) == _fingerprints(load_fixtures(SEEDS))
    assert all(len(value) == 64 for value in _fingerprints(load_fixtures(SEEDS)))


def test_fingerprints_ignore_comments_whitespace_and_quoting(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    before = _fingerprints(_load(tmp_path / "a"))
    after = _fingerprints(_load(tmp_path / "b", users="""\
        # a comment that moves every line down

        users:
          - handle: "alice"
            email: alice@example.test   # keys in another order
            display_name: 'Alice'

          - {handle: bob, display_name: Bob, email: bob@example.test}
          - handle: carol
            display_name: Carol
            email: carol@example.test
        """))
    assert after == before


@pytest.mark.parametrize("part, files", [
    (0, {"users": USERS.replace("display_name: Bob", "display_name: Robert")}),
    (1, {"activities": ACTIVITIES.replace("hello", "hello!")}),
    (1, {"activities": ACTIVITIES + "    expires_in_days: 2\n"}),
    (2, {"conversations": CONVERSATIONS.replace("minutes: 1,", "minutes: 2,")}),
    (2, {"conversations": CONVERSATIONS.replace("text: hey", "text: hey there")}),
])
def test_a_content_change_changes_only_its_fingerprint(tmp_path: Path, part: int, files: dict[str, str]) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    before = _fingerprints(_load(tmp_path / "a"))
    after = _fingerprints(_load(tmp_path / "b", **files))
    assert [b != a for a, b in zip(before, after)] == [i == part for i in range(3)]


# --- validation: one rule per case ----------------------------------------------------------------------------

LONG = "x" * (MAX_TEXT_LENGTH + 1)


def _conversation(
    id: str = "c", between: str = "[alice, bob]", messages: str = "{from: alice, minutes: 0, text: hi}"
) -> str:
    """A conversations.yaml with one entry on line 2, written as one flow mapping."""
    return f"conversations:\n  - {{id: {id}, between: {between}, messages: [{messages}]}}\n"


CASES = [
    # users.yaml
    ("users", "users:\n  - {handle: bad handle, display_name: A, email: a@example.test}\n",
     2, "may only use letters", "bad handle"),
    ("users", "users:\n  - {handle: 'a#b', display_name: A, email: a@example.test}\n",
     2, "'#'", "a#b"),
    ("users", f"users:\n  - {{handle: {'a' * 33}, display_name: A, email: a@example.test}}\n",
     2, "1-32", "a" * 33),
    ("users", "users:\n  - {handle: 123, display_name: A, email: a@example.test}\n",
     2, "handle must be a string, not a number; put it in quotes", 123),
    ("users", "users:\n  - {handle: alice, display_name: yes, email: a@example.test}\n",
     2, "display_name must be a string, not a boolean", True),
    ("users", USERS + "  - {handle: ALICE, display_name: Al, email: al@example.test}\n",
     11, "handle is already used on line 2", "ALICE"),
    ("users", USERS + "  - {handle: dave, display_name: Dave, email: Alice@Example.test}\n",
     11, "email is already used on line 4", "Alice@Example.test"),
    ("users", "users:\n  - {handle: alice, display_name: '   ', email: a@example.test}\n",
     2, "display_name must not be blank", "   "),
    ("users", f"users:\n  - {{handle: alice, display_name: {'d' * 101}, email: a@example.test}}\n",
     2, "101 characters long; at most 100", "d" * 101),
    ("users", "users:\n  - {handle: alice, display_name: A, email: not-an-email}\n",
     2, "email must look like", "not-an-email"),
    ("users", "users:\n  - handle: alice\n    display_name: A\n",
     2, "missing the key 'email'", None),
    ("users", "users:\n  - handle: alice\n    display_name: A\n    emial: a@example.test\n    email: a@example.test\n",
     4, "unknown key in a user (did you mean 'email'?)", "emial"),
    ("users", "users:\n  - handle: alice\n    handle: bob\n    display_name: A\n    email: a@example.test\n",
     3, "key 'handle' appears twice", None),
    ("users", "users:\n  - alice\n", 2, "a user must be a mapping", "alice"),
    ("users", "- handle: alice\n", 1, "the top level must be a mapping", [{"handle": "alice"}]),
    ("users", "users:\n", 1, "'users' must be a list", None),
    ("users", "users: {handle: alice}\n", 1, "'users' must be a list", {"handle": "alice"}),
    ("users", "# nothing yet\n", None, "file is empty", None),
    ("users", "", None, "file is empty", None),
    ("users", "users:\n  - {handle: alice, display_name: [A\n", 3, "YAML does not parse", None),
    ("users", "users:\n  - {handle: alice, display_name: !shout A, email: a@example.test}\n",
     2, "YAML cannot read this value", None),
    ("users", "users:\n  - {handle: alice, display_name: \"A\\0\", email: a@example.test}\n",
     2, "NUL", "A\x00"),
    ("users", "users: []\n---\nusers: []\n", 2, "expected a single document in the stream, but found another", None),
    # activities.yaml
    ("activities", "activities:\n  - {handle: dave, message: hi}\n", 2, "names no user in users.yaml", "dave"),
    ("activities", "activities:\n  - {handle: Alice, message: hi}\n", 2, "did you mean 'alice'?", "Alice"),
    ("activities", "activities:\n  - {handle: alice, message: '  \t'}\n", 2, "message must not be blank", "  \t"),
    ("activities", f"activities:\n  - {{handle: alice, message: {LONG}}}\n", 2, "1025 characters long", LONG),
    ("activities", "activities:\n  - {handle: alice, message: 42}\n", 2, "message must be a string", 42),
    ("activities", "activities:\n  - {handle: alice, message: hi, expires_in_days: 0}\n",
     2, "expires_in_days must be at least 1", 0),
    ("activities", "activities:\n  - {handle: alice, message: hi, expires_in_days: '3'}\n",
     2, "expires_in_days must be a whole number, not a string", "3"),
    ("activities", "activities:\n  - {handle: alice, message: hi, expires_in_days: true}\n",
     2, "not a boolean", True),
    ("activities", "activities:\n  - {handle: alice, message: hi, expires_in_days: 1.5}\n",
     2, "not a decimal number", 1.5),
    ("activities", "activities:\n  - {handle: alice, message: hi, expires: 3}\n", 2, "unknown key", "expires"),
    ("activities", "activites:\n  - {handle: alice, message: hi}\n", 1, "unknown top-level key", "activites"),
    # `columns:`, for columns that sql/schema.sql added
    ("users", "users:\n  - {handle: alice, display_name: A, email: a@example.test, columns: [bio]}\n",
     2, "columns of a user must be a mapping of column name to value", ["bio"]),
    ("users", "users:\n  - {handle: alice, display_name: A, email: a@example.test, columns: {email: b@x.test}}\n",
     2, "column email is set by the seeder itself", "email"),
    ("users", "users:\n  - {handle: alice, display_name: A, email: a@example.test, columns: {Bio: x}}\n",
     2, "a column name is lowercase letters", "Bio"),
    ("activities", "activities:\n  - {handle: alice, message: hi, columns: {tags: [a, b]}}\n",
     2, "column tags must be a single value, not a list", ["a", "b"]),
    # conversations.yaml
    ("conversations", _conversation(id="Hello World"),
     2, "id must be a slug", "Hello World"),
    ("conversations", CONVERSATIONS + _conversation(id="hello", between="[alice, carol]").split("\n", 1)[1],
     7, "id is already used on line 2", "hello"),
    ("conversations", _conversation(between="[alice]"),
     2, "exactly two handles", ["alice"]),
    ("conversations", _conversation(between="[alice, bob, carol]"),
     2, "exactly two handles", ["alice", "bob", "carol"]),
    ("conversations", _conversation(between="alice"),
     2, "exactly two handles", "alice"),
    ("conversations", _conversation(between="[alice, alice]"),
     2, "two different users", ["alice", "alice"]),
    ("conversations", _conversation(between="[alice, dave]"),
     2, "names no user", "dave"),
    ("conversations", _conversation(messages=""),
     2, "messages must be a non-empty list", []),
    ("conversations", _conversation(messages="{from: carol, minutes: 0, text: hi}"),
     2, "from must be one of the conversation's members: alice, bob", "carol"),
    ("conversations", "conversations:\n  - id: c\n    between: [alice, bob]\n    messages:\n"
                      "      - {from: alice, minutes: 5, text: hi}\n      - {from: bob, minutes: 5, text: hey}\n",
     6, "greater than the previous message's 5 (line 5)", 5),
    ("conversations", _conversation(messages="{from: alice, minutes: -1, text: hi}"),
     2, "minutes must be at least 0", -1),
    ("conversations", _conversation(messages="{from: alice, minutes: no, text: hi}"),
     2, "minutes must be a whole number, not a boolean", False),
    ("conversations", _conversation(messages="{from: alice, minutes: 99999999, text: hi}"),
     2, "minutes must be at most", 99999999),
    ("conversations", _conversation(messages="{from: alice, minutes: 0, text: ''}"),
     2, "text must not be blank", ""),
    ("conversations", _conversation(messages=f"{{from: alice, minutes: 0, text: {LONG}}}"),
     2, "at most 1024", LONG),
    ("conversations", _conversation(messages="{from: alice, text: hi}"),
     2, "a message is missing the key 'minutes'", None),
]


@pytest.mark.parametrize("name, content, line, fragment, value", CASES, ids=[f"{c[0]}-{c[3][:30]}" for c in CASES])
def test_each_rule_reports_file_line_and_value(
    tmp_path: Path, name: str, content: str, line: int | None, fragment: str, value: object
) -> None:
    # Replacing users.yaml would leave the base references dangling; test users on their own.
    others = {"activities": None, "conversations": None} if name == "users" else {}
    problem = _single_problem(tmp_path, **others, **{name: content})
    assert problem.path == tmp_path / f"{name}.yaml"
    assert problem.line == line
    assert fragment in problem.message
    assert problem.value == value
    assert f"{name}.yaml:{line}:" in str(problem) if line else f"{name}.yaml: " in str(problem)


def test_columns_point_at_the_offending_value(tmp_path: Path) -> None:
    problem = _single_problem(tmp_path, users=USERS.replace("email: bob@example.test", "email: bob"))
    assert (problem.line, problem.column) == (7, 12)
    assert str(problem).endswith(":7:12: email must look like name@domain.tld (got 'bob')")


def test_parse_errors_carry_the_yaml_position(tmp_path: Path) -> None:
    problem = _single_problem(tmp_path, activities="activities:\n  - handle: alice\n    message: [unclosed\n")
    assert problem.line == 4 and problem.column is not None
    assert "YAML does not parse" in problem.message


def test_an_empty_top_level_mapping_names_the_missing_key(tmp_path: Path) -> None:
    problem = _single_problem(tmp_path, conversations="{}\n")
    assert problem.line == 1 and "missing the top-level key 'conversations'" in problem.message


def test_an_unclosed_bracket_says_where_it_opened(tmp_path: Path) -> None:
    problem = _single_problem(tmp_path, users="users:\n  - [alice\n\n")
    assert "started on line 2" in problem.message


def test_non_utf8_file_reports_the_line_of_the_bad_byte(tmp_path: Path) -> None:
    content = "users:\n  - handle: alice\n    display_name: Zo\xeb\n    email: a@example.test\n".encode("latin-1")
    problem = _single_problem(tmp_path, users=content)
    assert (problem.line, problem.column, problem.value) == (3, 21, b"\xeb")
    assert "not valid UTF-8" in problem.message


def test_a_control_character_is_located(tmp_path: Path) -> None:
    problem = _single_problem(tmp_path, activities="activities:\n  - handle: alice\n    message: é\x07\n")
    assert (problem.line, problem.column) == (3, 15)


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    assert _load(tmp_path, users=b"\xef\xbb\xbf" + USERS.encode()).users[0].handle == "alice"


def test_too_large_file_is_refused_unread(tmp_path: Path) -> None:
    padding = "# " + "x" * 78 + "\n"
    content = USERS + padding * (MAX_FIXTURE_BYTES // len(padding) + 1)
    problem = _single_problem(tmp_path, users=content)
    assert problem.line is None and "at most 2097152 bytes" in problem.message


def test_missing_users_file_is_a_problem(tmp_path: Path) -> None:
    problem = _single_problem(tmp_path, users=None)
    assert problem.path == tmp_path / "users.yaml" and "file not found" in problem.message


def test_missing_activities_and_conversations_are_empty(tmp_path: Path) -> None:
    fixtures = _load(tmp_path, activities=None, conversations=None)
    assert fixtures.activities == () and fixtures.conversations == ()
    assert len(fixtures.users) == 3


def test_empty_lists_are_allowed(tmp_path: Path) -> None:
    fixtures = _load(tmp_path, activities="activities: []\n", conversations="conversations: []\n")
    assert fixtures.activities == () and fixtures.conversations == ()


def test_an_unusable_users_file_does_not_flag_every_reference(tmp_path: Path) -> None:
    problems = _problems(tmp_path, users="users: [\n")
    assert [p.path.name for p in problems] == ["users.yaml"]


def test_a_user_with_a_bad_email_still_counts_for_references(tmp_path: Path) -> None:
    problems = _problems(tmp_path, users=USERS.replace("alice@example.test", "alice"))
    assert [(p.path.name, p.line) for p in problems] == [("users.yaml", 4)]


def test_all_problems_in_all_files_are_reported_at_once(tmp_path: Path) -> None:
    with pytest.raises(FixtureError) as caught:
        _load(
            tmp_path,
            users=USERS.replace("handle: carol", "handle: 'car ol'"),
            activities="activities:\n  - {handle: alice, message: ''}\n  - {handle: zed, message: hi}\n",
            conversations=CONVERSATIONS.replace("minutes: 1", "minutes: 0"),
        )
    error = caught.value
    assert [(p.path.name, p.line) for p in error.problems] == [
        ("users.yaml", 8), ("activities.yaml", 2), ("activities.yaml", 3), ("conversations.yaml", 6)]
    lines = str(error).splitlines()
    assert lines[0] == "4 problems in the fixtures; nothing was written:"
    assert lines[1:] == [f"  {problem}" for problem in error.problems]
    assert error.exit_code == 2


def test_one_problem_is_singular(tmp_path: Path) -> None:
    with pytest.raises(FixtureError, match=r"^1 problem in the fixtures; nothing was written:\n"):
        _load(tmp_path, users=None)


def test_problem_formatting() -> None:
    assert str(Problem(Path("seeds/users.yaml"), 7, 5, "bad", "x")) == "seeds/users.yaml:7:5: bad (got 'x')"
    assert str(Problem(Path("seeds/users.yaml"), 7, None, "bad")) == "seeds/users.yaml:7: bad"
    assert str(Problem(Path("seeds/users.yaml"), None, None, "bad")) == "seeds/users.yaml: bad"
    assert str(Problem(Path("a.yaml"), 1, 1, "long", "y" * 500)).endswith("...)")


# --- text is kept exactly -------------------------------------------------------------------------------------

HOSTILE = [
    "'; drop table users; --",
    'She said "it\'s fine" and left',
    "It's a 'quoted' word",
    "🔥🎉 emoji, and a family: 👩‍👩‍👧",
    "مرحبا بالعالم: right-to-left",
    "\u202eoverride",
    "  leading and trailing spaces  ",
    "two\nlines\n",
    "tab\there",
    "# not a comment",
    "back\\slash %s {0} $HOME `cmd`",
    "yes",
    "123",
    "null",
]


def test_hostile_strings_round_trip_exactly(tmp_path: Path) -> None:
    # json.dumps yields valid YAML double-quoted scalars, so the test does not depend on a YAML emitter.
    activities = "activities:\n" + "".join(
        f"  - {{handle: alice, message: {json.dumps(text, ensure_ascii=False)}}}\n" for text in HOSTILE)
    messages = "".join(
        f"      - {{from: bob, minutes: {i}, text: {json.dumps(text, ensure_ascii=False)}}}\n"
        for i, text in enumerate(HOSTILE))
    conversations = f"conversations:\n  - id: hostile\n    between: [alice, bob]\n    messages:\n{messages}"
    users = USERS.replace("display_name: Carol", f"display_name: {json.dumps(HOSTILE[1])}")
    fixtures = _load(tmp_path, users=users, activities=activities, conversations=conversations)
    assert [a.message for a in fixtures.activities] == HOSTILE
    assert [m.text for m in fixtures.conversations[0].messages] == HOSTILE
    assert fixtures.user("carol").display_name == HOSTILE[1]


def test_block_and_single_quoted_text_is_kept_as_written(tmp_path: Path) -> None:
    fixtures = _load(tmp_path, activities="""\
        activities:
          - handle: alice
            message: 'It''s "fine"'
          - handle: bob
            message: |
              first line
                indented line
        """)
    assert [a.message for a in fixtures.activities] == ['It\'s "fine"', "first line\n  indented line\n"]


# --- cost -----------------------------------------------------------------------------------------------------


def test_import_is_light() -> None:
    code = "import sys, bootstrap.fixtures; print(sorted(m for m in ('yaml', 'boto3', 'psycopg') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            cwd=SEEDS.parent)
    assert result.stdout.strip() == "[]"


def test_the_pure_python_loader_gives_the_same_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import yaml

    expected = load_fixtures(SEEDS)
    monkeypatch.delattr(yaml, "CSafeLoader", raising=False)
    assert load_fixtures(SEEDS) == expected
    problem = _single_problem(tmp_path, activities="activities:\n  - handle: alice\n    message: é\x07\n")
    assert (problem.line, problem.column) == (3, 15)


def test_columns_are_loaded_and_only_entries_with_columns_change_their_fingerprint(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    plain = _load(tmp_path / "a")
    with_columns = _load(tmp_path / "b", users=USERS.replace(
        "    email: alice@example.test\n",
        "    email: alice@example.test\n    columns: {bio: Throws pots, karma: 3, joined: 2024-05-01, note: null}\n"))
    alice = with_columns.user("alice")
    assert alice.columns[:2] == (("bio", "Throws pots"), ("karma", 3)) and alice.columns[3] == ("note", None)
    assert with_columns.users_fingerprint != plain.users_fingerprint
    # Entries without `columns:` fingerprint as before it existed, so existing environments are not reseeded.
    import hashlib

    before = json.dumps([[u.handle, u.display_name, u.email] for u in plain.users], ensure_ascii=False,
                        separators=(",", ":"))
    assert plain.users_fingerprint == hashlib.sha256(before.encode("utf-8")).hexdigest()
    assert with_columns.activities_fingerprint == plain.activities_fingerprint
