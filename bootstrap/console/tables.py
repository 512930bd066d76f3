"""The DynamoDB views: tables, scanned items and conversations as people read them.

What the ``ddb.list-tables``, ``ddb.scan``, ``ddb.get-conversation`` and
``ddb.list-conversations`` tasks print. Results come in as the plain shapes
below (``bootstrap.ddb`` builds them); this module imports nothing above the
console, so it only asks for the attributes it prints, named by the table
contract (``bootstrap.ddb.table``, on the same floor).
"""

from __future__ import annotations

from datetime import datetime
from typing import Iterable, Mapping, Protocol, Sequence

from ..ddb.table import INDEX_PARTITION_KEY, PARTITION_KEY, SORT_KEY, TEXT, USER_HANDLE
from . import print_json, print_table, say

MESSAGE_WIDTH = 60


class TableRow(Protocol):
    """A table as ``bootstrap.ddb.schema.list_tables`` reports it (read-only: frozen dataclasses match)."""

    @property
    def name(self) -> str: ...

    @property
    def status(self) -> str: ...

    @property
    def item_count(self) -> int: ...


class ListingLike(Protocol):
    """Items read by an access pattern (``bootstrap.ddb.reads.Listing``; read-only: frozen dataclasses match)."""

    @property
    def items(self) -> list[dict[str, str]]: ...

    @property
    def consumed_capacity(self) -> float | None: ...


def local_time(sort_key: str) -> str:
    """A sort key (UTC ISO 8601) as local wall-clock time for people to read."""
    try:
        return datetime.fromisoformat(sort_key).astimezone().strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return sort_key


def shorten(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def show_tables(summaries: Sequence[TableRow]) -> None:
    print_table(["table", "status", "items"], [[s.name, s.status, s.item_count] for s in summaries])


def show_items(items: Iterable[Mapping[str, str]], as_json: bool = False) -> int:
    """Print scanned items as a table (pk, sk, handle, message cut to a width) or as JSON; how many."""
    items = list(items)
    if as_json:
        print_json(items)
    else:
        print_table([PARTITION_KEY, SORT_KEY, "handle", "message"],
                    [[i.get(PARTITION_KEY), i.get(SORT_KEY), i.get(USER_HANDLE), shorten(i.get(TEXT, ""), MESSAGE_WIDTH)]
                     for i in items], wrap={"message"})
    return len(items)


def show_conversation(listing: ListingLike, title: str) -> None:
    print_table(["time", "from", "message"],
                [[local_time(i[SORT_KEY]), i.get(USER_HANDLE), i.get(TEXT)] for i in listing.items], title=title,
                wrap={"message"})
    _say_capacity(listing)


def show_conversations(listing: ListingLike, title: str) -> None:
    rows = [[local_time(i[SORT_KEY]), i.get(USER_HANDLE), shorten(i.get(TEXT, ""), MESSAGE_WIDTH),
             i.get(INDEX_PARTITION_KEY)] for i in listing.items]
    print_table(["last message", "with", "message", "group"], rows, title=title, wrap={"message"})
    _say_capacity(listing)


def _say_capacity(listing: ListingLike) -> None:
    if listing.consumed_capacity is not None:
        say(f"{len(listing.items)} items; consumed {listing.consumed_capacity:g} read capacity units")
