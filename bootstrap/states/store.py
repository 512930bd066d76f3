"""Named states: save, load, list and delete them (``invoke state.*``), and the ``seeded`` state ``up`` records.

A state is saved into a folder of its own being written (``.<name>.saving``)
that replaces the old one only once it is whole, and its database copy
likewise (``bootstrap.states.postgres``), so a failed save leaves the previous
state as it was. Loading checks the manifest and every part's checksum
before it changes anything. Both refuse while another ``invoke up`` (or
state task) holds the state folder, and on the prod target.
"""

from __future__ import annotations

import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from ..config import Endpoints, Settings
from ..errors import ConfigError, RefusedError
from ..guard import require_local
from ..state import StateDir, write_atomic
from . import cognito, dynamodb, postgres
from .manifest import (COGNITO_FILE, DYNAMODB_FOLDER, MANIFEST_FILE, build_manifest, check_name, damaged_parts,
                       holds, read_manifest, sha256_file, state_folder)


@dataclass(frozen=True)
class SavedState:
    name: str
    folder: Path
    manifest: dict[str, Any]
    database_bytes: int

    def describe(self) -> str:
        return f"state {self.name}: {holds(self.manifest)}"


@dataclass(frozen=True)
class StateRow:
    """One line of `state.list`."""

    name: str
    created_at: str
    engine: str
    size: int
    holds: str


def tool_version() -> str:
    try:
        return metadata.version("cruddur-bootstrap")
    except metadata.PackageNotFoundError:
        return "source"


def exclusive(settings: Settings, what: str) -> Any:
    """The state folder's lock, refused (not waited for) while another `up` or state task holds it."""
    def refuse() -> None:
        raise RefusedError(f"another `invoke up` or state task is running on {settings.state_dir}; "
                           f"{what} when it has finished")

    return StateDir(settings.state_dir).exclusive("up", on_wait=refuse)


def local_endpoints(settings: Settings, what: str) -> Endpoints:
    from ..backends import endpoints_for

    require_local(settings, what)
    return endpoints_for(settings)


# --- save ----------------------------------------------------------------------------


def save(settings: Settings, name: str) -> SavedState:
    """`state.save NAME`: the app database, table and user pool as they are now."""
    check_name(name)
    endpoints = local_endpoints(settings, "state.save")
    with exclusive(settings, "save the state"):
        return save_unlocked(settings, endpoints, name)


