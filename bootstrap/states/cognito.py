"""A state's Cognito part: the local user pool with its id, app clients and users (attributes, ``sub``, enabled).

Loading gives every id back exactly, so ``users.cognito_user_id`` in Postgres
still matches: before moto creates the pool, a client or a user, it is seeded
(``/moto-api/seed``) so that the ids it draws next are the saved ones
(``moto_random``). A pool whose id differs is deleted and created again; in a
pool that is kept, only the users that are missing or differ (attributes,
sub, enabled) are created again and those the state lacks are deleted, and
the same for clients. Cognito never gives passwords back, so a user created
again has none (FORCE_CHANGE_PASSWORD, as the seeded users have). A moto that
takes no seed gives new ids, and ``PoolLoad.new_ids`` counts them.
"""

from __future__ import annotations

import random
import time
import uuid
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence, TypeVar

from ..cognito import PAGE_SIZE, MotoIds, find_pool_id, paginate, stable_ids
from ..config import Endpoints
from ..errors import aws_errors
from .moto_random import decimal_text, seed_for_uuids

# Another process may draw from moto's one generator between our seed and our create (an app's test creating
# a user, say): the id is checked, and the object deleted and made again, up to this many times.
DRAW_ATTEMPTS = 5

T = TypeVar("T")


@dataclass(frozen=True)
class PoolLoad:
    """What loading the pool changed."""

    pool_recreated: bool
    users_created: int
    users_deleted: int
    users_unchanged: int
    clients_created: int
    clients_deleted: int
    new_ids: int  # pool, client or user ids moto drew anew (it took no seed)

    def describe(self, name: str) -> str:
        pool = "recreated, " if self.pool_recreated else ""
        text = (f"pool {name}: {pool}{self.users_created} users created, {self.users_deleted} deleted, "
                f"{self.users_unchanged} unchanged; {self.clients_created} clients created, "
                f"{self.clients_deleted} deleted")
        if self.new_ids:
            text += (f"; {self.new_ids} ids could not be given back (the endpoint takes no seed): "
                     "`invoke db.update-cognito-user-ids` brings Postgres in line")
        return text


def save_pool(endpoints: Endpoints, name: str) -> dict[str, Any] | None:
    """The pool named ``name`` as JSON-ready data; None when there is no such pool."""
    client = endpoints.client("cognito-idp")
    with aws_errors(f"saving user pool {name}"):
        pool_id = find_pool_id(endpoints, name)
        if pool_id is None:
            return None
        described = client.describe_user_pool(UserPoolId=pool_id)["UserPool"]
        return {
            "id": pool_id,
            "name": name,
            "create": _pool_arguments(described),
            "clients": [_client_record(client, pool_id, summary["ClientId"])
                        for summary in _pages(client.list_user_pool_clients, "UserPoolClients",
                                              UserPoolId=pool_id, MaxResults=PAGE_SIZE)],
            "users": sorted((user_record(raw) for raw in _pages(client.list_users, "Users", UserPoolId=pool_id,
                                                                Limit=PAGE_SIZE)),
                            key=lambda user: user["username"]),
        }


def user_record(raw: Mapping[str, Any]) -> dict[str, Any]:
    """One user as ListUsers gives it, as saved: username, sub, the other attributes (sorted), enabled."""
    attributes = sorted(({"Name": a["Name"], "Value": a.get("Value", "")} for a in raw.get("Attributes", ())),
                        key=lambda a: a["Name"])
    return {
        "username": raw["Username"],
        "sub": next((a["Value"] for a in attributes if a["Name"] == "sub"), None),
        "attributes": [a for a in attributes if a["Name"] != "sub"],  # moto gives a created user its sub itself
        "enabled": raw.get("Enabled", True),
    }


def _pool_arguments(described: Mapping[str, Any]) -> dict[str, Any]:
    """The CreateUserPool arguments that matter to the app: sign-in attributes and custom attributes."""
    arguments: dict[str, Any] = {}
    for field in ("UsernameAttributes", "AutoVerifiedAttributes", "AliasAttributes"):
        if described.get(field):
            arguments[field] = described[field]
    custom = [{k: v for k, v in a.items() if k != "Name"} | {"Name": a["Name"].removeprefix("custom:")}
              for a in described.get("SchemaAttributes", ()) if a["Name"].startswith("custom:")]
    if custom:
        arguments["Schema"] = custom
    return arguments


