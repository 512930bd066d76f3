"""The YAML fixtures in ``seeds/``: the one place their schema is written down and checked.

``load_fixtures`` reads ``users.yaml``, ``activities.yaml`` and
``conversations.yaml``, validates all of them, and either returns frozen
``Fixtures`` or raises one ``FixtureError`` that lists every problem found in
every file, each with its file, line, column and offending value. Seeding only
starts after a clean load, so a bad fixture never leaves half-written data.

Ids are deterministic (uuid5 over ``NAMESPACE``), so seeding twice produces
the same rows and items, and the fingerprints let the seeder skip a part whose
content has not changed. Text is kept exactly as written, never stripped.

A user or activity may carry ``columns:``, values for columns that
``sql/schema.sql`` added beyond the contract's; only their names and shapes are
checked here, whether the table has them is checked by ``db.seed``.

This module is on the warm path of ``invoke up``: it imports ``yaml`` lazily,
prefers libyaml's ``CSafeLoader`` and walks the composed node tree once, which
is what gives us line numbers.
"""

from __future__ import annotations

import hashlib
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any, Iterable

from .errors import InputError

NAMESPACE = uuid.UUID("818fe571-04d6-458a-a2c1-cc3000a8bad4")

USERS_FILE = "users.yaml"
ACTIVITIES_FILE = "activities.yaml"
CONVERSATIONS_FILE = "conversations.yaml"

MAX_FIXTURE_BYTES = 2 * 1024 * 1024
MAX_TEXT_LENGTH = 1024
MAX_DISPLAY_NAME_LENGTH = 100
# Conversations are placed in the recent past when seeded, and the app only
# lists messages of the current year; a bounded span also keeps timestamp
# arithmetic far from datetime's limits.
MAX_CONVERSATION_MINUTES = 7 * 24 * 60

# Handles go into URLs and into DynamoDB keys joined with '#'.
_HANDLE = re.compile(r"[A-Za-z0-9_]{1,32}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\.[^@\s]+")
_SLUG = re.compile(r"[a-z0-9][a-z0-9-]{0,62}")

_USER_KEYS = ("handle", "display_name", "email")
_ACTIVITY_KEYS = ("handle", "message")
# `columns:` sets columns that sql/schema.sql added beyond the contract's (db.seed checks they exist);
# the columns the seeder derives itself cannot be set that way.
_COLUMNS_KEY = "columns"
_COLUMN_NAME = re.compile(r"[a-z_][a-z0-9_]{0,62}")
USER_SEEDED_COLUMNS = frozenset({"uuid", "handle", "display_name", "email", "cognito_user_id"})
ACTIVITY_SEEDED_COLUMNS = frozenset({"uuid", "user_uuid", "message", "expires_at", "created_at"})
_CONVERSATION_KEYS = ("id", "between", "messages")
_MESSAGE_KEYS = ("from", "minutes", "text")


def user_uuid(handle: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"user:{handle}"))


def group_uuid(conversation_id: str) -> str:
    return str(uuid.uuid5(NAMESPACE, f"group:{conversation_id}"))


def message_uuid(group: str, index: int) -> str:
    return str(uuid.uuid5(NAMESPACE, f"message:{group}:{index}"))


def activity_uuid(handle: str, ordinal: int) -> str:
    """``ordinal`` is the position among that user's activities, so one user's edits never renumber another's."""
    return str(uuid.uuid5(NAMESPACE, f"activity:{handle}:{ordinal}"))


@dataclass(frozen=True)
class UserFixture:
    handle: str
    display_name: str
    email: str
    line: int
    columns: tuple[tuple[str, Any], ...] = ()  # extra columns, from `columns:`

    @property
    def uuid(self) -> str:
        return user_uuid(self.handle)


@dataclass(frozen=True)
class ActivityFixture:
    handle: str
    message: str
    expires_in_days: int | None
    ordinal: int
    line: int
    columns: tuple[tuple[str, Any], ...] = ()  # extra columns, from `columns:`

    @property
    def uuid(self) -> str:
        return activity_uuid(self.handle, self.ordinal)


@dataclass(frozen=True)
class MessageFixture:
    sender: str
    minutes: int
    text: str
    line: int


@dataclass(frozen=True)
class ConversationFixture:
    id: str
    members: tuple[str, str]
    messages: tuple[MessageFixture, ...]
    line: int

    @property
    def group_uuid(self) -> str:
        return group_uuid(self.id)

    @property
    def span_minutes(self) -> int:
        return self.messages[-1].minutes


