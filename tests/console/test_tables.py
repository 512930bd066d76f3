"""bootstrap.console.tables: the DynamoDB views print what they are given, with plain values."""

from __future__ import annotations

import json
import time
from types import SimpleNamespace

import pytest

from bootstrap import console
from bootstrap.console.tables import local_time, shorten, show_conversation, show_items, show_tables


def _listing(items: list[dict[str, str]], consumed_capacity: float | None = None) -> SimpleNamespace:
    """What the views read of ``bootstrap.ddb.reads.Listing``."""
    return SimpleNamespace(items=items, consumed_capacity=consumed_capacity)


@pytest.fixture(autouse=True)
def _fresh_console(monkeypatch: pytest.MonkeyPatch):
    """Wide, plain output in UTC, so rows are not folded and times read the same on every machine."""
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    console.console.cache_clear()
    yield
    console.console.cache_clear()
    monkeypatch.undo()
    time.tzset()


def test_shorten_joins_whitespace_and_cuts_long_text() -> None:
    assert shorten("a  b\nc", 10) == "a b c"
    assert shorten("x" * 12, 10) == "x" * 9 + "…"


def test_local_time_reads_sort_keys_and_leaves_anything_else_alone() -> None:
    assert local_time("2026-03-01T12:00:00.000000+00:00") == "2026-03-01 12:00"
    assert local_time("not a time") == "not a time"


def test_show_items_as_table_or_json(capsys: pytest.CaptureFixture[str]) -> None:
    items = [{"pk": "MSG#g1", "sk": "2026-03-01T12:00:00.000000+00:00", "user_handle": "alice", "message": "hi"}]
    assert show_items(items) == 1
    out = capsys.readouterr().out
    assert "MSG#g1" in out and "alice" in out and "hi" in out
    assert show_items(items, as_json=True) == 1
    assert json.loads(capsys.readouterr().out) == items


def test_show_tables_prints_each_table(capsys: pytest.CaptureFixture[str]) -> None:
    show_tables([SimpleNamespace(name="cruddur-messages", status="ACTIVE", item_count=125)])
    assert "cruddur-messages" in (out := capsys.readouterr().out) and "ACTIVE" in out and "125" in out


def test_show_conversation_says_the_capacity_only_when_reported(capsys: pytest.CaptureFixture[str]) -> None:
    items = [{"sk": "2026-03-01T12:00:00.000000+00:00", "user_handle": "bob", "message": "hello"}]
    show_conversation(_listing(items, 0.5), title="group g1")
    out, err = capsys.readouterr()
    assert "2026-03-01 12:00" in out and "bob" in out and "hello" in out
    assert "1 items; consumed 0.5 read capacity units" in err
    show_conversation(_listing(items), title="group g1")
    assert capsys.readouterr().err == ""
