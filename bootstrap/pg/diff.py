"""The app tables as data, and the pure difference between the live ones and ``sql/schema.sql``.

A ``Catalog`` is what ``catalog`` reads from Postgres: per table its columns
(type, nullability, default), constraints (primary, unique, foreign key, check,
exclusion) and the indexes that back no constraint. Names are already quoted
by the server (``quote_ident``) and expressions deparsed with the table's own
schema on the search path, so two catalogs read from different schemas compare
equal when their tables are declared alike.

``diff`` turns (live, desired) into ``Change``s, each with the exact SQL it
runs and a ``Risk``: applied in place keeping every row, applied only if the
data allows it, or destructive (needs ``--force``); ``plan`` decides what to
do with them. Nothing here talks to a database.

Renames cannot be told apart from a drop and an add, so they show as both
(and the drop makes them destructive).
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from dataclasses import asdict, dataclass
from typing import Iterable, Iterator, Sequence, TypeVar

APP_SCHEMA = "public"

# The order statements run in, so that each finds what it needs: foreign keys go
# before the keys they reference and come back after them, tables exist before
# their columns, constraints and indexes.
DROP_FOREIGN_KEY, DROP_OTHER, DROP_COLUMN, DROP_TABLE = 0, 1, 2, 3
CREATE_TABLE, ALTER_COLUMN, ADD_KEY, ADD_CHECK, ADD_FOREIGN_KEY, CREATE_INDEX = 4, 5, 6, 7, 8, 9

_KEY_KINDS = frozenset("pux")
_Named = TypeVar("_Named", "Constraint", "Index")

_CONSTRAINT_WORDS = {"p": "primary key", "u": "unique constraint", "f": "foreign key", "c": "check constraint",
                     "x": "exclusion constraint"}


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    not_null: bool = False
    default: str | None = None
    identity: str = ""  # pg_attribute.attidentity: '' none, 'a' always, 'd' by default
    generated: str = ""  # pg_attribute.attgenerated: '' none, 's' stored, 'v' virtual (default holds the expression)

    def declaration(self) -> str:
        parts = [self.name, self.type]
        if self.identity:
            parts.append(f"generated {'always' if self.identity == 'a' else 'by default'} as identity")
        elif self.generated:
            parts.append(f"generated always as ({self.default}) {'stored' if self.generated == 's' else 'virtual'}")
        elif self.default is not None:
            parts.append(f"default {self.default}")
        if self.not_null:
            parts.append("not null")
        return " ".join(parts)


@dataclass(frozen=True)
class Constraint:
    name: str
    kind: str  # pg_constraint.contype: p u f c x
    definition: str  # pg_get_constraintdef
    references: str | None = None  # the table a foreign key points at


@dataclass(frozen=True)
class Index:
    """An index that backs no constraint; ``method`` is what follows the table in its definition."""

    name: str
    unique: bool
    method: str  # e.g. "USING btree (handle)"


@dataclass(frozen=True)
class Table:
    name: str
    columns: tuple[Column, ...] = ()
    constraints: tuple[Constraint, ...] = ()
    indexes: tuple[Index, ...] = ()

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)


@dataclass(frozen=True)
class Catalog:
    tables: tuple[Table, ...] = ()

    def table(self, name: str) -> Table | None:
        return next((t for t in self.tables if t.name == name), None)

    def fingerprint(self) -> str:
        """Changes exactly when a compared fact changes; what `invoke up` records to skip the comparison."""
        canonical = json.dumps([asdict(t) for t in sorted(self.tables, key=lambda t: t.name)], sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()


_IDENT = r'(?:"(?:[^"]|"")*"|[^\s."]+)'
_INDEX_DEF = re.compile(rf"^CREATE (UNIQUE )?INDEX {_IDENT} ON (?:ONLY )?{_IDENT}\.{_IDENT} (USING .*)$", re.DOTALL)


def parse_index(name: str, definition: str) -> Index:
    """An ``Index`` from ``pg_get_indexdef``, without the table's schema (which differs between catalogs)."""
    match = _INDEX_DEF.match(definition)
    if match is None:
        raise ValueError(f"unexpected index definition: {definition}")
    return Index(name, bool(match.group(1)), match.group(2))


# --- the difference ----------------------------------------------------------------------


class Risk(enum.Enum):
    SAFE = "in place"  # keeps every row and value
    DATA = "if the data allows"  # a NOT NULL, key, check or foreign key that existing rows must satisfy
    DESTRUCTIVE = "destructive"  # drops or rewrites values: needs --force


