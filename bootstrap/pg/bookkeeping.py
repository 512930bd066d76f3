"""``bootstrap_meta``: this tool's own key/value table, where a rerun learns what was already done.

The table is ``sql/meta.sql`` (created on the first write); its keys are in
``bootstrap.meta``; the app never reads it. The ``url`` functions open their
own connection; the others take the caller's, so a step records what it did
in the same transaction that did it.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..config import PROJECT_ROOT
from .connection import connect, database_errors, existing_tables

META_FILE = PROJECT_ROOT / "sql" / "meta.sql"
# Lives next to the app tables in public, but sql/schema.sql does not declare it.
META_TABLE = "bootstrap_meta"


@database_errors("reading bootstrap_meta")
def read_meta(url: str) -> dict[str, str]:
    """Every key/value in ``bootstrap_meta``; {} when the table does not exist yet."""
    with connect(url) as conn:
        return read(conn)


@database_errors("writing bootstrap_meta")
def write_meta(url: str, values: Mapping[str, str]) -> None:
    """Upsert ``values`` into ``bootstrap_meta`` (creating it if needed); unchanged values are not rewritten."""
    with connect(url) as conn:
        write(conn, values)


def read(conn: Any) -> dict[str, str]:
    # Checked first: a failed select would abort the caller's transaction.
    if not existing_tables(conn, [META_TABLE]):
        return {}
    return dict(conn.execute("select key, value from public.bootstrap_meta").fetchall())


def write(conn: Any, values: Mapping[str, str]) -> int:
    """Upsert the values that differ from the stored ones; return how many were written."""
    stored = read(conn)
    changed = [(key, value) for key, value in values.items() if stored.get(key) != value]
    if not changed:
        return 0
    conn.execute(META_FILE.read_text(encoding="utf-8"))
    with conn.cursor() as cursor:
        cursor.executemany(
            "insert into public.bootstrap_meta (key, value) values (%s, %s)"
            " on conflict (key) do update set value = excluded.value, updated_at = now()",
            changed,
        )
    return len(changed)


def forget(conn: Any, keys: Sequence[str]) -> None:
    """Delete ``keys`` (what they recorded no longer holds)."""
    if existing_tables(conn, [META_TABLE]):
        conn.execute("delete from public.bootstrap_meta where key = any(%s)", (list(keys),))
