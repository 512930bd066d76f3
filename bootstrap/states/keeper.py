"""Keep the local moto data across ``invoke down`` / ``invoke up``: an internal state saved at down, loaded at up.

Postgres keeps its data dir, but the moto server holds DynamoDB and Cognito
only in memory. So the moto server, stopped by ``down``, saves every local
table and every user pool as the internal state ``.moto``
(``<state folder>/states/.moto/``), in the format of every named state: a
manifest with each part's SHA-256, each table as ``dynamodb/<table>.json``
(its CreateTable shape) and ``.jsonl`` (its items, one per line), each pool
as ``cognito/<n>.json``, written by the same parts (``bootstrap.states.dynamodb``,
``bootstrap.states.cognito``). Started fresh by ``up``, it loads that state
before anything is seeded: ``Kept`` is the keeper the moto server is given
(``bootstrap.services.moto``). It holds no database (Postgres keeps its
own), and its name starts with a dot, which no user's state can take
(``manifest.check_name``) and ``state.list`` does not show.

The state is written into a folder of its own and put in place only once it
is whole, so a failed or killed ``down`` leaves the previous one. A state
whose manifest or parts are missing or damaged (checksum) is moved aside to
``.moto.corrupt`` and nothing is loaded (``up`` then reseeds from the fixtures).

Loading gives the pools', clients' and users' ids back exactly, so the ids
Postgres holds stay valid. Passwords cannot be read back from Cognito, so
users are created again without one. Beside DynamoDB Local
(``ddb_engine=dynamodb-local``) moto serves Cognito only and DynamoDB Local
keeps its tables on disk itself: then the state holds the user pools alone.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

from ..config import Endpoints
from ..console import say, warn
from ..errors import BootstrapError, aws_errors
from ..state import StateDir, write_atomic
from .manifest import DYNAMODB_FOLDER, FORMAT, MANIFEST_FILE, TOOL, damaged_parts, read_manifest, sha256_file, \
    state_folder

# Every `up` and `down` builds a keeper (``Kept``), a warm `up` without calling it: the parts that save and load
# (store, the DynamoDB and Cognito parts, about 40 ms of imports) are imported by the functions that use them.

KEPT = ".moto"
POOLS_FOLDER = "cognito"
CORRUPT_SUFFIX = ".corrupt"


@dataclass(frozen=True)
class KeptSummary:
    """What the kept state holds (after a save) or what was put back (after a load)."""

    folder: Path
    tables: int
    items: int
    pools: int
    users: int
    new_ids: int = 0

    def describe(self, tables: bool = True) -> str:
        """What it holds; ``tables`` False: moto served Cognito only, DynamoDB Local keeps the tables."""
        pools = f"{self.pools} user pools, {self.users} users"
        if not tables:
            return f"{pools} (the DynamoDB tables are kept in DynamoDB Local's own files)"
        return f"{self.tables} tables, {self.items} items, {pools}"


def kept_folder(state: StateDir) -> Path:
    return state_folder(state.root, KEPT)


def kept_manifest(*, created_at: str, engine: str | None, tables: Mapping[str, int], pools: Mapping[str, int],
                  parts: Mapping[str, str]) -> dict[str, Any]:
    """The manifest of the kept state: a named state's, with every table and pool and no database. Pure."""
    from .store import tool_version

    return {
        "format": FORMAT,
        "tool": TOOL,
        "tool_version": tool_version(),
        "name": KEPT,
        "created_at": created_at,
        "engine": engine,
        "postgres": None,  # Postgres keeps its own data dir across down/up
        "dynamodb": {"tables": dict(tables)},
        "cognito": {"pools": dict(pools)},
        "parts": dict(sorted(parts.items())),
    }


def claimed_counts(manifest: Any) -> str:
    """What a (possibly damaged) manifest says the state holds, for telling the user what was lost."""
    try:
        tables, pools = manifest["dynamodb"]["tables"], manifest["cognito"]["pools"]
        return (f"{len(tables)} tables, {sum(tables.values())} items, "
                f"{len(pools)} pools, {sum(pools.values())} users")
    except (TypeError, KeyError, AttributeError):
        return "contents unknown"


# --- saving (thin) ---------------------------------------------------------------------


