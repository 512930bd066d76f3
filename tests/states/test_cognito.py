"""A state's user pool on the session's real moto server: ids, clients and users (with their subs) come back exactly."""

from __future__ import annotations

import uuid

from bootstrap.config import Endpoints
from bootstrap.states.cognito import load_pool, save_pool


def _everything(endpoints: Endpoints, name: str) -> dict:
    saved = save_pool(endpoints, name)
    assert saved is not None
    return saved


def _attribute(user: dict, name: str) -> str:
    return next(a["Value"] for a in user["attributes"] if a["Name"] == name)


def test_pool_clients_and_users_come_back_with_their_ids(stack) -> None:
    endpoints: Endpoints = stack.endpoints
    client = endpoints.client("cognito-idp")
    name = f"pool-{uuid.uuid4().hex[:8]}"
    pool_id = client.create_user_pool(PoolName=name, UsernameAttributes=["email"],
                                      Schema=[{"Name": "team", "AttributeDataType": "String"}])["UserPool"]["Id"]
    client.create_user_pool_client(UserPoolId=pool_id, ClientName="web", GenerateSecret=True)
    for handle in ("ann", "bob"):
        client.admin_create_user(UserPoolId=pool_id, Username=f"{handle}@example.com", MessageAction="SUPPRESS",
                                 UserAttributes=[{"Name": "preferred_username", "Value": handle},
                                                 {"Name": "custom:team", "Value": "red"}])
    client.admin_disable_user(UserPoolId=pool_id, Username="bob@example.com")
    saved = _everything(endpoints, name)
    enabled = {_attribute(user, "preferred_username"): user["enabled"] for user in saved["users"]}
    assert enabled == {"ann": True, "bob": False}

    # Changed: a user added, one's attribute changed, one deleted, a client added.
    client.admin_create_user(UserPoolId=pool_id, Username="cat@example.com", MessageAction="SUPPRESS")
    usernames = {_attribute(user, "preferred_username"): user["username"] for user in saved["users"]}
    client.admin_update_user_attributes(UserPoolId=pool_id, Username=usernames["ann"],
                                        UserAttributes=[{"Name": "preferred_username", "Value": "annie"}])
    client.admin_delete_user(UserPoolId=pool_id, Username=usernames["bob"])
    client.create_user_pool_client(UserPoolId=pool_id, ClientName="extra")
    loaded_id, report = load_pool(endpoints, saved)
    assert loaded_id == pool_id and not report.pool_recreated and report.new_ids == 0
    assert (report.users_created, report.users_deleted, report.clients_deleted) == (2, 1, 1)
    assert _everything(endpoints, name) == saved

    # Gone altogether: the pool comes back with its id, its client's id and secret, and every sub.
    client.delete_user_pool(UserPoolId=pool_id)
    loaded_id, report = load_pool(endpoints, saved)
    assert loaded_id == pool_id and report.pool_recreated and report.new_ids == 0
    assert _everything(endpoints, name) == saved
    assert "2 users created" in report.describe(name)


def test_a_missing_pool_is_no_part(stack) -> None:
    assert save_pool(stack.endpoints, f"missing-{uuid.uuid4().hex[:8]}") is None



def _saved_pool(endpoints: Endpoints, handles: tuple[str, ...]) -> dict:
    client = endpoints.client("cognito-idp")
    name = f"pool-{uuid.uuid4().hex[:8]}"
    pool_id = client.create_user_pool(PoolName=name)["UserPool"]["Id"]
    for handle in handles:
        client.admin_create_user(UserPoolId=pool_id, Username=handle, MessageAction="SUPPRESS")
    return _everything(endpoints, name)


def _subs(saved: dict) -> dict[str, str]:
    return {user["username"]: user["sub"] for user in saved["users"]}


def test_two_workers_loading_their_copies_at_once_both_get_every_sub(stack) -> None:
    """moto draws every id from one generator: two pytest-xdist workers loading their pools into one server at
    once (threads here, each with its own lock handle, as processes have) must not take each other's seed."""
    import threading

    endpoints: Endpoints = stack.endpoints
    saved = _saved_pool(endpoints, ("ann", "bob", "cat", "dan", "eve", "fay", "gus", "hal"))
    copies: dict[str, dict[str, str]] = {}

    def worker(copy: str) -> None:
        load_pool(endpoints, saved, copy)
        copies[copy] = _subs(_everything(endpoints, copy))

    threads = [threading.Thread(target=worker, args=(f"{saved['name']}-gw{n}",)) for n in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert copies == {f"{saved['name']}-gw{n}": _subs(saved) for n in range(2)}


def test_an_id_drawn_by_someone_else_between_seed_and_create_is_made_again(stack, monkeypatch) -> None:
    """An app's test creating a user between our seed and our create takes the id we seeded for; the load
    deletes what it made and tries again. The stranger's draw is made on the real server, right after each of
    our first seeds (patched into our own seeding, the one place that can time it)."""
    from bootstrap.cognito import MotoIds

    endpoints: Endpoints = stack.endpoints
    saved = _saved_pool(endpoints, ("ann", "bob"))
    client = endpoints.client("cognito-idp")
    stranger_pool = client.create_user_pool(PoolName=f"{saved['name']}-app")["UserPool"]["Id"]
    seeds_seen: set[str] = set()
    real_seed = MotoIds.seed

    def seed_then_stranger(self: MotoIds, value: int | str) -> None:
        real_seed(self, value)
        if isinstance(value, str) and value not in seeds_seen:
            seeds_seen.add(value)
            client.admin_create_user(UserPoolId=stranger_pool, Username=f"u{len(seeds_seen)}",
                                     MessageAction="SUPPRESS")

    monkeypatch.setattr(MotoIds, "seed", seed_then_stranger)
    client.delete_user_pool(UserPoolId=saved["id"])
    pool_id, report = load_pool(endpoints, saved)
    assert len(seeds_seen) == 3  # the pool and two users, each taken once by the stranger
    assert pool_id == saved["id"] and report.new_ids == 0
    assert _everything(endpoints, saved["name"]) == saved