@dataclass(frozen=True)
class Fixtures:
    """Everything in ``seeds/``, validated. A fingerprint changes exactly when that part's content does."""

    users: tuple[UserFixture, ...]
    activities: tuple[ActivityFixture, ...]
    conversations: tuple[ConversationFixture, ...]

    def user(self, handle: str) -> UserFixture:
        try:
            return self._users_by_handle[handle]
        except KeyError:
            raise KeyError(f"no user with the handle {handle!r} in the fixtures") from None

    @cached_property
    def _users_by_handle(self) -> dict[str, UserFixture]:
        return {user.handle: user for user in self.users}

    @property
    def users_fingerprint(self) -> str:
        return _fingerprint([u.handle, u.display_name, u.email, *_extra(u.columns)] for u in self.users)

    @property
    def activities_fingerprint(self) -> str:
        return _fingerprint([a.handle, a.message, a.expires_in_days, *_extra(a.columns)] for a in self.activities)

    @property
    def conversations_fingerprint(self) -> str:
        return _fingerprint(
            [c.id, list(c.members), [[m.sender, m.minutes, m.text] for m in c.messages]]
            for c in self.conversations
        )


def _extra(columns: tuple[tuple[str, Any], ...]) -> list[Any]:
    # Only entries that set columns gain a field, so fixtures without `columns:` keep their fingerprints.
    if not columns:
        return []
    return [{name: value.isoformat() if isinstance(value, date) else value for name, value in columns}]


