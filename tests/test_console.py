"""What we print shows user data exactly: no rich markup or emoji codes are interpreted."""

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
