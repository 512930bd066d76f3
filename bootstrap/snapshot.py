"""Keep the local moto data across ``invoke down`` / ``invoke up``.

Postgres keeps its data dir, but the moto server holds DynamoDB and Cognito
only in memory. So the moto server, stopped by ``down``, saves every local
table (its CreateTable arguments and every item, in DynamoDB's wire form) and
every user pool (name and users) into one JSON document,
``snapshots/moto.json`` in the state folder, and started fresh by ``up``
restores it before anything is seeded: ``Snapshot`` is the keeper it is
given (``bootstrap.services.moto``).

The document carries its own counts and a SHA-256 of its canonical JSON, so a
truncated, edited or half-written file is recognised; such a file is moved
aside to ``*.corrupt`` and nothing is restored (``up`` then reseeds from the
fixtures). The file is replaced atomically, so a crash during ``down`` leaves
the previous snapshot intact.

Pools and users are recreated the way ``bootstrap.cognito.seed_users`` first
created them (moto's generator seeded from the pool name, then from pool name
+ username), so the pool id and the users' ``sub`` come back the same and the
ids Postgres holds stay valid. Passwords and confirmation status cannot be
read back from Cognito, so restored users are created again unconfirmed.

Beside DynamoDB Local (``ddb_engine=dynamodb-local``) moto serves Cognito
only, and DynamoDB Local keeps its tables on disk itself: then the snapshot
holds the user pools alone, and only they are restored.

Assumes a local endpoint (moto); building and validating the document is
pure, reading and writing the services is thin.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping, Sequence

from .config import Endpoints
from .console import progress, say, warn
from .ddb.schema import wait_until_active
from .ddb.table import create_arguments_of
from .ddb.writer import write_requests
from .errors import BootstrapError, aws_errors
from .state import StateDir, write_atomic
from .states.items import from_json_item, to_json_value

log = logging.getLogger(__name__)

FORMAT = 1
SNAPSHOT_FILE = "moto.json"
CORRUPT_SUFFIX = ".corrupt"
CHECKSUM_PREFIX = "sha256:"
PAGE_SIZE = 60  # the largest page list_user_pools and list_users serve
COUNT_KEYS = ("tables", "items", "pools", "users")


@dataclass(frozen=True)
class SnapshotSummary:
    """What a snapshot held (after a save) or what was put back (after a restore)."""

    path: Path
    tables: int
    items: int
    pools: int
    users: int
    changed_subs: int = 0

    def describe(self, tables: bool = True) -> str:
        """What the snapshot holds; ``tables`` False: moto served Cognito only, DynamoDB Local keeps the tables."""
        cognito = f"{self.pools} user pools, {self.users} users"
        if not tables:
            return f"{cognito} (the DynamoDB tables are kept in DynamoDB Local's own files)"
        return f"{self.tables} tables, {self.items} items, {cognito}"


def snapshot_path(state: StateDir) -> Path:
    return state.root / "snapshots" / SNAPSHOT_FILE


# --- the document (pure) -----------------------------------------------------------


def build_snapshot(tables: Sequence[Mapping[str, Any]], pools: Sequence[Mapping[str, Any]],
                   created_at: str | None = None) -> dict[str, Any]:
    """The snapshot document.

    ``tables``: {"name", "create" (CreateTable arguments), "items" (scanned items)};
    ``pools``: {"id", "name", "users": [{"username", "sub", "attributes", "enabled"}]}.
    """
    doc: dict[str, Any] = {
        "format": FORMAT,
        "created_at": created_at or datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "tables": [
            {"name": t["name"], "create": to_json_value(t["create"]), "item_count": len(t["items"]),
             "items": [to_json_value(item) for item in t["items"]]}
            for t in tables
        ],
        "pools": [
            {"id": p["id"], "name": p["name"], "user_count": len(p["users"]), "users": [dict(u) for u in p["users"]]}
            for p in pools
        ],
    }
    doc["counts"] = _actual_counts(doc)
    doc["checksum"] = checksum(doc)
    return doc


def checksum(doc: Mapping[str, Any]) -> str:
    """SHA-256 of the document's canonical JSON, without its own checksum field."""
    body = {key: value for key, value in doc.items() if key != "checksum"}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return CHECKSUM_PREFIX + hashlib.sha256(canonical.encode()).hexdigest()