def _fingerprint(rows: Iterable[list[Any]]) -> str:
    # Content only, never line numbers: moving an entry or adding a comment is not a change.
    canonical = json.dumps(list(rows), ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class Problem:
    """One thing wrong in a fixture file. ``line`` and ``column`` are 1-based."""

    path: Path
    line: int | None
    column: int | None
    message: str
    value: object = None

    def __str__(self) -> str:
        where = _display_path(self.path)
        if self.line is not None:
            where += f":{self.line}"
            if self.column is not None:
                where += f":{self.column}"
        got = "" if self.value is None else f" (got {_short_repr(self.value)})"
        return f"{where}: {self.message}{got}"


class FixtureError(InputError):
    """The fixtures are invalid; ``problems`` holds every problem found, in file order."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        lines = [f"{count} {noun} in the fixtures; nothing was written:"]
        lines += [f"  {problem}" for problem in self.problems]
        super().__init__("\n".join(lines))


def _display_path(path: Path) -> str:
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _short_repr(value: object, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def load_fixtures(seeds_dir: Path) -> Fixtures:
    """Read and validate the three fixture files; raise ``FixtureError`` listing every problem."""
    seeds_dir = Path(seeds_dir)
    users_file = _FixtureFile.read(seeds_dir / USERS_FILE, "users", required=True)
    users, handles = _parse_users(users_file)
    # Without a readable users.yaml every reference would look wrong; report the file, not each reference.
    known = handles if users_file.entries is not None else None

    activities_file = _FixtureFile.read(seeds_dir / ACTIVITIES_FILE, "activities")
    activities = _parse_activities(activities_file, known)

    conversations_file = _FixtureFile.read(seeds_dir / CONVERSATIONS_FILE, "conversations")
    conversations = _parse_conversations(conversations_file, known)

    problems = [
        problem
        for file in (users_file, activities_file, conversations_file)
        for problem in sorted(file.problems, key=lambda problem: problem.line or 0)
    ]
    if problems:
        raise FixtureError(problems)
    return Fixtures(tuple(users), tuple(activities), tuple(conversations))


class _Unreadable:
    """Marks a value YAML could not build; the reason is already reported."""

    def __repr__(self) -> str:
        return "<unreadable>"


_UNREADABLE = _Unreadable()


@dataclass
class _FixtureFile:
    """One fixture file: its entry nodes (None if the file is unusable) and the problems found in it."""

    path: Path
    problems: list[Problem] = field(default_factory=list)
    entries: list[Any] | None = None
    loader: Any = field(default=None, repr=False)
    unreadable: set[int] = field(default_factory=set, repr=False)

    @classmethod
    def read(cls, path: Path, key: str, required: bool = False) -> _FixtureFile:
        file = cls(path)
        if not required and not path.exists():
            file.entries = []
            return file
        text = file._read_text()
        root = file._compose(text) if text is not None else None
        if root is not None:
            file.entries = file._top_level_list(root, key)
        return file

    def report(self, node: Any, message: str, value: object = None) -> None:
        mark = getattr(node, "start_mark", node)
        line = mark.line + 1 if mark is not None else None
        column = mark.column + 1 if mark is not None else None
        self.problems.append(Problem(self.path, line, column, message, None if value is _UNREADABLE else value))

    def value(self, node: Any) -> Any:
        """The Python value of ``node``, or ``_UNREADABLE`` after reporting why YAML cannot build it."""
        import yaml

        if id(node) in self.unreadable:
            return _UNREADABLE
        try:
            return self.loader.construct_object(node, deep=True)
        except (yaml.YAMLError, ValueError, OverflowError) as exc:
            # e.g. an unknown tag (`!foo`), an impossible date (2024-02-30), an unhashable key
            reason = getattr(exc, "problem", None) or str(exc)
            self.unreadable.add(id(node))
            self.report(node, f"YAML cannot read this value: {reason}")
            return _UNREADABLE

    def _read_text(self) -> str | None:
        """The file's text, or None after reporting why it is missing, too large, unreadable or not UTF-8."""
        if not self.path.exists():
            self.report(None, f"file not found; {self.path.name} is required")
            return None
        try:
            size = self.path.stat().st_size
            if size > MAX_FIXTURE_BYTES:
                self.report(None, f"file is {size} bytes; fixture files may be at most {MAX_FIXTURE_BYTES} bytes")
                return None
            raw = self.path.read_bytes()
        except OSError as exc:
            self.report(None, f"cannot read the file: {exc.strerror or exc}")
            return None
        try:
            return raw.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            self._report_bad_byte(raw, exc)
            return None

    def _report_bad_byte(self, raw: bytes, exc: UnicodeDecodeError) -> None:
        line_start = raw.rfind(b"\n", 0, exc.start) + 1
        line = raw.count(b"\n", 0, exc.start) + 1
        column = len(raw[line_start : exc.start].decode("utf-8", errors="replace")) + 1
        message = "file is not valid UTF-8; save it as UTF-8"
        self.problems.append(Problem(self.path, line, column, message, raw[exc.start : exc.end]))

    def _compose(self, text: str) -> Any:
        """The document's root node, or None after reporting why YAML could not parse it."""
        import yaml

        try:
            self.loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)(text)
            root = self.loader.get_single_node()
        except yaml.reader.ReaderError as exc:
            self._report_bad_character(text, exc)
            return None
        except yaml.MarkedYAMLError as exc:
            self._report_parse_error(exc)
            return None
        except yaml.YAMLError as exc:
            self.report(None, f"YAML does not parse: {exc}")
            return None
        if root is None:
            self.report(None, "file is empty; it holds no YAML document")
        return root

    def _report_parse_error(self, exc: Any) -> None:
        detail = ", ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
        mark = exc.problem_mark or exc.context_mark
        # An unclosed bracket is found far from where it opened; say where that was.
        if exc.context_mark is not None and mark is not None and exc.context_mark.line != mark.line:
            detail += f" (started on line {exc.context_mark.line + 1})"
        self.report(mark, f"YAML does not parse: {detail}")

    def _report_bad_character(self, text: str, exc: Any) -> None:
        # libyaml reports a byte offset and PyYAML a character offset; the character itself is unambiguous.
        index = text.find(chr(exc.character))
        line = text.count("\n", 0, index) + 1 if index >= 0 else None
        column = index - text.rfind("\n", 0, index) if index >= 0 else None
        message = f"YAML does not parse: {exc.reason} (character U+{exc.character:04X})"
        self.problems.append(Problem(self.path, line, column, message))

    def _top_level_list(self, root: Any, key: str) -> list[Any] | None:
        import yaml

        expected = f"the top level must be a mapping with the one key '{key}' holding a list"
        if not isinstance(root, yaml.MappingNode):
            self.report(root, f"{expected}; got {_node_kind(root)}", self.value(root))
            return None
        found = None
        for key_node, value_node in root.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.value == key:
                found = value_node
            else:
                self.report(key_node, f"unknown top-level key; {expected}", _key_name(key_node))
        if found is None:
            # A misspelt key was just reported; only an empty mapping needs its own message.
            if not root.value:
                self.report(root, f"missing the top-level key '{key}'; {expected}")
            return None
        if not isinstance(found, yaml.SequenceNode):
            self.report(found, f"'{key}' must be a list (write '{key}: []' for none); got {_node_kind(found)}",
                        self.value(found))
            return None
        return list(found.value)


