"""Sharing a state as one file, as users do (`invoke` processes on real services): exported on one DynamoDB
engine, imported into a fresh environment on the other, it gives the same rows, items and Cognito subs; files
that are foreign, from a newer format or damaged are refused and nothing changes; an import whose load fails or
is interrupted puts the environment back as it was (saved first as state before-import)."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest

from bootstrap.config import resolve_settings
from bootstrap.errors import ConfigError, PartWayError, describe
from bootstrap.states import archive, dynamodb
from bootstrap.states.manifest import BEFORE_IMPORT
from tests.conftest import ENGINES, engine_environment, session_cli
from tests.states.helpers import change_everything, everything

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
    fresh = everything(second)
    imported = second("state.import", str(shared)).stdout
    assert "imported and loaded state bug-42; the environment as it was before is kept as state before-import " \
           "(`invoke state.load before-import` goes back to it)" in imported, imported
    assert everything(second) == saved
    assert "bug-42" in second("state.list").stdout
    second("verify")
    second("state.load", BEFORE_IMPORT)
    assert everything(second) == fresh


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
    kept_for_the_way_back = cli("state.import", str(shared), "--name", BEFORE_IMPORT, check=False)
    assert kept_for_the_way_back.returncode == 2 and "nothing was changed" in kept_for_the_way_back.stderr
    assert everything(cli) == before
    assert cli("state.import", str(tmp_path / "missing.tar"), check=False).returncode == 2


def _refused_pool(source: Path, target: Path) -> None:
    """A copy of the archive whose Cognito part passes its checksum but moto refuses to create: the pool has
    another id (so that it is created anew) and a custom attribute of a data type that does not exist."""
    with tarfile.open(source) as archive_file:
        pool = json.loads(archive_file.extractfile("cognito.json").read())
    pool["id"] = f"{pool['id'].partition('_')[0]}_0abcdef12"
    pool["create"]["Schema"] = [{"Name": "broken", "AttributeDataType": "Bogus"}]
    refused = json.dumps(pool).encode()

    def change(name: str, body: bytes) -> bytes:
        if name == "cognito.json":
            return refused
        if name == "manifest.json":
            manifest = json.loads(body)
            manifest["parts"]["cognito.json"] = hashlib.sha256(refused).hexdigest()  # as manifest.sha256_file
            return json.dumps(manifest).encode()
        return body

    _rewrite(source, target, change)


@pytest.mark.both_engines
def test_an_import_whose_load_fails_puts_the_environment_back_as_it_was(cli, tmp_path) -> None:
    cli("up")
    shared = tmp_path / "seeded.tar"
    cli("state.export", "seeded", str(shared))
    broken = tmp_path / "broken.tar"
    _refused_pool(shared, broken)
    change_everything(cli)
    before = everything(cli)

    failed = cli("state.import", str(broken), "--name", "broken", check=False)
    assert failed.returncode == 1 and len(failed.stderr.strip().splitlines()) == 1, failed.stderr
    assert "error: loading state broken failed (" in failed.stderr and "InvalidParameterException" in failed.stderr
    assert "the environment was put back as it was before the import; hint: the file's state is kept as broken: " \
           "`invoke state.load broken` tries it again" in failed.stderr, failed.stderr
    assert everything(cli) == before
    assert {BEFORE_IMPORT, "broken"} <= {s["name"] for s in json.loads(cli("state.list", "--json").stdout)["states"]}

    # Without a table before the import, the one its load created (and filled) is removed on the way back.
    cli("ddb.drop", "--yes")
    assert cli("state.import", str(broken), "--name", "broken", check=False).returncode == 1
    rows, items, people, pool_id = before
    assert everything(cli) == (rows, None, people, pool_id)


def test_an_interrupted_import_is_put_back_and_exits_130_or_says_what_to_load_by_hand(cli, tmp_path,
                                                                                    monkeypatch) -> None:
    """Ctrl-C cannot be timed from outside to land while the three parts load, so the table part is wrapped to
    raise KeyboardInterrupt once it has written the file's items (as Ctrl-C would stop the load there); the
    services, archive and the rest of the import are real, run in this process."""
    cli("up")
    shared = tmp_path / "seeded.tar"
    cli("state.export", "seeded", str(shared))
    change_everything(cli)
    before = everything(cli)
    settings = resolve_settings({}, cli.env, {})
    real = dynamodb.load_table
    calls = []

    def interrupted(*args, **kwargs):
        loaded = real(*args, **kwargs)
        calls.append(loaded)
        if len(calls) in interrupting:
            raise KeyboardInterrupt
        return loaded

    monkeypatch.setattr(dynamodb, "load_table", interrupted)
    interrupting = {1}  # the import's load; the way back loads as it should
    with pytest.raises(PartWayError) as stopped:
        archive.import_state(settings, str(shared), "shared")
    assert describe(stopped.value).exit_code == 130 and len(calls) == 2
    assert describe(stopped.value).line() == (
        "loading state shared was interrupted; the environment was put back as it was before the import; hint: "
        "the file's state is kept as shared: `invoke state.load shared` tries it again")
    assert everything(cli) == before

    calls.clear()
    interrupting = {1, 2}  # Ctrl-C pressed again while the environment is put back
    with pytest.raises(PartWayError) as stopped:
        archive.import_state(settings, str(shared), "shared")
    assert describe(stopped.value).exit_code == 130
    assert describe(stopped.value).line() == (
        "loading state shared was interrupted, and putting the environment back failed too (interrupted): it is "
        "part the file's state, part as it was; hint: `invoke state.load before-import` puts it back as it was "
        "before the import (do it before another import, which would save over it; the file's state is kept as "
        "shared)")
    monkeypatch.undo()
    cli("state.load", BEFORE_IMPORT)
    assert everything(cli) == before


def test_an_import_that_could_not_save_the_way_back_loads_nothing_and_says_so() -> None:
    missing = describe(ConfigError("database cruddur does not exist; hint: `invoke up` creates it"))
    assert (archive.not_saved("shared", missing).exit_code, describe(archive.not_saved("shared", missing)).line()) \
        == (2, "error: saving the environment as state before-import failed (database cruddur does not exist), so the "
               "file's state was not loaded and the environment is as it was; hint: `invoke up` creates it; the "
               "file's state is kept as shared: `invoke state.load shared` loads it (without a way back)")
    interrupted = archive.not_saved("shared", describe(KeyboardInterrupt()))
    assert interrupted.exit_code == 130 and describe(interrupted).line().startswith(
        "saving the environment as state before-import was interrupted, so the file's state was not loaded")
