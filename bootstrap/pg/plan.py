"""What to do with the difference between the live tables and ``sql/schema.sql``: the ``SchemaPlan``.

``decide`` adds what the data said (the rows each change of ``diff`` puts at
stake) and gives the plan that is printed, refused or applied; a change the
data rejects when applied is marked and the plan decided again.
``rebuild_tables`` says which tables ``--force`` rebuilds, ``format_plan`` how
a user reads the plan. Nothing here talks to a database.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Iterable, Mapping

from .diff import Catalog, Change, Risk, counted


@dataclass(frozen=True)
class PlannedChange:
    change: Change
    rows: int | None = None  # what the change's probe counted; None when it has none
    violation: str | None = None  # Postgres's reason when applying it failed on the data

    @property
    def refused(self) -> bool:
        """Needs --force: destructive, or the data says it cannot apply."""
        return (self.change.risk is Risk.DESTRUCTIVE or self.violation is not None
                or (self.change.risk is Risk.DATA and bool(self.rows)))

    @property
    def forced_in_place(self) -> bool:
        """Refused, but --force can still run it in place (drop a column or table, convert a type):
        only those values are lost. The rest needs its table rebuilt."""
        return self.refused and self.change.risk is Risk.DESTRUCTIVE and bool(self.change.statements) and (
            self.violation is None)

    def runs(self, force: bool) -> bool:
        return not self.refused or (force and self.forced_in_place)

    def describe(self) -> str:
        text = self.change.describe()
        if self.rows is not None and (self.refused or self.rows):
            text += f" ({' '.join(filter(None, (counted(self.rows, 'row'), self.change.probe_meaning)))})"
        if self.violation is not None:
            text += f" (the data violates it: {self.violation})"
        if self.refused:
            return f"{text} [needs --force]"
        if self.change.risk is Risk.DATA and self.change.probe is None:
            return f"{text} [applied if the data satisfies it]"
        return text


@dataclass(frozen=True)
class SchemaPlan:
    changes: tuple[PlannedChange, ...] = ()

    @property
    def unchanged(self) -> bool:
        return not self.changes

    @property
    def refused(self) -> tuple[PlannedChange, ...]:
        return tuple(c for c in self.changes if c.refused)

    def steps(self, force: bool = False) -> list[tuple[int, str]]:
        """(index of the change, SQL) for what is applied in place, in the order it runs."""
        ordered = sorted((phase, index, sql) for index, planned in enumerate(self.changes) if planned.runs(force)
                         for phase, sql in planned.change.statements)
        return [(index, sql) for _, index, sql in ordered]

    def statements(self, force: bool = False) -> list[str]:
        return [sql for _, sql in self.steps(force)]

    def with_violation(self, index: int, reason: str) -> SchemaPlan:
        changes = list(self.changes)
        changes[index] = replace(changes[index], violation=reason)
        return SchemaPlan(tuple(changes))

    def describe(self) -> list[str]:
        return [planned.describe() for planned in self.changes]

    def summary(self) -> str:
        return f"{counted(len(self.changes), 'change')}: " + "; ".join(self.describe())

    def applied_summary(self) -> str:
        """The summary once applied: the changes, with those that took --force marked."""
        done = [c.change.describe() + (" [forced]" if c.refused else "") for c in self.changes]
        return f"{counted(len(done), 'change')}: " + "; ".join(done)


def decide(changes: Iterable[Change], probed: Mapping[int, int]) -> SchemaPlan:
    """The plan, given what each change's probe counted (``probed`` maps the change's index to its count)."""
    return SchemaPlan(tuple(PlannedChange(change, probed.get(index)) for index, change in enumerate(changes)))


def rebuild_tables(plan: SchemaPlan, live: Catalog, desired: Catalog) -> list[str]:
    """The live tables ``--force`` drops and creates again: those with a refused change it cannot run
    in place, and every table whose foreign keys point at one of them (their rows would lose what they
    reference); dependents first."""
    referencing: dict[str, set[str]] = {}
    for catalog in (live, desired):
        for table in catalog.tables:
            for constraint in table.constraints:
                if constraint.references and constraint.references != table.name:
                    referencing.setdefault(constraint.references, set()).add(table.name)
    chosen: list[str] = []
    pending = [planned.change.table for planned in plan.refused if not planned.forced_in_place]
    while pending:
        name = pending.pop()
        if name in chosen:
            continue
        chosen.append(name)
        pending.extend(sorted(referencing.get(name, ())))
    present = {t.name for t in live.tables}
    return [name for name in reversed(chosen) if name in present]


def format_plan(plan: SchemaPlan) -> list[str]:
    """The plan as a user reads it: each change, then the SQL applied in place, in one transaction."""
    if plan.unchanged:
        return ["the tables match sql/schema.sql"]
    lines = [f"{counted(len(plan.changes), 'difference')} between the live tables and sql/schema.sql:"]
    lines += [f"  {line}" for line in plan.describe()]
    for force in (False, True) if plan.refused else (False,):
        statements = plan.statements(force)
        if not statements:
            continue
        if not plan.refused:
            lines.append("SQL applied in place, in one transaction:")
        elif force:
            lines.append("with --force, in one transaction:")
        else:
            lines.append("SQL of the changes that keep every row (nothing runs while any needs --force):")
        lines += [f"  {statement};".replace("\n", "\n  ") for statement in statements]
    return lines
