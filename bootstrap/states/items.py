"""DynamoDB items in JSON: the wire form (``{"S": ...}``) with binary values as base64.

One item per line as ``{"Item": {...}}`` is the format of DynamoDB's export to
S3, which saved states use for their tables. Pure.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from typing import Any, Mapping, Sequence


def to_json_value(value: Any) -> Any:
    """An attribute value as botocore returns it, in DynamoDB's JSON wire form (binary as base64)."""
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(bytes(value)).decode("ascii")
    if isinstance(value, Mapping):
        return {key: to_json_value(inner) for key, inner in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [to_json_value(inner) for inner in value]
    return value


def from_json_value(value: Mapping[str, Any]) -> dict[str, Any]:
    """The inverse of ``to_json_value`` for one attribute value ({type: content})."""
    kind, content = next(iter(value.items()))
    if kind == "B":
        return {kind: base64.b64decode(content)}
    if kind == "BS":
        return {kind: [base64.b64decode(member) for member in content]}
    if kind == "M":
        return {kind: {name: from_json_value(inner) for name, inner in content.items()}}
    if kind == "L":
        return {kind: [from_json_value(inner) for inner in content]}
    return {kind: content}


def from_json_item(item: Mapping[str, Any]) -> dict[str, Any]:
    return {name: from_json_value(value) for name, value in item.items()}


# A binary value's type key as it appears in a line, whatever the spacing; inside a string a quote is escaped.
_BINARY_KEY = re.compile(r'"BS?"\s*:')


def item_of_line(line: str) -> dict[str, Any]:
    """The item of one export line (``{"Item": ...}``), in the wire form botocore takes.

    Most items hold no binary value, and their JSON form is already the wire form: they skip the walk
    that decodes base64 (a line that merely looks binary, e.g. an attribute named "B", takes the walk).
    """
    item: dict[str, Any] = json.loads(line)["Item"]
    return from_json_item(item) if _BINARY_KEY.search(line) else item


def item_line(item: Mapping[str, Any]) -> str:
    """One scanned item as its export line (no newline)."""
    return json.dumps({"Item": to_json_value(item)}, separators=(",", ":"), ensure_ascii=False)


def key_of(item: Mapping[str, Any], key_names: Sequence[str]) -> str:
    """The item's primary key as canonical text: equal keys, equal text, whatever the attribute order."""
    return json.dumps([to_json_value(item[name]) for name in key_names], separators=(",", ":"))


def digest_of(item: Mapping[str, Any]) -> str:
    """A digest of the whole item, equal for equal items whatever their attribute order (sets sorted)."""
    canonical = json.dumps(_sorted_sets(to_json_value(item)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _sorted_sets(value: Any) -> Any:
    """Set members in a fixed order: DynamoDB returns a set's members in any order."""
    if isinstance(value, dict):
        return {key: sorted(inner) if key in ("SS", "NS", "BS") else _sorted_sets(inner)
                for key, inner in value.items()}
    if isinstance(value, list):
        return [_sorted_sets(inner) for inner in value]
    return value
