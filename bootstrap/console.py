"""What the user reads: one rich console, tables, and JSON, all in one place.

rich is imported lazily so that ``invoke --list`` and warm runs don't pay for it.
rich itself honours NO_COLOR and plain output when stdout is not a terminal.
"""

from __future__ import annotations

import functools
import json
import sys
from typing import Any, Iterable, Sequence


@functools.lru_cache(maxsize=None)
def console(stderr: bool = False) -> Any:
    from rich.console import Console

    # No markup, no emoji codes: what we print includes user data (messages,
    # names) that must show exactly as stored, brackets and colons included.
    return Console(stderr=stderr, highlight=False, soft_wrap=False, markup=False, emoji=False)


def say(message: str) -> None:
    """A progress or status line for humans; on stderr so stdout stays parseable."""
    console(stderr=True).print(message)


def print_table(columns: Sequence[str], rows: Iterable[Sequence[object]], title: str | None = None) -> None:
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, show_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*(Text("" if cell is None else str(cell)) for cell in row))
    console().print(table)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, sort_keys=True, default=str) + "\n")
    sys.stdout.flush()