def _client_record(client: Any, pool_id: str, client_id: str) -> dict[str, Any]:
    described = client.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]
    kept = ("ClientName", "ExplicitAuthFlows", "CallbackURLs", "LogoutURLs", "AllowedOAuthFlows",
            "AllowedOAuthScopes", "SupportedIdentityProviders")
    return {"id": client_id, "secret": described.get("ClientSecret"),
            "create": {key: described[key] for key in kept if described.get(key)}}


def _pages(call: Any, field: str, **arguments: Any) -> list[dict[str, Any]]:
    token_name = "PaginationToken" if field == "Users" else "NextToken"

    def fetch(token: str | None) -> tuple[list[dict[str, Any]], str | None]:
        response = call(**arguments, **({token_name: token} if token else {}))
        return response.get(field, []), response.get(token_name)

    return paginate(fetch)


# --- loading -------------------------------------------------------------------------


def load_pool(endpoints: Endpoints, saved: Mapping[str, Any], name: str | None = None) -> tuple[str, PoolLoad]:
    """Make the pool named as saved hold exactly the saved clients and users, with their ids; its id and what changed.

    Given another ``name`` (a pytest worker's own pool), that pool gets the saved users with their subs, under an id
    of its own: moto keeps pools by id, so the saved id stays the saved pool's.
    """
    client = endpoints.client("cognito-idp")
    name = name or saved["name"]
    wanted_id = saved["id"] if name == saved["name"] else None
    new_ids = 0
    with aws_errors(f"loading user pool {name}"), stable_ids(endpoints) as ids:
        pool_id = find_pool_id(endpoints, name)
        recreated = pool_id is None or (wanted_id is not None and pool_id != wanted_id)
        if recreated:
            if pool_id is not None:
                client.delete_user_pool(UserPoolId=pool_id)
            if wanted_id is None:
                pool_id = str(client.create_user_pool(PoolName=name, **saved["create"])["UserPool"]["Id"])
            else:
                pool_id = _drawn(
                    ids, [_uuid_of(wanted_id.partition("_")[2])],
                    lambda: str(client.create_user_pool(PoolName=name, **saved["create"])["UserPool"]["Id"]),
                    lambda made: made == wanted_id,
                    lambda made: client.delete_user_pool(UserPoolId=made))
                new_ids += int(pool_id != wanted_id)
        assert pool_id is not None  # found, or created just now
        clients_created, clients_deleted, new = _load_clients(client, ids, pool_id, saved["clients"], recreated)
        new_ids += new
        created, removed, unchanged, new = _sync_users(client, ids, pool_id, saved, recreated)
        new_ids += new
    return pool_id, PoolLoad(recreated, created, removed, unchanged, clients_created, clients_deleted, new_ids)


def load_users(endpoints: Endpoints, pool_id: str, saved: Mapping[str, Any]) -> tuple[int, int, int, int]:
    """Make the users of pool ``pool_id`` exactly the saved ones (the pool and its clients as they are);
    (created, deleted, unchanged, ids that could not be given back)."""
    with aws_errors(f"loading the users of {pool_id}"), stable_ids(endpoints) as ids:
        return _sync_users(endpoints.client("cognito-idp"), ids, pool_id, saved, False)


def _sync_users(client: Any, ids: MotoIds, pool_id: str, saved: Mapping[str, Any],
                new_pool: bool) -> tuple[int, int, int, int]:
    present = {} if new_pool else {user["username"]: user for user in
                                   map(user_record, _pages(client.list_users, "Users", UserPoolId=pool_id,
                                                           Limit=PAGE_SIZE))}
    wanted = {user["username"]: user for user in saved["users"]}
    deleted = [username for username, user in present.items() if wanted.get(username) != user]
    for username in deleted:
        client.admin_delete_user(UserPoolId=pool_id, Username=username)
    created = [user for username, user in wanted.items() if present.get(username) != user]
    sign_in = saved["create"].get("UsernameAttributes", ())
    new_ids = sum(int(_create_user(client, ids, pool_id, user, sign_in) != user["sub"]) for user in created)
    removed = len([username for username in deleted if username not in wanted])
    return len(created), removed, len(wanted) - len(created), new_ids


