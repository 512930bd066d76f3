"""Every statement on the app's ``users`` table: seeding reads and writes, the Cognito sync, and the checks.

The app finds a user by ``handle`` and by ``cognito_user_id`` (docs/CONTRACT.md);
a seeded user holds the contract's placeholder ``'MOCK'`` until the Cognito
sync sets the user's ``sub``. The functions take an open connection and run in
the caller's transaction, except ``fetch_users`` and ``find_users``, which open their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable, Sequence

from ..ddb.table import UserRef
from ..errors import BootstrapError, InputError
from .connection import arrays, connect, database_errors, existing_tables


@dataclass(frozen=True)
class UserRow:
    """A row of ``public.users`` as this tool reads and writes it (the uuid as text)."""

    uuid: str
    handle: str
    display_name: str | None
    email: str | None
    cognito_user_id: str | None

    def as_ref(self) -> UserRef:
        """The user as the message items name them; a user without a display name shows the handle."""
        return UserRef(self.uuid, self.handle, self.display_name or self.handle)


# The contract's placeholder until the Cognito sync sets the user's sub.
MOCK_COGNITO_USER_ID = "MOCK"

_ROW = "uuid::text, handle, display_name, email, cognito_user_id"


@database_errors("reading public.users")
def fetch_users(url: str) -> dict[str, UserRow]:
    """Every user keyed by handle: the uuids and synced Cognito ids the DynamoDB seeder and Cognito sync use."""
    with connect(url) as conn:
        _require_users_table(conn)
        rows = conn.execute(f"select {_ROW} from public.users order by handle").fetchall()
    return {row[1]: UserRow(*row) for row in rows}


@database_errors("reading public.users")
def find_users(url: str, handles: Iterable[str], flag: str | None = None) -> dict[str, UserRef]:
    """The users with ``handles``, as the message items name them, in one query whatever the table's size;
    InputError naming every handle that is not there (and ``flag``, the option that gave them) with the known
    ones, read by a second query only then."""
    wanted = list(dict.fromkeys(handles))
    with connect(url) as conn:
        _require_users_table(conn)
        rows = conn.execute(f"select {_ROW} from public.users where handle = any(%s)", (wanted,)).fetchall()
        found = {row[1]: UserRow(*row).as_ref() for row in rows}
        missing = [handle for handle in wanted if handle not in found]
        if missing:
            known = [row[0] for row in conn.execute("select handle from public.users order by handle")]
            raise InputError(f"{flag}: " * bool(flag) + unknown_handles(missing, known))
    return found


def _require_users_table(conn: Any) -> None:
    if not existing_tables(conn, ["users"]):
        raise BootstrapError("table public.users does not exist; run `invoke db.setup` first")


# --- seeding ---------------------------------------------------------------------------------


def lock_users(conn: Any, handles: Sequence[str], uuids: Sequence[str]) -> dict[str, UserRow]:
    """The rows with one of ``handles`` or ``uuids`` by handle, locked so a concurrent Cognito sync waits for
    the seed."""
    rows = conn.execute(
        f"select {_ROW} from public.users where handle = any(%s) or uuid = any(%s::uuid[]) for update",
        (list(handles), list(uuids)),
    ).fetchall()
    return {row[1]: UserRow(*row) for row in rows}


def insert_users(conn: Any, rows: Sequence[UserRow]) -> int:
    if not rows:
        return 0
    return conn.execute(
        "insert into public.users (uuid, handle, display_name, email, cognito_user_id)"
        " select * from unnest(%s::uuid[], %s::text[], %s::text[], %s::text[], %s::text[])",
        arrays(rows, "uuid", "handle", "display_name", "email", "cognito_user_id"),
    ).rowcount


def update_users(conn: Any, rows: Sequence[UserRow]) -> int:
    """Set each row's display_name, email and cognito_user_id, found by its uuid."""
    if not rows:
        return 0
    return conn.execute(
        "update public.users as u"
        " set display_name = t.display_name, email = t.email, cognito_user_id = t.cognito_user_id"
        " from unnest(%s::uuid[], %s::text[], %s::text[], %s::text[]) as t(uuid, display_name, email,"
        " cognito_user_id) where u.uuid = t.uuid",
        arrays(rows, "uuid", "display_name", "email", "cognito_user_id"),
    ).rowcount


def count_seeded(conn: Any, handles: Sequence[str]) -> tuple[int, int]:
    """How many users have one of ``handles``, and how many of those have no Cognito sub yet ('MOCK' or NULL)."""
    users, unsynced = conn.execute(
        "select count(*), count(*) filter (where cognito_user_id is null or cognito_user_id = %s)"
        " from public.users where handle = any(%s)",
        (MOCK_COGNITO_USER_ID, list(handles)),
    ).fetchone()
    return users, unsynced


# --- Cognito ids and checks --------------------------------------------------------------------


def cognito_user_ids(conn: Any, handles: Sequence[str] | None = None) -> dict[str, str | None]:
    """handle -> cognito_user_id of every user with a handle, or only of those with one of ``handles``."""
    query = "select handle, cognito_user_id from public.users where handle is not null"
    if handles is None:
        return dict(conn.execute(query).fetchall())
    return dict(conn.execute(query + " and handle = any(%s)", (list(handles),)).fetchall())


# One statement for any number of users: two array parameters instead of one
# UPDATE per user; the IS DISTINCT FROM guard keeps a rerun (or a race with
# another sync) from rewriting rows that already hold the right id.
_UPDATE_IDS = """
update public.users as u
   set cognito_user_id = v.sub
  from unnest(%s::text[], %s::text[]) as v(handle, sub)
 where u.handle = v.handle
   and u.cognito_user_id is distinct from v.sub
"""


def set_cognito_user_ids(conn: Any, subs: Sequence[tuple[str, str]]) -> int:
    """Set cognito_user_id by handle from (handle, sub) pairs; return how many rows changed."""
    if not subs:
        return 0
    return conn.execute(_UPDATE_IDS, ([handle for handle, _ in subs], [sub for _, sub in subs])).rowcount


def duplicate_handles(conn: Any) -> list[str]:
    """Handles that more than one user carries (the app needs them unique)."""
    rows = conn.execute("select handle from public.users group by handle having count(*) > 1 order by handle")
    return [handle for (handle,) in rows.fetchall()]


def unknown_handles(missing: Iterable[str], known: Iterable[str]) -> str:
    """Pure: the one line for handles that are not in the users table, listing the ones that are."""
    names = sorted(known)
    listed = ", ".join(repr(handle) for handle in missing)
    if not names:
        return f"no user {listed}: the users table is empty; run `invoke db.seed` first"
    return f"no user {listed}; the known handles are {', '.join(names)}"
