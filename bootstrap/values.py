"""The values a task's flags take: parsed and checked before the task reads or writes anything.

Invoke hands every flag over as the text the user typed (a default of None
makes it a STRING option), so that a bad value reaches the user as one line
naming the flag and the value, exit 2 (``InputError``), never as a traceback
of invoke's own ``int()``. Each function here is pure.
"""

from __future__ import annotations

import uuid
from pathlib import Path

from .errors import InputError

# Where the user finds a message group's id, and what its keys look like.
GROUPS_HINT = "group ids are listed by invoke ddb.list-conversations"
KEY_PREFIXES = ("GRP#", "MSG#")


def required(flag: str, value: str | None, what: str) -> str:
    """``value`` when given; else InputError naming the flag and what it wants."""
    if value is None or not str(value).strip():
        raise InputError(f"{flag} is required: {what}")
    return str(value)


def whole_number(flag: str, value: str | int | None, minimum: int = 1) -> int | None:
    """A whole number of at least ``minimum``, or None when not given."""
    if value is None:
        return None
    try:
        number = int(str(value).strip())
    except ValueError:
        raise InputError(f"{flag}: {value!r} is not a whole number") from None
    if number < minimum:
        raise InputError(f"{flag}: {number} is less than {minimum}")
    return number


def seconds(flag: str, value: str | float | None, default: float) -> float:
    """A positive number of seconds (``0.5``, ``2``), or ``default`` when not given."""
    if value is None:
        return default
    try:
        number = float(str(value).strip())
    except ValueError:
        raise InputError(f"{flag}: {value!r} is not a number of seconds") from None
    if not number > 0 or number == float("inf"):
        raise InputError(f"{flag}: {value!r} is not a positive number of seconds")
    return number


def group_uuid(flag: str, value: str) -> str:
    """A message group's UUID in its canonical form; a pasted key (``GRP#…``, ``MSG#…``) is named as such."""
    text = value.strip()
    if text.upper().startswith(KEY_PREFIXES):
        raise InputError(f"{flag}: {value!r} is a table key, not a UUID; pass the UUID of the group "
                         f"(the group column of invoke ddb.list-conversations)")
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise InputError(f"{flag}: {value!r} is not a UUID; {GROUPS_HINT}") from None


def new_file(flag: str, value: str) -> Path:
    """A file to write whose folder exists: a mistyped folder is refused, not created."""
    path = Path(value).expanduser()
    folder = path.parent
    if not folder.is_dir():
        raise InputError(f"{flag}: the folder {str(folder)!r} does not exist; create it first or fix the path")
    if path.is_dir():
        raise InputError(f"{flag}: {value!r} is a folder; name a file in it (e.g. {str(path / '.env')!r})")
    return path
