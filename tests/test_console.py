"""What we print (bootstrap/console): user data exactly (no rich markup or emoji codes are interpreted), progress lines."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from bootstrap import console
from tests.helpers import PROJECT_ROOT


def test_tables_and_lines_print_data_verbatim(capsys) -> None:
    console.console.cache_clear()
    console.print_table(["message"], [["see [bold]this[/bold] :100: [/]"]])
    console.say("seed --synthetic 100:100 [x]")
    out, err = capsys.readouterr()
    assert "[bold]this[/bold] :100: [/]" in out
    assert "100:100 [x]" in err
    console.console.cache_clear()


def test_progress_is_described_with_its_rate_and_time_left_when_known() -> None:
    assert console.describe_progress("writing t", 1200, 5000, 800.0, 5.0) == \
        "writing t: 1,200/5,000 items, 800/s, 5s left"
    assert console.describe_progress("removing", 40, None, None, None) == "removing: 40 items"


def test_json_documents_are_counted_so_that_a_failure_is_printed_as_one_only_when_none_was(capsys) -> None:
    import json

    before = console.documents_printed()
    console.print_json({"ok": True})
    assert console.documents_printed() == before + 1
    assert json.loads(capsys.readouterr().out) == {"ok": True}
_IDS = ("GRP#4905365c-dcc8-5aa8-901f-c518b7e268a0", "MSG#2026-01-01T00:00:00.123456+00:00")
_TABLE = f"""
from bootstrap.console import print_table
print_table(["pk", "sk", "handle", "message"], [[{_IDS[0]!r}, {_IDS[1]!r}, "maren_kiln", "word " * 40]],
            wrap={{"message"}})
"""


@pytest.mark.parametrize("terminal", [False, True], ids=["pipe", "narrow terminal"])
def test_ids_in_a_table_stay_whole_on_one_line(terminal: bool) -> None:
    """In a pipe the table is as wide as its content; in a 50-column terminal the free text wraps, the ids never."""
    env = {**os.environ, "COLUMNS": "50", "NO_COLOR": "1"}
    env.pop("TTY_COMPATIBLE", None)
    if terminal:
        env["TTY_COMPATIBLE"] = "1"  # rich's own switch: treat stdout as a terminal
    out = subprocess.run([sys.executable, "-c", _TABLE], cwd=PROJECT_ROOT, env=env, capture_output=True, text=True,
                         check=True).stdout
    lines = out.splitlines()
    for key in _IDS:
        assert any(key in line for line in lines), out
    assert ("word " * 40).strip() in out if not terminal else len(lines) > 4, out