def save_kept(endpoints: Endpoints, state: StateDir, tables: bool = True) -> KeptSummary:
    """Save every user pool, and unless ``tables`` is False every table, of the local endpoint as ``.moto``."""
    from . import cognito, dynamodb
    from .store import replace_folder

    final = kept_folder(state)
    staging = final.with_name(f"{KEPT}.saving")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        parts: dict[str, str] = {}
        items: dict[str, int] = {}
        for table in _table_names(endpoints) if tables else []:
            saved = dynamodb.save_table(endpoints, table, staging / DYNAMODB_FOLDER)
            if saved is not None:  # dropped since it was listed
                items[table] = saved.items
                parts.update({f"{DYNAMODB_FOLDER}/{file}": digest for file, digest in saved.checksums.items()})
        users: dict[str, int] = {}
        for number, name in enumerate(_pool_names(endpoints)):
            pool = cognito.save_pool(endpoints, name)
            if pool is None:
                continue
            # Numbered files: a pool's name may hold spaces or be "..".
            relative = f"{POOLS_FOLDER}/{number}.json"
            (staging / POOLS_FOLDER).mkdir(exist_ok=True)
            write_atomic(staging / relative, json.dumps(pool, indent=1, sort_keys=True) + "\n")
            parts[relative] = sha256_file(staging / relative)
            users[name] = len(pool["users"])
        manifest = kept_manifest(created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                                 engine=state.get("ddb_engine"), tables=items, pools=users, parts=parts)
        write_atomic(staging / MANIFEST_FILE, json.dumps(manifest, indent=1) + "\n")
        replace_folder(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return KeptSummary(final, len(items), sum(items.values()), len(users), sum(users.values()))


def _table_names(endpoints: Endpoints) -> list[str]:
    client = endpoints.client("dynamodb")
    with aws_errors("listing the local tables"):
        return [name for page in client.get_paginator("list_tables").paginate() for name in page["TableNames"]]


def _pool_names(endpoints: Endpoints) -> list[str]:
    from ..cognito import PAGE_SIZE, paginate

    client = endpoints.client("cognito-idp")

    def fetch(token: str | None) -> tuple[list[dict[str, Any]], str | None]:
        response = client.list_user_pools(MaxResults=PAGE_SIZE, **({"NextToken": token} if token else {}))
        return response.get("UserPools", []), response.get("NextToken")

    with aws_errors("listing the local user pools"):
        return sorted({pool["Name"] for pool in paginate(fetch)})


# --- loading (thin) --------------------------------------------------------------------


def load_kept(endpoints: Endpoints, state: StateDir, tables: bool = True) -> KeptSummary | None:
    """Put the kept pools, and unless ``tables`` is False the tables, back into a fresh moto.

    None when there was nothing to load. A damaged state is reported, moved aside to ``.moto.corrupt``, and
    nothing is loaded.
    """
    from . import cognito, dynamodb

    folder = kept_folder(state)
    if not folder.is_dir():
        return None
    manifest, problems = read_manifest(folder)
    if manifest is not None:
        problems = damaged_parts(folder, manifest)
    if problems:
        corrupt = folder.with_name(KEPT + CORRUPT_SUFFIX)
        shutil.rmtree(corrupt, ignore_errors=True)
        folder.rename(corrupt)
        warn(f"warning: the moto data kept at {folder} is damaged: {'; '.join(problems[:3])}. "
             f"Moved it to {corrupt.name}; nothing was restored, so the DynamoDB items and Cognito users saved at "
             f"the last `invoke down` ({claimed_counts(manifest)}) are lost. `invoke up` reseeds them from the "
             "fixtures.")
        return None
    assert manifest is not None
    saved_tables: dict[str, int] = manifest["dynamodb"]["tables"] if tables else {}
    for table in saved_tables:
        dynamodb.load_table(endpoints, folder / DYNAMODB_FOLDER, table, table)
    pool_ids: dict[str, str] = {}
    new_ids = 0
    for relative in sorted(part for part in manifest["parts"] if part.startswith(f"{POOLS_FOLDER}/")):
        saved = json.loads((folder / relative).read_text(encoding="utf-8"))
        pool_id, loaded = cognito.load_pool(endpoints, saved)
        pool_ids[saved["id"]] = pool_id
        new_ids += loaded.new_ids
    remembered = state.get("user_pool_id")
    if remembered in pool_ids and pool_ids[remembered] != remembered:
        state.update("user_pool_id", value=pool_ids[remembered])
    pools: dict[str, int] = manifest["cognito"]["pools"]
    return KeptSummary(folder, len(saved_tables), sum(saved_tables.values()), len(pools), sum(pools.values()),
                       new_ids)


# --- the keeper the moto server is given for `down` and `up` ---------------------------


@dataclass(frozen=True)
class Kept:
    """The kept state of one state folder, as the moto service's keeper (``bootstrap.services.moto.Keeper``).

    The moto server calls it itself: ``save`` when ``down`` stops it, ``restore`` when it started fresh and answers.
    """

    state: StateDir

    def save(self, endpoints: Endpoints, tables: bool = True) -> None:
        """Save moto's data before it stops; a failure is reported and the previous kept state stays."""
        try:
            summary = save_kept(endpoints, self.state, tables)
        except (BootstrapError, OSError) as exc:
            warn(f"warning: could not save moto's data ({exc}); "
                 f"the previous copy, if any, is kept at {kept_folder(self.state)}")
            return
        say(f"snapshot: saved {summary.describe(tables)} to {summary.folder}")

    def restore(self, endpoints: Endpoints, tables: bool = True) -> None:
        """Right after a fresh moto is ready: load the state the last ``down`` kept, if there is one."""
        summary = load_kept(endpoints, self.state, tables)
        if summary is None:
            return
        say(f"snapshot: restored {summary.describe(tables)} from {summary.folder}")
        if summary.new_ids:
            say(f"  {summary.new_ids} Cognito ids could not be given back; "
                "`invoke db.update-cognito-user-ids` brings Postgres in line")