def _key_name(node: Any) -> str | None:
    # The key as written: `1:` and `yes:` are unknown keys too, and reading them as text avoids constructing them.
    import yaml

    return node.value if isinstance(node, yaml.ScalarNode) else None


def _node_kind(node: Any) -> str:
    import yaml

    if isinstance(node, yaml.MappingNode):
        return "a mapping"
    if isinstance(node, yaml.SequenceNode):
        return "a list"
    return "a single value"


def _type_name(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "a number"
    if isinstance(value, float):
        return "a decimal number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _entry_fields(
    file: _FixtureFile, node: Any, what: str, required: tuple[str, ...], optional: tuple[str, ...] = ()
) -> dict[str, Any] | None:
    """The value nodes of one entry by key, reporting a non-mapping, unknown, repeated and missing keys.

    Returns None when the entry is not a mapping or lacks a required key.
    """
    import yaml

    allowed = required + optional
    shape = f"{what} must be a mapping with the keys {', '.join(allowed)}"
    if not isinstance(node, yaml.MappingNode):
        file.report(node, f"{shape}; got {_node_kind(node)}", file.value(node))
        return None
    fields: dict[str, Any] = {}
    for key_node, value_node in node.value:
        key = _key_name(key_node)
        if key not in allowed:
            hint = _did_you_mean(key, allowed)
            file.report(key_node, f"unknown key in {what}{hint}; allowed: {', '.join(allowed)}", key)
        elif key in fields:
            first = fields[key].start_mark.line + 1
            file.report(key_node, f"key '{key}' appears twice in this {what} (first on line {first})")
        else:
            fields[key] = value_node
    missing = [key for key in required if key not in fields]
    for key in missing:
        file.report(node, f"{what} is missing the key '{key}'")
    return None if missing else fields


def _did_you_mean(word: str | None, choices: Iterable[str]) -> str:
    import difflib  # only on the error path

    close = difflib.get_close_matches(word or "", list(choices), n=1)
    return f" (did you mean '{close[0]}'?)" if close else ""


def _string(file: _FixtureFile, node: Any, name: str) -> str | None:
    """The string value of ``node``, or None after reporting why it is not a usable string."""
    value = file.value(node)
    if value is _UNREADABLE:
        return None
    if not isinstance(value, str):
        hint = "; put it in quotes" if isinstance(value, (bool, int, float)) else ""
        file.report(node, f"{name} must be a string, not {_type_name(value)}{hint}", value)
        return None
    if "\x00" in value:
        file.report(node, f"{name} contains a NUL character, which Postgres cannot store", value)
        return None
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        file.report(node, f"{name} contains a lone surrogate escape, which is not valid Unicode", value)
        return None
    return value


def _integer(file: _FixtureFile, node: Any, name: str, minimum: int) -> int | None:
    value = file.value(node)
    if value is _UNREADABLE:
        return None
    # bool is an int in Python, but `yes` meant as a number is a mistake.
    if not isinstance(value, int) or isinstance(value, bool):
        file.report(node, f"{name} must be a whole number, not {_type_name(value)}", value)
        return None
    if value < minimum:
        file.report(node, f"{name} must be at least {minimum}", value)
        return None
    return value


def _text(file: _FixtureFile, node: Any, name: str, max_length: int) -> str | None:
    value = _string(file, node, name)
    if value is None:
        return None
    if not value.strip():
        file.report(node, f"{name} must not be blank", value)
        return None
    if len(value) > max_length:
        file.report(node, f"{name} is {len(value)} characters long; at most {max_length} are allowed", value)
        return None
    return value


def _handle(file: _FixtureFile, node: Any, name: str) -> str | None:
    value = _string(file, node, name)
    if value is not None and not _HANDLE.fullmatch(value):
        file.report(
            node,
            f"{name} may only use letters A-Z a-z, digits and '_' (1-32 of them): "
            "the app puts handles into URLs and into keys separated by '#'",
            value,
        )
        return None
    return value