def save_unlocked(settings: Settings, endpoints: Endpoints, name: str, fixtures: Any = None) -> SavedState:
    """Save under the lock the caller holds (`up` records ``seeded`` this way)."""
    from ..fixtures.parse import load_fixtures
    from ..pg.database import database_exists, table_row_counts

    if not database_exists(endpoints):
        raise ConfigError(f"database {endpoints.database_name} does not exist; `invoke up` creates it")
    root = StateDir(settings.state_dir).root
    final = state_folder(root, name)
    staging = final.with_name(f".{name}.saving")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        parts: dict[str, str] = {}
        # The table and the pool are read at the same time, each waiting on its own round trips; the database is
        # copied last, once they are whole, so that a failure leaves the state's older database as it was.
        with ThreadPoolExecutor(max_workers=2) as workers:
            reading = workers.submit(dynamodb.save_table, endpoints, settings.table_name, staging / DYNAMODB_FOLDER)
            pool = workers.submit(cognito.save_pool, endpoints, settings.user_pool_name).result()
            table = reading.result()
        if table is not None:
            parts.update({f"{DYNAMODB_FOLDER}/{file}": digest for file, digest in table.checksums.items()})
        if pool is not None:
            write_atomic(staging / COGNITO_FILE, json.dumps(pool, indent=1, sort_keys=True) + "\n")
            parts[COGNITO_FILE] = sha256_file(staging / COGNITO_FILE)
        fixtures = fixtures if fixtures is not None else load_fixtures(settings.seeds_dir)
        manifest = build_manifest(
            name=name, created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            tool_version=tool_version(), engine=StateDir(settings.state_dir).get("ddb_engine"),
            postgres_version=postgres.server_version(endpoints), database=endpoints.database_name,
            rows=table_row_counts(endpoints), table=settings.table_name,
            items=table.items if table else None, pool=settings.user_pool_name,
            users=len(pool["users"]) if pool else None, fixtures=_fixtures_fingerprint(fixtures), parts=parts)
        write_atomic(staging / MANIFEST_FILE, json.dumps(manifest, indent=1) + "\n")
        size = postgres.save_database(endpoints, name)
        replace_folder(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return SavedState(name, final, manifest, size)


def _fixtures_fingerprint(fixtures: Any) -> str:
    return "/".join((fixtures.users_fingerprint, fixtures.activities_fingerprint, fixtures.conversations_fingerprint))


def replace_folder(staging: Path, final: Path) -> None:
    old = final.with_name(f".{final.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if final.exists():
        final.rename(old)
    staging.rename(final)
    shutil.rmtree(old, ignore_errors=True)


# --- load ----------------------------------------------------------------------------


@dataclass(frozen=True)
class LoadReport:
    name: str
    lines: list[str]


def load(settings: Settings, name: str) -> LoadReport:
    """`state.load NAME`: bring the database, table and pool back to the state; says what it replaced."""
    check_name(name)
    endpoints = local_endpoints(settings, "state.load")
    with exclusive(settings, "load the state"):
        return load_unlocked(settings, endpoints, name)


def checked_state(settings: Settings, endpoints: Endpoints, name: str) -> tuple[Path, dict[str, Any]]:
    """The state's folder and manifest, once every part is there and whole; else an error, nothing changed."""
    folder = state_folder(StateDir(settings.state_dir).root, name)
    if not folder.is_dir():
        raise ConfigError(f"there is no state named {name!r}; `invoke state.list` shows the saved ones")
    manifest, problems = read_manifest(folder)
    if manifest is not None:
        problems = damaged_parts(folder, manifest)
        if name not in postgres.saved_sizes(endpoints):
            problems.append(f"its database {postgres.state_database(endpoints, name)} is missing")
    if problems:
        raise ConfigError(f"state {name!r} cannot be loaded, nothing was changed: {'; '.join(problems[:3])}")
    assert manifest is not None
    return folder, manifest


def load_unlocked(settings: Settings, endpoints: Endpoints, name: str) -> LoadReport:
    from ..pg.database import describe_row_counts, table_row_counts

    folder, manifest = checked_state(settings, endpoints, name)
    before = describe_row_counts(table_row_counts(endpoints))

    def load_database() -> str:
        postgres.load_database(endpoints, name)
        return (f"database {endpoints.database_name}: replaced ({before}) by the state's "
                f"({describe_row_counts(manifest['postgres']['rows'])})")

    def load_table() -> str:
        loaded = dynamodb.load_table(endpoints, folder / DYNAMODB_FOLDER, manifest["dynamodb"]["table"],
                                     settings.table_name)
        return loaded.describe(settings.table_name)

    def load_pool() -> str:
        saved_pool = json.loads((folder / COGNITO_FILE).read_text(encoding="utf-8"))
        pool_id, pool = cognito.load_pool(endpoints, saved_pool)
        StateDir(settings.state_dir).update("user_pool_id", value=pool_id)
        return pool.describe(saved_pool["name"])

    parts = [load_database]
    parts += [load_table] if manifest["dynamodb"]["items"] is not None else []
    parts += [load_pool] if manifest["cognito"]["users"] is not None else []
    # The three services are independent: each waits on its own round trips, at the same time.
    with ThreadPoolExecutor(max_workers=len(parts)) as pool:
        lines = [future.result() for future in [pool.submit(part) for part in parts]]
    return LoadReport(name, lines)


# --- list and delete -----------------------------------------------------------------


def list_states(settings: Settings) -> list[StateRow]:
    """Every saved state, oldest first: name, when, size on disk plus its database, what it holds."""
    require_local(settings, "state.list")
    states = StateDir(settings.state_dir).root / "states"
    folders = sorted(p for p in states.iterdir() if p.is_dir() and not p.name.startswith(".")) \
        if states.is_dir() else []
    if not folders:
        return []
    sizes = postgres.saved_sizes(local_endpoints(settings, "state.list"))
    rows = []
    for folder in folders:
        manifest, problems = read_manifest(folder)
        on_disk = sum(f.stat().st_size for f in _files(folder))
        if manifest is None:
            rows.append(StateRow(folder.name, "?", "?", on_disk, f"unreadable: {problems[0]}"))
            continue
        rows.append(StateRow(folder.name, manifest["created_at"], manifest.get("engine") or "?",
                             on_disk + sizes.get(folder.name, 0), holds(manifest)))
    return sorted(rows, key=lambda row: row.created_at)


def _files(folder: Path) -> Iterator[Path]:
    return (path for path in folder.rglob("*") if path.is_file())


def delete(settings: Settings, name: str) -> bool:
    """`state.delete NAME`: its folder and its database; whether there was such a state."""
    check_name(name)
    endpoints = local_endpoints(settings, "state.delete")
    with exclusive(settings, "delete the state"):
        folder = state_folder(StateDir(settings.state_dir).root, name)
        had_database = postgres.delete_database(endpoints, name)
        had_folder = folder.is_dir()
        shutil.rmtree(folder, ignore_errors=True)
    return had_database or had_folder


def human_size(size: int) -> str:
    if size < 1024:
        return f"{size} B"
    value = size / 1024
    for unit in ("KB", "MB"):
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GB"
