"""Sharing a state as one file: ``state.export NAME FILE`` and ``state.import FILE [NAME]``.

The file is a tar archive: ``manifest.json`` first, then ``postgres.dump``
(``pg_dump`` custom format), ``dynamodb/<table>.json`` + ``.jsonl`` and
``cognito.json``, each part's SHA-256 in the manifest. It is written to a
temporary file beside FILE and renamed, so FILE is whole or untouched.

Import reads the manifest first and refuses, changing nothing, a file that is
no tar archive or none of ours, one from a newer format, and one whose parts
are missing, unexpected or damaged (checksum). Only then does it restore the
database into a database of its own and put the state's folder in place,
then load the state like ``state.load``: until that load begins, the
environment is as it was, whatever interrupts the import.
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

from ..config import Settings
from ..errors import InputError
from ..state import StateDir
from . import postgres
from .manifest import MANIFEST_FILE, check_name, damaged_parts, manifest_problems, sha256_file, state_folder
from .store import LoadReport, checked_state, exclusive, load_unlocked, local_endpoints, replace_folder

DUMP_FILE = "postgres.dump"


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


def import_state(settings: Settings, file: str, name: str | None = None) -> tuple[str, LoadReport]:
    """`state.import FILE [NAME]`: check the archive whole, keep it as state NAME (default: its own name), load it."""
    source = Path(file).expanduser()
    if not source.is_file():
        raise InputError(f"FILE {file!r} does not exist or is not a file")
    endpoints = local_endpoints(settings, "state.import")
    root = StateDir(settings.state_dir).ensure().root
    with exclusive(settings, "import the state"), tempfile.TemporaryDirectory(dir=root) as scratch:
        manifest = _unpack(source, Path(scratch))
        name = check_name(name if name is not None else str(manifest.get("name", "")), "NAME")
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
        return name, load_unlocked(settings, endpoints, name)


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
