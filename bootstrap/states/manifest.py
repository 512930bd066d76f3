"""What a saved state is: its name, its folder, and its manifest (``manifest.json``). Pure.

A state's folder (``<state folder>/states/<name>/``) holds the manifest, the
DynamoDB part (``dynamodb/<table>.json`` and ``.jsonl``) and the Cognito
part (``cognito.json``); the Postgres part is a database of the same server
(``bootstrap.states.postgres``). The manifest says which format wrote it,
what the state holds (counts, the engine, the Postgres version, the
fixtures' fingerprint) and the SHA-256 of every file part, so a damaged or
foreign state is recognised before anything is changed. It never holds a
password: the database URL is recorded masked.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any, Mapping

from ..errors import ConfigError

FORMAT = 1
TOOL = "cruddur-bootstrap"
MANIFEST_FILE = "manifest.json"
COGNITO_FILE = "cognito.json"
DYNAMODB_FOLDER = "dynamodb"
SEEDED = "seeded"
BEFORE_IMPORT = "before-import"  # the environment as `state.import` found it, saved before it loads (its way back)
# Letters, digits, - and _: a folder name and part of a Postgres database name (at most 63 bytes in all).
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")


def check_name(name: str, flag: str = "NAME") -> str:
    """``name`` if it can name a state, else a ConfigError naming the value and what is allowed."""
    if not _NAME.match(name or ""):
        raise ConfigError(f"{flag} {name!r} cannot name a state: use 1-32 lowercase letters, digits, '-' or '_', "
                          "starting with a letter or digit")
    return name


def state_folder(root: Path, name: str) -> Path:
    return root / "states" / name


def is_saved(root: Path, name: str) -> bool:
    """Whether state ``name`` was saved whole (its manifest is written last): cheap, for warm `up`."""
    return (state_folder(root, name) / MANIFEST_FILE).is_file()


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def build_manifest(*, name: str, created_at: str, tool_version: str, engine: str | None, postgres_version: str,
                   database: str, rows: Mapping[str, int], table: str, items: int | None, pool: str,
                   users: int | None, fixtures: str, parts: Mapping[str, str]) -> dict[str, Any]:
    """The manifest of a state; ``parts`` maps each file (relative to the state's folder) to its SHA-256."""
    return {
        "format": FORMAT,
        "tool": TOOL,
        "tool_version": tool_version,
        "name": name,
        "created_at": created_at,
        "engine": engine,
        "postgres": {"version": postgres_version, "database": database, "rows": dict(rows)},
        "dynamodb": {"table": table, "items": items},
        "cognito": {"pool": pool, "users": users},
        "fixtures": fixtures,
        "parts": dict(sorted(parts.items())),
    }


def manifest_problems(doc: Any) -> list[str]:
    """Why ``doc`` is no manifest this version can read; empty when it is one."""
    if not isinstance(doc, dict) or doc.get("tool") != TOOL:
        return [f"it is not a state of {TOOL}"]
    version = doc.get("format")
    if not isinstance(version, int):
        return ["its format version is missing"]
    if version > FORMAT:
        return [f"it was written in format {version}, newer than this version reads ({FORMAT}); "
                f"update cruddur-bootstrap (it was written by {doc.get('tool_version', 'a newer version')})"]
    problems = []
    for key in ("name", "created_at", "postgres", "dynamodb", "cognito", "parts"):
        if key not in doc:
            problems.append(f"its manifest lacks {key!r}")
    parts = doc.get("parts")
    if not isinstance(parts, dict) or any(not isinstance(k, str) or ".." in Path(k).parts or k.startswith("/")
                                          for k in parts):
        problems.append("its list of parts is damaged")
    return problems


def damaged_parts(folder: Path, manifest: Mapping[str, Any]) -> list[str]:
    """The parts whose file is missing or whose checksum differs from the manifest's."""
    damaged = []
    for relative, expected in manifest["parts"].items():
        path = folder / relative
        if not path.is_file():
            damaged.append(f"{relative} is missing")
        elif sha256_file(path) != expected:
            damaged.append(f"{relative} does not match its checksum")
    return damaged


def read_manifest(folder: Path) -> tuple[dict[str, Any] | None, list[str]]:
    """The manifest in ``folder`` (None when unreadable) and why it cannot be used."""
    path = folder / MANIFEST_FILE
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None, [f"{path} is missing"]
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        return None, [f"{path} is not valid JSON ({exc})"]
    problems = manifest_problems(doc)
    return (doc if not problems else None), problems


def holds(manifest: Mapping[str, Any]) -> str:
    """What a state holds, in a few words, for `state.list` and reports."""
    rows = manifest["postgres"].get("rows") or {}
    items, users = manifest["dynamodb"].get("items"), manifest["cognito"].get("users")
    parts = [", ".join(f"{count} {table}" for table, count in rows.items()) or "no app tables",
             f"{items} items" if items is not None else "no table",
             f"{users} Cognito users" if users is not None else "no user pool"]
    return "; ".join(parts)
