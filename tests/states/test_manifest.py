"""The manifest of a saved state: names, what it holds, and what is refused (foreign, newer, damaged)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bootstrap.errors import ConfigError
from bootstrap.states.manifest import (BEFORE_IMPORT, FORMAT, MANIFEST_FILE, build_manifest, check_name, damaged_parts,
                                       holds, is_saved, manifest_problems, read_manifest, sha256_file, state_folder)


def _manifest(parts: dict[str, str] | None = None) -> dict:
    return build_manifest(name="mine", created_at="2024-01-01T00:00:00+00:00", tool_version="0.1.0", engine="moto",
                          postgres_version="18.0", database="cruddur", rows={"users": 5, "activities": 9},
                          table="cruddur-messages", items=125, pool="cruddur-user-pool", users=5,
                          fixtures="a/b/c", parts=parts or {})


@pytest.mark.parametrize("name", ["mine", "seeded", BEFORE_IMPORT, "bug-1234", "a", "x_" * 16])
def test_good_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize("name", ["", "Mine", "-x", "a/b", "..", "a" * 33, "has space", "é"])
def test_bad_names_are_refused_naming_the_value(name: str) -> None:
    with pytest.raises(ConfigError, match="cannot name a state"):
        check_name(name)


def test_a_built_manifest_is_readable_and_says_what_it_holds() -> None:
    manifest = _manifest()
    assert manifest_problems(manifest) == []
    assert holds(manifest) == "5 users, 9 activities; 125 items; 5 Cognito users"
    assert holds({**manifest, "dynamodb": {"table": "t", "items": None}, "cognito": {"pool": "p", "users": None}}) \
        == "5 users, 9 activities; no table; no user pool"


def test_foreign_newer_and_broken_manifests_are_refused() -> None:
    assert manifest_problems({"format": 1}) == ["it is not a state of cruddur-bootstrap"]
    assert manifest_problems([1]) == ["it is not a state of cruddur-bootstrap"]
    newer = manifest_problems({**_manifest(), "format": FORMAT + 1})
    assert len(newer) == 1 and "newer than this version reads" in newer[0]
    assert manifest_problems({**_manifest(), "parts": {"../escape": "x"}}) == ["its list of parts is damaged"]
    missing = {k: v for k, v in _manifest().items() if k != "postgres"}
    assert manifest_problems(missing) == ["its manifest lacks 'postgres'"]


def test_parts_are_checked_against_their_checksums(tmp_path: Path) -> None:
    (tmp_path / "cognito.json").write_text("{}")
    manifest = _manifest({"cognito.json": sha256_file(tmp_path / "cognito.json"), "dynamodb/t.jsonl": "0" * 64})
    (tmp_path / MANIFEST_FILE).write_text(json.dumps(manifest))
    read, problems = read_manifest(tmp_path)
    assert read == manifest and problems == []
    assert damaged_parts(tmp_path, manifest) == ["dynamodb/t.jsonl is missing"]
    (tmp_path / "cognito.json").write_text("{} ")
    assert "cognito.json does not match its checksum" in damaged_parts(tmp_path, manifest)


def test_an_unreadable_manifest_is_named(tmp_path: Path) -> None:
    assert read_manifest(tmp_path)[1] == [f"{tmp_path / MANIFEST_FILE} is missing"]
    (tmp_path / MANIFEST_FILE).write_text("{not json")
    manifest, problems = read_manifest(tmp_path)
    assert manifest is None and "is not valid JSON" in problems[0]


def test_a_state_counts_as_saved_once_its_manifest_is_written(tmp_path: Path) -> None:
    folder = state_folder(tmp_path, "seeded")
    folder.mkdir(parents=True)
    assert not is_saved(tmp_path, "seeded")  # parts without a manifest: a save that did not finish
    (folder / MANIFEST_FILE).write_text("{}")
    assert is_saved(tmp_path, "seeded") and not is_saved(tmp_path, "mine")