def _load_clients(client: Any, ids: MotoIds, pool_id: str, saved: list[dict[str, Any]],
                  new_pool: bool) -> tuple[int, int, int]:
    present = set() if new_pool else {c["ClientId"] for c in _pages(
        client.list_user_pool_clients, "UserPoolClients", UserPoolId=pool_id, MaxResults=PAGE_SIZE)}
    wanted = {c["id"]: c for c in saved}
    extra = present - set(wanted)
    for client_id in extra:
        client.delete_user_pool_client(UserPoolId=pool_id, ClientId=client_id)
    new_ids = 0
    missing = [c for client_id, c in wanted.items() if client_id not in present]
    for record in missing:
        # moto draws the client id (its first 26 hex digits are kept), then the secret.
        made = _drawn(
            ids, [_uuid_of(record["id"]), uuid.UUID(record["secret"]) if record["secret"] else uuid.uuid4()],
            lambda: client.create_user_pool_client(UserPoolId=pool_id, GenerateSecret=bool(record["secret"]),
                                                   **record["create"])["UserPoolClient"],
            lambda made: made["ClientId"] == record["id"],
            lambda made: client.delete_user_pool_client(UserPoolId=pool_id, ClientId=made["ClientId"]))
        new_ids += int(made["ClientId"] != record["id"])
    return len(missing), len(extra), new_ids


def _create_user(client: Any, ids: MotoIds, pool_id: str, user: Mapping[str, Any],
                 sign_in: Sequence[str]) -> str | None:
    """Create one saved user with its sub (disabled again if it was); the sub it got.

    In a pool that signs in by email or phone number the username is the sub itself, and the user is created
    by that attribute.
    """
    values = {a["Name"]: a["Value"] for a in user["attributes"]}
    username = next((values[name] for name in sign_in if name in values and user["username"] == user["sub"]),
                    user["username"])

    def create() -> dict[str, Any]:
        made: dict[str, Any] = client.admin_create_user(UserPoolId=pool_id, Username=username,
                                                        MessageAction="SUPPRESS",
                                                        UserAttributes=user["attributes"])["User"]
        return made

    def sub_of(made: Mapping[str, Any]) -> str | None:
        return next((a["Value"] for a in made.get("Attributes", ()) if a["Name"] == "sub"), None)

    if user["sub"]:
        made = _drawn(ids, [uuid.UUID(user["sub"])], create, lambda made: sub_of(made) == user["sub"],
                      lambda made: client.admin_delete_user(UserPoolId=pool_id, Username=made["Username"]))
    else:
        made = create()
    if not user["enabled"]:
        client.admin_disable_user(UserPoolId=pool_id, Username=made["Username"])
    return sub_of(made)


def _drawn(ids: MotoIds, wanted: list[uuid.UUID], create: Callable[[], T], right: Callable[[T], bool],
           undo: Callable[[T], None]) -> T:
    """Seed moto for ``wanted`` and ``create``; made again while another process took the draw (see
    ``DRAW_ATTEMPTS``). The last try is kept whatever it drew: the caller counts it as a new id."""
    seed = decimal_text(seed_for_uuids(wanted))
    attempt = 1
    while True:
        with ids.turn():
            ids.seed(seed)
            made = create()
        if not ids.used or right(made) or attempt == DRAW_ATTEMPTS:
            return made
        undo(made)
        time.sleep(random.uniform(0, 0.01 * attempt))  # out of step with whoever drew in between
        attempt += 1


def _uuid_of(hex_id: str) -> uuid.UUID:
    """The version-4 UUID whose hex digits an id of moto's begins with (the rest padded with zeros)."""
    return uuid.UUID(hex=(hex_id + "0" * 32)[:32])
