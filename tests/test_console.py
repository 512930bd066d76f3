"""What we print (bootstrap/console): user data exactly (no rich markup or emoji codes are interpreted), progress lines."""

from __future__ import annotations

from bootstrap import console


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