def _actual_counts(doc: Mapping[str, Any]) -> dict[str, int]:
    tables, pools = doc.get("tables") or [], doc.get("pools") or []
    return {
        "tables": len(tables),
        "items": sum(len(t.get("items") or []) for t in tables),
        "pools": len(pools),
        "users": sum(len(p.get("users") or []) for p in pools),
    }


def validate_snapshot(doc: Any) -> list[str]:
    """Every reason not to trust ``doc``; empty when it is whole and unchanged since it was built."""
    if not isinstance(doc, dict):
        return [f"the document is a {type(doc).__name__}, not an object"]
    problems = []
    if doc.get("format") != FORMAT:
        problems.append(f"format {doc.get('format')!r} is not {FORMAT}")
    shape = _shape_problems(doc)
    if shape:
        return problems + shape
    declared = doc.get("counts")
    actual = _actual_counts(doc)
    if not isinstance(declared, dict):
        problems.append("the counts are missing")
    else:
        problems += [f"counts say {declared.get(key)} {key}, the document holds {actual[key]}"
                     for key in COUNT_KEYS if declared.get(key) != actual[key]]
    for table in doc["tables"]:
        if table.get("item_count") != len(table["items"]):
            problems.append(f"table {table['name']}: count says {table.get('item_count')} items, "
                            f"the document holds {len(table['items'])}")
    for pool in doc["pools"]:
        if pool.get("user_count") != len(pool["users"]):
            problems.append(f"pool {pool['name']}: count says {pool.get('user_count')} users, "
                            f"the document holds {len(pool['users'])}")
    if doc.get("checksum") != checksum(doc):
        problems.append("the checksum does not match the content" if doc.get("checksum") else "the checksum is missing")
    return problems


def _shape_problems(doc: Mapping[str, Any]) -> list[str]:
    problems = []
    tables, pools = doc.get("tables"), doc.get("pools")
    if not isinstance(tables, list) or not isinstance(pools, list):
        return ["the tables or pools list is missing"]
    for number, table in enumerate(tables):
        if not isinstance(table, dict) or not isinstance(table.get("name"), str) \
                or not isinstance(table.get("create"), dict) or not isinstance(table.get("items"), list):
            problems.append(f"table entry {number} lacks a name, its CreateTable arguments or its items")
    for number, pool in enumerate(pools):
        if not isinstance(pool, dict) or not isinstance(pool.get("name"), str) \
                or not isinstance(pool.get("users"), list):
            problems.append(f"pool entry {number} lacks a name or its users")
    return problems


def claimed_counts(doc: Any) -> str:
    """What a (possibly damaged) document says it holds, for telling the user what was lost."""
    counts = doc.get("counts") if isinstance(doc, dict) else None
    if not isinstance(counts, dict):
        return "contents unknown"
    return ", ".join(f"{counts.get(key, '?')} {key}" for key in COUNT_KEYS)


# --- reading and writing the file --------------------------------------------------


def write_snapshot(path: Path, doc: Mapping[str, Any]) -> None:
    write_atomic(path, json.dumps(doc, separators=(",", ":"), ensure_ascii=False) + "\n")


