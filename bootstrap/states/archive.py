"""Sharing a state as one file: ``state.export NAME FILE`` and ``state.import FILE [NAME]``.

The file is a tar archive: ``manifest.json`` first, then ``postgres.dump``
(``pg_dump`` custom format), ``dynamodb/<table>.json`` + ``.jsonl`` and
``cognito.json``, each part's SHA-256 in the manifest. It is written to a
temporary file beside FILE and renamed, so FILE is whole or untouched.

Import reads the manifest first and refuses, changing nothing, a file that is
no tar archive or none of ours, one from a newer format, and one whose parts
are missing, unexpected or damaged (checksum). Only then does it restore the
database into a database of its own and put the state's folder in place; it
saves the environment as it is as state ``before-import`` (replacing an older
one) and loads the file's state like ``state.load``. The three services load
at the same time, so a load that fails or is interrupted (Ctrl-C) would leave
some with the file's data and some with the old: the import then loads
``before-import`` back and says so, the file's state kept to try again. Should
putting it back fail too, the message names both failures and says to load
``before-import`` by hand.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Endpoints, Settings
from ..cognito import find_pool_id
from ..ddb.schema import drop_table
from ..errors import ConfigError, Failure, InputError, PartWayError, aws_errors, describe
from ..state import StateDir
from . import postgres
from .manifest import (BEFORE_IMPORT, MANIFEST_FILE, check_name, damaged_parts, manifest_problems, sha256_file,
                       state_folder)
from .store import (LoadReport, SavedState, checked_state, exclusive, load_unlocked, local_endpoints, replace_folder,
                    save_unlocked)

DUMP_FILE = "postgres.dump"


@dataclass(frozen=True)
class Imported:
    name: str  # the state the file's data is kept as
    report: LoadReport
    previous: str  # the state the environment as it was is kept as


@dataclass(frozen=True)
class Exported:
    path: Path
    size: int


def export_state(settings: Settings, name: str, file: str) -> Exported:
    """`state.export NAME FILE`: the saved state NAME as one archive at FILE."""
    check_name(name)
    endpoints = local_endpoints(settings, "state.export")
    target = Path(file).expanduser()
    if target.is_dir():
        raise InputError(f"FILE {file!r} is a folder; name the archive to write, e.g. {target / (name + '.tar')}")
    with exclusive(settings, "export the state"):
        folder, manifest = checked_state(settings, endpoints, name)
        with tempfile.TemporaryDirectory(dir=StateDir(settings.state_dir).ensure().root) as scratch:
            dump = Path(scratch) / DUMP_FILE
            postgres.dump_database(endpoints, name, dump)
            shared = {**manifest, "parts": {**manifest["parts"], DUMP_FILE: sha256_file(dump)}}
            _write_archive(target, shared, {DUMP_FILE: dump, **{part: folder / part for part in manifest["parts"]}})
    return Exported(target, target.stat().st_size)


def _write_archive(target: Path, manifest: dict[str, Any], files: dict[str, Path]) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle, tarfile.open(fileobj=handle, mode="w") as archive:
            body = (json.dumps(manifest, indent=1) + "\n").encode()
            info = tarfile.TarInfo(MANIFEST_FILE)
            info.size = len(body)
            archive.addfile(info, io.BytesIO(body))
            for name, path in sorted(files.items()):
                archive.add(path, arcname=name, recursive=False)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def import_state(settings: Settings, file: str, name: str | None = None) -> Imported:
    """`state.import FILE [NAME]`: check the archive whole, keep it as state NAME (default: its own name), save the
    environment as state ``before-import``, load NAME; a load that fails or is interrupted puts ``before-import``
    back."""
    source = Path(file).expanduser()
    if not source.is_file():
        raise InputError(f"FILE {file!r} does not exist or is not a file")
    endpoints = local_endpoints(settings, "state.import")
    root = StateDir(settings.state_dir).ensure().root
    with exclusive(settings, "import the state"), tempfile.TemporaryDirectory(dir=root) as scratch:
        manifest = _unpack(source, Path(scratch))
        name = check_name(name if name is not None else str(manifest.get("name", "")), "NAME")
        if name == BEFORE_IMPORT:
            raise ConfigError(f"{source} cannot be imported as state {name!r}, nothing was changed: that name keeps "
                              f"the environment as it was before an import; hint: give it another name "
                              f"(`invoke state.import {file} --name imported`)")
        postgres.restore_database(endpoints, name, Path(scratch) / DUMP_FILE)
        (Path(scratch) / DUMP_FILE).unlink()
        kept = {**manifest, "name": name, "parts": {k: v for k, v in manifest["parts"].items() if k != DUMP_FILE}}
        (Path(scratch) / MANIFEST_FILE).write_text(json.dumps(kept, indent=1) + "\n", encoding="utf-8")
        final = state_folder(root, name)
        final.parent.mkdir(parents=True, exist_ok=True)
        staging = final.with_name(f".{name}.importing")
        shutil.rmtree(staging, ignore_errors=True)
        shutil.copytree(scratch, staging)
        replace_folder(staging, final)
        return Imported(name, _load_or_put_back(settings, endpoints, name), BEFORE_IMPORT)


def _load_or_put_back(settings: Settings, endpoints: Endpoints, name: str) -> LoadReport:
    """Load state ``name`` into an environment first saved as ``before-import``, loaded back if the load fails.

    Ctrl-C is caught too: the parts that run go on until they end (the load's threads are waited for), and then
    the environment is put back; the error raised keeps the exit code of what stopped the load (130 for Ctrl-C).
    """
    recorded_pool_id = StateDir(settings.state_dir).get("user_pool_id")
    try:
        previous = save_unlocked(settings, endpoints, BEFORE_IMPORT)
    except (Exception, KeyboardInterrupt) as exc:
        raise not_saved(name, describe(exc)) from exc
    try:
        return load_unlocked(settings, endpoints, name)
    except (Exception, KeyboardInterrupt) as exc:
        stopped = describe(exc)
        try:
            _put_back(settings, endpoints, previous, recorded_pool_id)
        except (Exception, KeyboardInterrupt) as again:
            raise not_put_back(name, stopped, describe(again)) from exc
        raise put_back(name, stopped) from exc


def _put_back(settings: Settings, endpoints: Endpoints, previous: SavedState, recorded_pool_id: str | None) -> None:
    """Load ``previous`` back; a table or pool it lacks (the environment had none) is removed, since a state
    without one leaves the live one as it is (and this one may be the import's)."""
    load_unlocked(settings, endpoints, previous.name)
    if previous.manifest["dynamodb"]["items"] is None:
        drop_table(endpoints, settings.table_name)
    if previous.manifest["cognito"]["users"] is None:
        with aws_errors(f"deleting user pool {settings.user_pool_name}"):
            pool_id = find_pool_id(endpoints, settings.user_pool_name)
            if pool_id is not None:
                endpoints.client("cognito-idp").delete_user_pool(UserPoolId=pool_id)
        StateDir(settings.state_dir).update("user_pool_id", value=recorded_pool_id)


# What the user is told when an import stops part-way (pure). ``stopped`` is the failure that stopped it.

def _what_stopped(name: str, stopped: Failure, doing: str) -> str:
    return f"{doing} state {name} was interrupted" if stopped.exit_code == 130 else \
        f"{doing} state {name} failed ({stopped.error})"


def not_saved(name: str, stopped: Failure) -> PartWayError:
    """Saving ``before-import`` failed: state ``name`` was kept but not loaded, nothing else changed."""
    return PartWayError(
        f"{_what_stopped(BEFORE_IMPORT, stopped, 'saving the environment as')}, so the file's state was not loaded "
        f"and the environment is as it was; hint: {stopped.hint + '; ' if stopped.hint else ''}the file's state is "
        f"kept as {name}: `invoke state.load {name}` loads it (without a way back)", stopped.exit_code)


def put_back(name: str, stopped: Failure) -> PartWayError:
    """The load failed and ``before-import`` was loaded back."""
    return PartWayError(
        f"{_what_stopped(name, stopped, 'loading')}; the environment was put back as it was before the import; "
        f"hint: the file's state is kept as {name}: `invoke state.load {name}` tries it again", stopped.exit_code)


def not_put_back(name: str, stopped: Failure, again: Failure) -> PartWayError:
    """The load failed, and so did loading ``before-import`` back: the environment is part-way."""
    return PartWayError(
        f"{_what_stopped(name, stopped, 'loading')}, and putting the environment back failed too "
        f"({again.error}): it is part the file's state, part as it was; hint: `invoke state.load {BEFORE_IMPORT}` "
        f"puts it back as it was before the import (do it before another import, which would save over it; the "
        f"file's state is kept as {name})", stopped.exit_code)


def _unpack(source: Path, into: Path) -> dict[str, Any]:
    """Extract the archive's manifest and parts into ``into``, refusing anything that is not whole and ours."""
    refuse = f"{source} cannot be imported, nothing was changed"
    try:
        archive = tarfile.open(source, mode="r:")
    except (tarfile.TarError, OSError) as exc:
        raise InputError(f"{refuse}: it is not a state archive of cruddur-bootstrap ({exc})") from None
    with archive:
        members = {member.name: member for member in archive.getmembers()}
        head = members.get(MANIFEST_FILE)
        if head is None or not head.isfile():
            raise InputError(f"{refuse}: it is not a state archive of cruddur-bootstrap (no {MANIFEST_FILE})")
        try:
            manifest = json.load(archive.extractfile(head))  # type: ignore[arg-type]  # a regular file's reader
        except (ValueError, UnicodeDecodeError) as exc:
            raise InputError(f"{refuse}: its {MANIFEST_FILE} is not valid JSON ({exc})") from None
        problems = manifest_problems(manifest)
        if not problems and DUMP_FILE not in manifest["parts"]:
            problems = [f"it holds no {DUMP_FILE}"]
        unexpected = sorted(set(members) - set(manifest.get("parts") or {}) - {MANIFEST_FILE})
        if not problems and unexpected:
            problems = [f"it holds files its manifest does not list: {', '.join(unexpected[:3])}"]
        if problems:
            raise InputError(f"{refuse}: {'; '.join(problems)}")
        for part in manifest["parts"]:
            member = members.get(part)
            if member is None or not member.isfile():
                continue  # reported by the checksum check below as missing
            # Names were checked (no absolute path, no ".."); only regular files are written.
            path = into / part
            path.parent.mkdir(parents=True, exist_ok=True)
            with archive.extractfile(member) as reader, path.open("wb") as writer:  # type: ignore[union-attr]  # a regular file has a reader
                shutil.copyfileobj(reader, writer, 1 << 20)
        (into / MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")
    damaged = damaged_parts(into, manifest)
    if damaged:
        raise InputError(f"{refuse}: {'; '.join(damaged[:3])}")
    return manifest