def _known_handle(file: _FixtureFile, node: Any, name: str, known: set[str] | None) -> str | None:
    """A handle that names a user in users.yaml (``known`` None: users.yaml is unusable, skip the check)."""
    handle = _handle(file, node, name)
    if handle is None or known is None or handle in known:
        return handle
    by_case = {existing.casefold(): existing for existing in known}
    near = by_case.get(handle.casefold())
    hint = f"; did you mean '{near}'?" if near else ""
    file.report(node, f"{name} names no user in {USERS_FILE}{hint}", handle)
    return None


def _parse_users(file: _FixtureFile) -> tuple[list[UserFixture], set[str]]:
    """Valid users, and every well-formed handle (so one bad email does not orphan that user's activities)."""
    users: list[UserFixture] = []
    handles: set[str] = set()
    first_handle: dict[str, int] = {}
    first_email: dict[str, int] = {}
    for node in file.entries or ():
        fields = _entry_fields(file, node, "a user", _USER_KEYS, (_COLUMNS_KEY,))
        if fields is None:
            continue
        line = node.start_mark.line + 1
        handle = _unique(file, fields["handle"], _handle(file, fields["handle"], "handle"), first_handle, "handle")
        display_name = _text(file, fields["display_name"], "display_name", MAX_DISPLAY_NAME_LENGTH)
        email = _unique(file, fields["email"], _email(file, fields["email"]), first_email, "email")
        if handle is not None:
            handles.add(handle)
        columns = _columns(file, fields.get(_COLUMNS_KEY), "a user", USER_SEEDED_COLUMNS)
        if handle is not None and display_name is not None and email is not None and columns is not None:
            users.append(UserFixture(handle, display_name, email, line, columns))
    return users, handles


def _email(file: _FixtureFile, node: Any) -> str | None:
    value = _string(file, node, "email")
    if value is not None and not _EMAIL.fullmatch(value):
        file.report(node, "email must look like name@domain.tld", value)
        return None
    return value


def _unique(file: _FixtureFile, node: Any, value: str | None, seen: dict[str, int], name: str) -> str | None:
    """``value`` if no earlier entry used it (ignoring case, as the app and Cognito compare them), else None."""
    if value is None:
        return None
    key = value.casefold()
    if key in seen:
        file.report(node, f"{name} is already used on line {seen[key]} ({name}s are unique, ignoring case)", value)
        return None
    seen[key] = node.start_mark.line + 1
    return value


def _parse_activities(file: _FixtureFile, known: set[str] | None) -> list[ActivityFixture]:
    activities: list[ActivityFixture] = []
    ordinals: dict[str, int] = {}
    for node in file.entries or ():
        fields = _entry_fields(file, node, "an activity", _ACTIVITY_KEYS, ("expires_in_days", _COLUMNS_KEY))
        if fields is None:
            continue
        handle = _known_handle(file, fields["handle"], "handle", known)
        message = _text(file, fields["message"], "message", MAX_TEXT_LENGTH)
        expires = fields.get("expires_in_days")
        expires_in_days = _integer(file, expires, "expires_in_days", 1) if expires is not None else None
        columns = _columns(file, fields.get(_COLUMNS_KEY), "an activity", ACTIVITY_SEEDED_COLUMNS)
        if handle is None or message is None or (expires is not None and expires_in_days is None) or columns is None:
            continue
        ordinal = ordinals.get(handle, 0)
        ordinals[handle] = ordinal + 1
        activities.append(ActivityFixture(handle, message, expires_in_days, ordinal, node.start_mark.line + 1,
                                          columns))
    return activities


def _parse_conversations(file: _FixtureFile, known: set[str] | None) -> list[ConversationFixture]:
    conversations: list[ConversationFixture] = []
    first_id: dict[str, int] = {}
    for node in file.entries or ():
        fields = _entry_fields(file, node, "a conversation", _CONVERSATION_KEYS)
        if fields is None:
            continue
        conversation_id = _unique(file, fields["id"], _slug(file, fields["id"]), first_id, "id")
        members = _members(file, fields["between"], known)
        messages = _messages(file, fields["messages"], members)
        if conversation_id is not None and members is not None and messages is not None:
            line = node.start_mark.line + 1
            conversations.append(ConversationFixture(conversation_id, members, messages, line))
    return conversations


