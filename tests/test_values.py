"""The flags' values: each parser takes what a user types and refuses what it cannot use, naming the flag."""

from __future__ import annotations

from pathlib import Path

import pytest

from bootstrap.errors import InputError
from bootstrap.values import group_uuid, new_file, required, seconds, whole_number


def test_required_names_the_flag_and_what_it_wants() -> None:
    assert required("--text", "hi", "the text") == "hi"
    for missing in (None, "", "  "):
        with pytest.raises(InputError, match=r"^--text is required: the text$"):
            required("--text", missing, "the text")


def test_whole_numbers() -> None:
    assert whole_number("--limit", None) is None
    assert whole_number("--limit", " 20 ") == 20
    with pytest.raises(InputError, match=r"^--limit: 'abc' is not a whole number$"):
        whole_number("--limit", "abc")
    with pytest.raises(InputError, match=r"^--limit: '2.5' is not a whole number$"):
        whole_number("--limit", "2.5")
    with pytest.raises(InputError, match=r"^--limit: 0 is less than 1$"):
        whole_number("--limit", "0")


def test_seconds() -> None:
    assert seconds("--interval", None, default=1.0) == 1.0
    assert seconds("--interval", "0.25", default=1.0) == 0.25
    for bad in ("often", "0", "-1", "nan", "inf"):
        with pytest.raises(InputError, match=rf"^--interval: '{bad}' is not a"):
            seconds("--interval", bad, default=1.0)


def test_group_uuid_is_canonical_and_a_pasted_key_is_named() -> None:
    value = "4905365C-DCC8-5AA8-901F-C518B7E268A0"
    assert group_uuid("--group", value) == value.lower()
    with pytest.raises(InputError, match=r"^--group: 'not-a-uuid' is not a UUID; group ids are listed by invoke "
                                         r"ddb.list-conversations$"):
        group_uuid("--group", "not-a-uuid")
    for key in (f"GRP#{value}", "MSG#2026-01-01T00:00:00+00:00"):
        with pytest.raises(InputError, match="is a table key, not a UUID"):
            group_uuid("--group", key)


def test_a_new_file_needs_its_folder(tmp_path: Path) -> None:
    assert new_file("--dotenv", str(tmp_path / ".env")) == tmp_path / ".env"
    with pytest.raises(InputError, match="^--dotenv: the folder .* does not exist"):
        new_file("--dotenv", str(tmp_path / "missing" / ".env"))
    with pytest.raises(InputError, match="is a folder"):
        new_file("--dotenv", str(tmp_path))
    assert list(tmp_path.iterdir()) == []