@dataclass(frozen=True)
class Change:
    table: str
    summary: str
    statements: tuple[tuple[int, str], ...]  # (phase, SQL)
    risk: Risk
    # SQL counting the rows at stake: for DATA the rows that violate it (0 means it applies),
    # for DESTRUCTIVE the rows whose values are lost. None: only applying it can tell.
    probe: str | None = None
    probe_meaning: str = ""
    # Forced in place, it may still fail on the data (a value that does not convert): then --force rebuilds.
    may_fail_forced: bool = False

    def describe(self) -> str:
        return f"{qualified(self.table)}: {self.summary}"


def qualified(table: str) -> str:
    return f"{APP_SCHEMA}.{table}"


def diff(live: Catalog, desired: Catalog) -> list[Change]:
    """Every change that makes ``live`` equal ``desired``, tables in name order."""
    changes: list[Change] = []
    names = sorted({t.name for t in live.tables} | {t.name for t in desired.tables})
    for name in names:
        have, want = live.table(name), desired.table(name)
        if have is None and want is not None:
            changes.append(_create_table(want))
        elif want is None and have is not None:
            changes.append(Change(name, "drop table", ((DROP_TABLE, f"drop table {qualified(name)} cascade"),),
                                  Risk.DESTRUCTIVE, f"select count(*) from {qualified(name)}"))
        elif have is not None and want is not None:
            changes.extend(_column_changes(have, want))
            changes.extend(_constraint_changes(have, want))
            changes.extend(_index_changes(have, want))
    return changes


def _create_table(table: Table) -> Change:
    columns = ",\n  ".join(column.declaration() for column in table.columns)
    statements = [(CREATE_TABLE, f"create table {qualified(table.name)} (\n  {columns}\n)")]
    statements += [_add_constraint(table.name, c) for c in table.constraints]
    statements += [_create_index(table.name, i) for i in table.indexes]
    parts = [counted(len(table.columns), "column"), counted(len(table.constraints), "constraint"),
             counted(len(table.indexes), "index", "indexes")]
    return Change(table.name, f"create table ({', '.join(parts)})", tuple(statements), Risk.SAFE)


def _alter(table: str, action: str) -> str:
    return f"alter table {qualified(table)} {action}"


def _column_changes(have: Table, want: Table) -> Iterable[Change]:
    name = have.name
    wanted = {c.name for c in want.columns}
    for column in have.columns:
        if column.name not in wanted:
            yield Change(name, f"drop column {column.name}",
                         ((DROP_COLUMN, _alter(name, f"drop column {column.name}")),), Risk.DESTRUCTIVE,
                         f"select count(*) from {qualified(name)} where {column.name} is not null",
                         f"with a value in {column.name}")
    for column in want.columns:
        current = have.column(column.name)
        if current is None:
            yield _add_column(name, column)
        else:
            yield from _altered_column(name, current, column)


def _add_column(table: str, column: Column) -> Change:
    statement = ((ALTER_COLUMN, _alter(table, f"add column {column.declaration()}")),)
    fills_itself = column.default is not None or column.identity or column.generated
    if column.not_null and not fills_itself:
        # Existing rows would get NULL: fine only on an empty table.
        return Change(table, f"add column {column.declaration()}", statement, Risk.DATA,
                      f"select count(*) from {qualified(table)}", "that would get NULL")
    return Change(table, f"add column {column.declaration()}", statement, Risk.SAFE)


def _altered_column(table: str, have: Column, want: Column) -> Iterable[Change]:
    name = want.name
    if (have.identity, have.generated) != (want.identity, want.generated) or (
            want.generated and have.default != want.default):
        yield Change(table, f"column {name}: change how it is generated ({have.declaration()} -> "
                            f"{want.declaration()}; only a rebuild does that)", (), Risk.DESTRUCTIVE,
                     f"select count(*) from {qualified(table)}")
        return
    if have.type != want.type:
        statement = ((ALTER_COLUMN, _alter(table, f"alter column {name} type {want.type}")),)
        summary = f"column {name}: type {have.type} -> {want.type}"
        if widens(have.type, want.type):
            yield Change(table, summary, statement, Risk.SAFE)
        else:
            yield Change(table, summary + " (narrows or rewrites)", statement, Risk.DESTRUCTIVE,
                         f"select count(*) from {qualified(table)} where {name} is not null",
                         f"with a value in {name}", may_fail_forced=True)
    if have.default != want.default and not want.identity:
        action = f"set default {want.default}" if want.default is not None else "drop default"
        yield Change(table, f"column {name}: {action}",
                     ((ALTER_COLUMN, _alter(table, f"alter column {name} {action}")),), Risk.SAFE)
    if have.not_null and not want.not_null:
        yield Change(table, f"column {name}: drop not null",
                     ((ALTER_COLUMN, _alter(table, f"alter column {name} drop not null")),), Risk.SAFE)
    elif want.not_null and not have.not_null:
        yield Change(table, f"column {name}: set not null",
                     ((ALTER_COLUMN, _alter(table, f"alter column {name} set not null")),), Risk.DATA,
                     f"select count(*) from {qualified(table)} where {name} is null", f"with NULL in {name}")


