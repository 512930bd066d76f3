"""Connecting to Postgres, reporting its errors as ours, and the facts every other ``pg`` module needs.

``connect`` turns a failed connection into a ``ServiceError`` naming the masked
URL; ``database_errors`` wraps an operation so that a failed statement (its
transaction rolled back) becomes a ``BootstrapError`` instead of a traceback.
``lock_writers`` serialises this tool's own writers on one database (two
`invoke up` at once). Takes and returns open psycopg connections; never commits
on its own. psycopg is imported lazily.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterable, Sequence, TypeVar

from ..config import mask_url
from ..errors import BootstrapError, ServiceError

# The tables sql/schema.sql creates, children first (the order they can be dropped in).
APP_TABLES = ("activities", "users")

# Any fixed bigint works: it only has to be the same for every writer of this tool.
_WRITER_LOCK = 0x6372756464757201

_T = TypeVar("_T")


def connect(url: str, autocommit: bool = False) -> Any:
    """A psycopg connection; a failure to connect becomes a ``ServiceError`` naming the masked URL."""
    import psycopg

    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=10)
    except psycopg.OperationalError as exc:
        reason = one_line(exc)
        hint = ("; create it with `invoke db.create`" if "does not exist" in reason else
                "; hint: check that Postgres runs and answers there (`invoke status`; `invoke up` starts ours)")
        raise ServiceError(f"cannot connect to Postgres at {mask_url(url)}: {reason}{hint}") from None


def database_errors(step: str) -> Callable[[Callable[..., _T]], Callable[..., _T]]:
    """Report a failed statement as our own error (the transaction was rolled back), not a traceback."""

    def decorate(body: Callable[..., _T]) -> Callable[..., _T]:
        @functools.wraps(body)
        def wrapper(*args: Any, **kwargs: Any) -> _T:
            import psycopg

            try:
                return body(*args, **kwargs)
            except psycopg.Error as exc:
                raise BootstrapError(f"{step} failed; nothing was changed: {one_line(exc)}") from exc

        return wrapper

    return decorate


def one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or type(error).__name__


def lock_writers(conn: Any) -> None:
    """Wait for any other writer of this tool on this database; held until the transaction ends."""
    conn.execute("select pg_advisory_xact_lock(%s)", (_WRITER_LOCK,))


def existing_tables(conn: Any, names: Iterable[str]) -> set[str]:
    """Which of ``names`` are tables in ``public``; checked before a query that would fail (and abort the
    caller's transaction) on a missing one."""
    rows = conn.execute(
        "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace"
        " where n.nspname = 'public' and c.relkind in ('r', 'p') and c.relname = any(%s)",
        (list(names),),
    ).fetchall()
    return {name for (name,) in rows}


def arrays(rows: Sequence[Any], *names: str) -> tuple[list[Any], ...]:
    """One list per attribute of ``rows``: the parameters of an ``unnest(...)`` that writes them all at once."""
    return tuple([getattr(row, name) for row in rows] for name in names)