def read_snapshot(path: Path) -> tuple[Any, list[str]]:
    """The parsed document (None if unreadable) and its problems."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return None, [f"not valid JSON ({exc})"]
    return doc, validate_snapshot(doc)


def move_aside(path: Path) -> Path:
    target = path.with_name(path.name + CORRUPT_SUFFIX)
    path.replace(target)
    return target


# --- taking a snapshot (thin) ------------------------------------------------------


def take_snapshot(endpoints: Endpoints, state: StateDir, tables: bool = True) -> SnapshotSummary:
    """Save every user pool, and unless ``tables`` is False every table, of the local endpoint, atomically."""
    with aws_errors("saving the moto snapshot"):
        saved = [_read_table(endpoints, name) for name in _table_names(endpoints)] if tables else []
        pools = _read_pools(endpoints)
    doc = build_snapshot(saved, pools)
    path = snapshot_path(state)
    write_snapshot(path, doc)
    counts = doc["counts"]
    return SnapshotSummary(path, counts["tables"], counts["items"], counts["pools"], counts["users"])


def _table_names(endpoints: Endpoints) -> list[str]:
    client = endpoints.client("dynamodb")
    return [name for page in client.get_paginator("list_tables").paginate() for name in page["TableNames"]]


def _read_table(endpoints: Endpoints, name: str) -> dict[str, Any]:
    client = endpoints.client("dynamodb")
    description = client.describe_table(TableName=name)["Table"]
    pages = client.get_paginator("scan").paginate(TableName=name, ConsistentRead=True)
    items = [item for page in pages for item in page["Items"]]
    log.debug("table %s: %d items", name, len(items))
    return {"name": name, "create": create_arguments_of(description), "items": items}


def _read_pools(endpoints: Endpoints) -> list[dict[str, Any]]:
    from .cognito import paginate

    client = endpoints.client("cognito-idp")

    def fetch_pools(token: str | None) -> tuple[list[dict[str, Any]], str | None]:
        response = client.list_user_pools(MaxResults=PAGE_SIZE, **({"NextToken": token} if token else {}))
        return response.get("UserPools", []), response.get("NextToken")

    def users_of(pool_id: str) -> list[dict[str, Any]]:
        def fetch(token: str | None) -> tuple[list[dict[str, Any]], str | None]:
            response = client.list_users(UserPoolId=pool_id, Limit=PAGE_SIZE,
                                         **({"PaginationToken": token} if token else {}))
            return response.get("Users", []), response.get("PaginationToken")

        return [_user_record(raw) for raw in paginate(fetch)]

    return [{"id": p["Id"], "name": p["Name"], "users": users_of(p["Id"])} for p in paginate(fetch_pools)]


def _user_record(raw: Mapping[str, Any]) -> dict[str, Any]:
    attributes = [{"Name": a["Name"], "Value": a.get("Value", "")} for a in raw.get("Attributes", ())]
    sub = next((a["Value"] for a in attributes if a["Name"] == "sub"), None)
    return {
        "username": raw["Username"],
        "sub": sub,
        "attributes": [a for a in attributes if a["Name"] != "sub"],  # moto assigns sub itself
        "enabled": raw.get("Enabled", True),
    }


# --- restoring (thin) --------------------------------------------------------------


def restore_snapshot(endpoints: Endpoints, state: StateDir, tables: bool = True) -> SnapshotSummary | None:
    """Put the saved pools, and unless ``tables`` is False the tables, back into a fresh moto.

    None when there was nothing to restore.
    A damaged file is reported, moved aside to ``*.corrupt``, and nothing is restored.
    """
    path = snapshot_path(state)
    if not path.exists():
        return None
    doc, problems = read_snapshot(path)
    if problems:
        corrupt = move_aside(path)
        warn(f"warning: the moto snapshot {path} is damaged: {'; '.join(problems[:3])}. "
            f"Moved it to {corrupt.name}; nothing was restored, so the DynamoDB items and Cognito users saved at "
            f"the last `invoke down` ({claimed_counts(doc)}) are lost. `invoke up` reseeds them from the fixtures.")
        return None
    with aws_errors(f"restoring the moto snapshot {path}"):
        restored = doc["tables"] if tables else []
        items = sum(_restore_table(endpoints, table) for table in restored)
        users, changed, pool_ids = _restore_pools(endpoints, doc["pools"])
    remembered = state.get("user_pool_id")
    if remembered in pool_ids and pool_ids[remembered] != remembered:
        state.update("user_pool_id", value=pool_ids[remembered])
    return SnapshotSummary(path, len(restored), items, len(doc["pools"]), users, changed)


def _restore_table(endpoints: Endpoints, table: Mapping[str, Any]) -> int:
    client = endpoints.client("dynamodb")
    name = table["name"]
    try:
        client.create_table(**table["create"])
    except client.exceptions.ResourceInUseException:
        log.warning("table %s already exists; its saved items are written over it", name)
    wait_until_active(client, name)
    requests = ({"PutRequest": {"Item": from_json_item(item)}} for item in table["items"])
    return write_requests(client, name, requests, len(table["items"]), description=f"restoring {name}")


def _restore_pools(endpoints: Endpoints, pools: Sequence[Mapping[str, Any]]) -> tuple[int, int, dict[str, str]]:
    """Recreate the pools and users as seed_users does; (users created, subs that changed, old → new pool id)."""
    from .cognito import USERS_PROGRESS_THRESHOLD, ensure_user_pool, list_users, stable_ids

    client = endpoints.client("cognito-idp")
    created = changed = 0
    pool_ids: dict[str, str] = {}
    with stable_ids(endpoints) as ids:
        for pool in pools:
            pool_id, new_pool = ensure_user_pool(endpoints, pool["name"], ids)
            pool_ids[pool["id"]] = pool_id
            existing = set() if new_pool else {u.username for u in list_users(endpoints, pool_id)}
            missing = [user for user in pool["users"] if user["username"] not in existing]
            with progress(len(missing), f"restoring users of {pool['name']}", USERS_PROGRESS_THRESHOLD) as advance:
                for user in missing:
                    created_user = _restore_user(client, pool_id, user, ids, pool["name"])
                    created += 1
                    changed += int(created_user != user["sub"])
                    advance(1)
    return created, changed, pool_ids


def _restore_user(client: Any, pool_id: str, user: Mapping[str, Any], ids: Any, pool_name: str) -> str | None:
    """Create one saved user (disabled again if it was); the sub moto gave it."""
    from .cognito import id_seed

    ids.seed(id_seed(pool_name, user["username"]))
    response = client.admin_create_user(UserPoolId=pool_id, Username=user["username"],
                                        MessageAction="SUPPRESS", UserAttributes=user["attributes"])
    if not user["enabled"]:
        client.admin_disable_user(UserPoolId=pool_id, Username=user["username"])
    return next((a["Value"] for a in response["User"].get("Attributes", ()) if a["Name"] == "sub"), None)


# --- the keeper the moto server is given for `down` and `up` ---------------------------


@dataclass(frozen=True)
class Snapshot:
    """The snapshot file of one state folder, as the moto service's keeper (``bootstrap.services.moto.Keeper``).

    The moto server calls it itself: ``save`` when ``down`` stops it, ``restore`` when it started fresh and answers.
    """

    state: StateDir

    def save(self, endpoints: Endpoints, tables: bool = True) -> None:
        """Snapshot moto before it stops; a failure is reported and the previous snapshot kept."""
        try:
            summary = take_snapshot(endpoints, self.state, tables)
        except BootstrapError as exc:
            warn(f"warning: could not save the moto snapshot ({exc}); "
                f"the previous one, if any, is kept at {snapshot_path(self.state)}")
            return
        say(f"snapshot: saved {summary.describe(tables)} to {summary.path}")

    def restore(self, endpoints: Endpoints, tables: bool = True) -> None:
        """Right after a fresh moto is ready: restore the last snapshot, if there is one."""
        summary = restore_snapshot(endpoints, self.state, tables)
        if summary is None:
            return
        say(f"snapshot: restored {summary.describe()} from {summary.path}")
        if summary.changed_subs:
            say(f"  {summary.changed_subs} restored Cognito users got a new sub; "
                "`invoke db.update-cognito-user-ids` brings Postgres in line")
