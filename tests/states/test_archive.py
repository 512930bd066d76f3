"""Sharing a state as one file, as users do (`invoke` processes on real services): exported on one DynamoDB
engine, imported into a fresh environment on the other, it gives the same rows, items and Cognito subs; files
that are foreign, from a newer format or damaged are refused and nothing changes."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from tests.conftest import ENGINES, engine_environment, session_cli
from tests.states.helpers import change_everything, everything

pytestmark = pytest.mark.slow


@pytest.fixture
def second(tmp_path: Path, ddb_engine: str):
    """A second fresh environment of its own, on the other DynamoDB engine than ``cli``'s."""
    other = next(engine for engine in ENGINES if engine != ddb_engine)
    runner = session_cli(tmp_path / "second" / ".cruddur", tmp_path.parent / "cruddur-cache", COLUMNS="200",
                         **engine_environment(other))
    yield runner
    runner("down", check=False)


def _rewrite(source: Path, target: Path, change) -> None:
    """A copy of the archive with ``change(name, bytes) -> bytes | None`` applied to each member (None drops it)."""
    with tarfile.open(source) as archive, tarfile.open(target, "w") as out:
        for member in archive.getmembers():
            body = change(member.name, archive.extractfile(member).read())
            if body is not None:
                info = tarfile.TarInfo(member.name)
                info.size = len(body)
                out.addfile(info, io.BytesIO(body))


def test_an_exported_state_imports_into_a_fresh_environment_on_the_other_engine(cli, second, tmp_path) -> None:
    cli("up")
    change_everything(cli)
    cli("state.save", "bug-42")
    saved = everything(cli)
    shared = tmp_path / "bug-42.tar"
    cli("state.export", "bug-42", str(shared))
    with tarfile.open(shared) as archive:
        names = archive.getnames()
    assert names[0] == "manifest.json" and "postgres.dump" in names and "cognito.json" in names

    second("up")
    imported = second("state.import", str(shared)).stdout
    assert "imported and loaded state bug-42" in imported
    assert everything(second) == saved
    assert "bug-42" in second("state.list").stdout
    second("verify")


def test_foreign_newer_and_damaged_files_change_nothing(cli, tmp_path) -> None:
    cli("up")
    shared = tmp_path / "seeded.tar"
    cli("state.export", "seeded", str(shared))
    change_everything(cli)
    before = everything(cli)

    not_tar = tmp_path / "notes.tar"
    not_tar.write_text("hello")
    foreign = tmp_path / "foreign.tar"
    _rewrite(shared, foreign, lambda name, body: None if name == "manifest.json" else body)
    newer = tmp_path / "newer.tar"
    _rewrite(shared, newer, lambda name, body: json.dumps({**json.loads(body), "format": 99}).encode()
             if name == "manifest.json" else body)
    damaged = tmp_path / "damaged.tar"
    _rewrite(shared, damaged, lambda name, body: body.replace(b"MSG#", b"MSG!", 1) if name.endswith(".jsonl")
             else body)
    expected = {not_tar: "not a state archive", foreign: "no manifest.json", newer: "newer than this version",
                damaged: "does not match its checksum"}
    for path, reason in expected.items():
        refused = cli("state.import", str(path), check=False)
        assert refused.returncode == 2 and reason in refused.stderr and "nothing was changed" in refused.stderr, \
            (path, refused.stderr)
    assert everything(cli) == before
    assert cli("state.import", str(tmp_path / "missing.tar"), check=False).returncode == 2