def _columns(file: _FixtureFile, node: Any, what: str,
             seeded: frozenset[str]) -> tuple[tuple[str, Any], ...] | None:
    """The `columns:` mapping of an entry (column name -> scalar), () when absent, None after reporting."""
    import yaml

    if node is None:
        return ()
    if not isinstance(node, yaml.MappingNode):
        file.report(node, f"columns of {what} must be a mapping of column name to value; got {_node_kind(node)}",
                    file.value(node))
        return None
    columns: dict[str, Any] = {}
    ok = True
    for key_node, value_node in node.value:
        name, value = _key_name(key_node), file.value(value_node)
        if name is None or not _COLUMN_NAME.fullmatch(name):
            file.report(key_node, "a column name is lowercase letters, digits and '_', starting with a letter or '_'",
                        name)
            ok = False
        elif name in seeded:
            file.report(key_node, f"column {name} is set by the seeder itself; give it as its own key or not at all",
                        name)
            ok = False
        elif name in columns:
            file.report(key_node, f"column {name} appears twice in this {what}", name)
            ok = False
        elif value is _UNREADABLE or not (value is None or isinstance(value, (str, int, float, bool, date))):
            if value is not _UNREADABLE:
                file.report(value_node, f"column {name} must be a single value, not {_type_name(value)}", value)
            ok = False
        elif isinstance(value, str) and "\x00" in value:
            file.report(value_node, f"column {name} contains a NUL character, which Postgres cannot store", value)
            ok = False
        else:
            columns[name] = value
    return tuple(columns.items()) if ok else None


def _slug(file: _FixtureFile, node: Any) -> str | None:
    value = _string(file, node, "id")
    if value is not None and not _SLUG.fullmatch(value):
        file.report(node, "id must be a slug: lowercase letters, digits and '-', starting with a letter or digit, "
                          "at most 63 characters", value)
        return None
    return value


def _members(file: _FixtureFile, node: Any, known: set[str] | None) -> tuple[str, str] | None:
    import yaml

    if not isinstance(node, yaml.SequenceNode) or len(node.value) != 2:
        file.report(node, "between must be a list of exactly two handles", file.value(node))
        return None
    first, second = (_known_handle(file, item, "between", known) for item in node.value)
    if first is None or second is None:
        return None
    if first.casefold() == second.casefold():
        file.report(node, "a conversation needs two different users", [first, second])
        return None
    return first, second


def _messages(
    file: _FixtureFile, node: Any, members: tuple[str, str] | None
) -> tuple[MessageFixture, ...] | None:
    import yaml

    if not isinstance(node, yaml.SequenceNode) or not node.value:
        file.report(node, "messages must be a non-empty list", file.value(node))
        return None
    messages: list[MessageFixture] = []
    valid = True
    previous: tuple[int, int] | None = None  # (minutes, line) of the last message with valid minutes
    for item in node.value:
        fields = _entry_fields(file, item, "a message", _MESSAGE_KEYS)
        if fields is None:
            valid = False
            continue
        sender = _sender(file, fields["from"], members)
        minutes = _minutes(file, fields["minutes"], previous)
        text = _text(file, fields["text"], "text", MAX_TEXT_LENGTH)
        if minutes is not None:
            previous = (minutes, item.start_mark.line + 1)
        if sender is None or minutes is None or text is None:
            valid = False
            continue
        messages.append(MessageFixture(sender, minutes, text, item.start_mark.line + 1))
    return tuple(messages) if valid else None


def _sender(file: _FixtureFile, node: Any, members: tuple[str, str] | None) -> str | None:
    sender = _handle(file, node, "from")
    if sender is not None and members is not None and sender not in members:
        file.report(node, f"from must be one of the conversation's members: {members[0]}, {members[1]}", sender)
        return None
    return sender


def _minutes(file: _FixtureFile, node: Any, previous: tuple[int, int] | None) -> int | None:
    minutes = _integer(file, node, "minutes", 0)
    if minutes is None:
        return None
    if minutes > MAX_CONVERSATION_MINUTES:
        days = MAX_CONVERSATION_MINUTES // (24 * 60)
        file.report(node, f"minutes must be at most {MAX_CONVERSATION_MINUTES} ({days} days)", minutes)
        return None
    if previous is not None and minutes <= previous[0]:
        # Equal minutes would give two messages the same DynamoDB sort key.
        file.report(node, f"minutes must be greater than the previous message's {previous[0]} "
                          f"(line {previous[1]}); they must strictly increase", minutes)
        return None
    return minutes