_VARCHAR = re.compile(r"^character varying(?:\((\d+)\))?$")
_NUMERIC = re.compile(r"^numeric(?:\((\d+),(\d+)\))?$")


def widens(old: str, new: str) -> bool:
    """Whether changing a column from ``old`` to ``new`` keeps every value and rewrites nothing.

    Only the binary-compatible widenings Postgres applies without a table
    rewrite: a longer or unbounded varchar, varchar to text, more numeric
    precision at the same scale. Everything else may fail or rewrite.
    """
    old_varchar, new_varchar = _VARCHAR.match(old), _VARCHAR.match(new)
    if old_varchar and new == "text":
        return True
    if old_varchar and new_varchar:
        return new_varchar.group(1) is None or (
            old_varchar.group(1) is not None and int(new_varchar.group(1)) >= int(old_varchar.group(1)))
    old_numeric, new_numeric = _NUMERIC.match(old), _NUMERIC.match(new)
    if old_numeric and new_numeric:
        if new_numeric.group(1) is None:
            return True
        return old_numeric.group(1) is not None and old_numeric.group(2) == new_numeric.group(2) and (
            int(new_numeric.group(1)) >= int(old_numeric.group(1)))
    return False


def _add_constraint(table: str, constraint: Constraint) -> tuple[int, str]:
    phase = ADD_KEY if constraint.kind in _KEY_KINDS else ADD_FOREIGN_KEY if constraint.kind == "f" else ADD_CHECK
    return phase, _alter(table, f"add constraint {constraint.name} {constraint.definition}")


def _drop_constraint(table: str, constraint: Constraint) -> tuple[int, str]:
    phase = DROP_FOREIGN_KEY if constraint.kind == "f" else DROP_OTHER
    return phase, _alter(table, f"drop constraint {constraint.name}")


def _named_changes(have: Sequence[_Named],
                   want: Sequence[_Named]) -> Iterator[tuple[_Named | None, _Named | None]]:
    """(live, declared) for each constraint or index by name that differs: first the dropped ones as
    (live, None), then the added and changed ones as (None or live, declared), each in its table's order."""
    current = {item.name: item for item in have}
    wanted = {item.name for item in want}
    for item in have:
        if item.name not in wanted:
            yield item, None
    for item in want:
        old = current.get(item.name)
        if old != item:
            yield old, item


def _constraint_changes(have: Table, want: Table) -> Iterable[Change]:
    name = have.name
    for old, constraint in _named_changes(have.constraints, want.constraints):
        if constraint is None:
            assert old is not None  # _named_changes: a dropped one always has its live side
            yield Change(name, f"drop {_CONSTRAINT_WORDS.get(old.kind, 'constraint')} {old.name}",
                         (_drop_constraint(name, old),), Risk.SAFE)
            continue
        word = _CONSTRAINT_WORDS.get(constraint.kind, "constraint")
        statements = ((_drop_constraint(name, old),) if old else ()) + (_add_constraint(name, constraint),)
        verb = "change" if old else "add"
        yield Change(name, f"{verb} {word} {constraint.name} {constraint.definition}", statements, Risk.DATA)


def _create_index(table: str, index: Index) -> tuple[int, str]:
    unique = "unique " if index.unique else ""
    return CREATE_INDEX, f"create {unique}index {index.name} on {qualified(table)} {index.method}"


def _index_changes(have: Table, want: Table) -> Iterable[Change]:
    name = have.name
    for old, index in _named_changes(have.indexes, want.indexes):
        drop = ((DROP_OTHER, f"drop index {APP_SCHEMA}.{old.name}"),) if old else ()
        if index is None:
            assert old is not None  # _named_changes: a dropped one always has its live side
            yield Change(name, f"drop index {old.name}", drop, Risk.SAFE)
            continue
        kind = "unique index" if index.unique else "index"
        yield Change(name, f"{'change' if old else 'add'} {kind} {index.name} {index.method}",
                     drop + (_create_index(name, index),), Risk.DATA if index.unique else Risk.SAFE)


def counted(number: int, noun: str, plural: str | None = None) -> str:
    return f"{number} {noun if number == 1 else plural or noun + 's'}"
