"""Cognito: pool and users seeding, paginated listing, and the id sync into Postgres.

Planning and formatting are tested with plain values; everything else runs
against the session's real moto server and a fresh database of the real
embedded Postgres. Tests share one moto server, so each uses a pool name of
its own.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Iterator

import pytest

from bootstrap import cognito
from bootstrap.cognito import CognitoUser, IdUpdate, SyncPlan, SyncReport, paginate, plan_seed, plan_sync
from bootstrap.config import Endpoints, Settings
from bootstrap.errors import BootstrapError, ConfigError, RefusedError, ServiceError
from bootstrap.fixtures.model import Fixtures, UserFixture
from bootstrap.pg.connection import connect
from bootstrap.readiness import Deadline
from bootstrap.services.moto import MotoServer
from bootstrap.state import StateDir
from bootstrap.steps import Action
from tests.conftest import Stack, make_settings

SCHEMA = Path(__file__).resolve().parent.parent / "sql" / "schema.sql"


def user(handle: str) -> UserFixture:
    return UserFixture(handle=handle, display_name=f"User {handle}", email=f"{handle}@example.test", line=1)


def fixtures_of(*handles: str) -> Fixtures:
    return Fixtures(users=tuple(user(h) for h in handles), activities=(), conversations=())


def cognito_user(handle: str | None, sub: str | None, username: str | None = None) -> CognitoUser:
    return CognitoUser(username=username or handle or "someone", sub=sub, handle=handle, status="CONFIRMED")


@pytest.fixture
def pool_settings(stack: Stack, tmp_path: Path) -> Settings:
    """The session's settings with a pool name and a state folder of this test's own."""
    return stack.settings.with_values(user_pool_name=f"pool-{uuid.uuid4().hex[:10]}", state_dir=tmp_path / "state")


def load_schema(endpoints: Endpoints) -> None:
    with connect(endpoints.postgres_url) as conn:
        conn.execute(SCHEMA.read_text())


def insert_users(endpoints: Endpoints, handles: list[str], cognito_user_id: str | None = "MOCK") -> None:
    with connect(endpoints.postgres_url) as conn:
        with conn.cursor() as cur:
            cur.executemany(
                "insert into public.users (display_name, email, handle, cognito_user_id) values (%s, %s, %s, %s)",
                [(f"User {h}", f"{h}@example.test", h, cognito_user_id) for h in handles],
            )


def postgres_ids(endpoints: Endpoints) -> dict[str, str | None]:
    with connect(endpoints.postgres_url) as conn:
        return dict(conn.execute("select handle, cognito_user_id from public.users").fetchall())


def cognito_subs(endpoints: Endpoints, pool_id: str) -> dict[str, str | None]:
    return {u.handle: u.sub for u in cognito.list_users(endpoints, pool_id) if u.handle}


# --- pure ----------------------------------------------------------------------------


def test_paginate_follows_tokens_through_short_and_empty_pages() -> None:
    pages = {None: ([1, 2], "a"), "a": ([], "b"), "b": ([3], "c"), "c": ([4], None)}
    assert paginate(lambda token: pages[token]) == [1, 2, 3, 4]


def test_paginate_refuses_a_token_that_repeats() -> None:
    pages = {None: ([1], "a"), "a": ([2], "a")}
    with pytest.raises(ServiceError, match="twice"):
        paginate(lambda token: pages[token])


def test_a_user_without_preferred_username_has_no_handle() -> None:
    raw = {"Username": "ghost", "UserStatus": "CONFIRMED", "Attributes": [{"Name": "sub", "Value": "s-1"}]}
    assert cognito.cognito_user_from(raw) == CognitoUser("ghost", "s-1", None, "CONFIRMED", True)


def test_plan_sync_sorts_every_user_into_one_outcome() -> None:
    plan = plan_sync(
        [
            cognito_user("ann", "sub-ann"),
            cognito_user("bob", "sub-bob"),
            cognito_user("cat", "sub-cat"),
            cognito_user("dan", "sub-dan"),
            cognito_user(None, "sub-x", username="nohandle"),
            cognito_user("eve", "sub-e1", username="eve1"),
            cognito_user("eve", "sub-e2", username="eve2"),
        ],
        {"ann": "sub-ann", "bob": "MOCK", "dan": None, "eve": "MOCK", "zed": "MOCK"},
    )
    assert plan == SyncPlan(
        updates=(IdUpdate("bob", "sub-bob", "MOCK"), IdUpdate("dan", "sub-dan", None)),
        in_sync=("ann",),
        cognito_only=("cat",),
        postgres_only=("zed",),
        without_handle=("nohandle",),
        ambiguous=("eve",),
    )


def test_plan_sync_of_nothing_is_empty() -> None:
    assert plan_sync([], {}) == SyncPlan()


def test_plan_seed_skips_users_present_by_username_or_preferred_username() -> None:
    existing = [cognito_user("ann", "s1"), cognito_user("bob", "s2", username="uuid-like-name"),
                cognito_user(None, "s3", username="cat")]
    plan = plan_seed(existing, [user("ann"), user("bob"), user("cat"), user("dan")])
    assert [u.handle for u in plan.create] == ["dan"]
    assert plan.existing == ("ann", "bob", "cat")


def test_id_seed_is_stable_and_distinguishes_pools_and_handles() -> None:
    assert cognito.id_seed("pool", "ann") == cognito.id_seed("pool", "ann")
    assert len({cognito.id_seed("pool", "ann"), cognito.id_seed("pool2", "ann"), cognito.id_seed("pool")}) == 3
    assert 0 <= cognito.id_seed("pool") < 2**63


def test_user_rows_mark_users_without_preferred_username() -> None:
    rows = cognito.user_rows([cognito_user(None, "s0", username="ghost"), cognito_user("ann", "s1")])
    assert rows == [["ann", "s1", "CONFIRMED", ""], ["-", "s0", "CONFIRMED", "no preferred_username (username ghost)"]]


def test_sync_report_summarises_a_dry_run() -> None:
    report = SyncReport("pool", SyncPlan(updates=(IdUpdate("bob", "s", "MOCK"),), postgres_only=("zed",)), 0,
                        dry_run=True)
    result = report.step_result()
    assert (result.action, result.writes) == (Action.WOULD_RUN, 0)
    assert "1 to update" in result.detail and "1 Postgres users without a Cognito user" in result.detail
    assert cognito.sync_rows(report) == [["bob", "would update", "MOCK → s"],
                                         ["zed", "no Cognito user", "Postgres row kept as is"]]


def test_prod_needs_a_pool_id(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / ".cruddur", target="prod", region="us-east-1")
    prod = Endpoints("postgresql://u:p@db.invalid/cruddur", None, "us-east-1")
    with pytest.raises(ConfigError, match="AWS_COGNITO_USER_POOL_ID"):
        cognito.resolve_pool_id(prod, settings)
    assert cognito.resolve_pool_id(prod, settings.with_values(user_pool_id="us-east-1_abc")) == "us-east-1_abc"


def test_seed_users_refuses_on_prod(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / ".cruddur", target="prod", region="us-east-1")
    prod = Endpoints("postgresql://u:p@db.invalid/cruddur", None, "us-east-1")
    with pytest.raises(RefusedError, match="local-only"):
        cognito.seed_users(prod, settings, fixtures_of("ann"))


# --- real moto and Postgres ----------------------------------------------------------


def test_seed_users_creates_the_pool_once_and_is_idempotent(endpoints: Endpoints, pool_settings: Settings) -> None:
    state = StateDir(pool_settings.state_dir)
    first = cognito.seed_users(endpoints, pool_settings, fixtures_of("ann", "bob", "cat"), state)
    second = cognito.seed_users(endpoints, pool_settings, fixtures_of("ann", "bob", "cat"), state)

    assert (first.action, first.writes) == (Action.CREATED, 4)
    assert (second.action, second.writes) == (Action.UNCHANGED, 0)
    pool_id = cognito.find_pool_id(endpoints, pool_settings.user_pool_name)
    assert state.get("user_pool_id") == pool_id
    users = cognito.list_users(endpoints, pool_id)
    assert sorted(u.handle for u in users) == ["ann", "bob", "cat"]
    assert all(u.sub for u in users)


def test_seed_users_adds_only_new_fixture_users(endpoints: Endpoints, pool_settings: Settings) -> None:
    cognito.seed_users(endpoints, pool_settings, fixtures_of("ann"))
    result = cognito.seed_users(endpoints, pool_settings, fixtures_of("ann", "bob"))
    assert (result.action, result.writes) == (Action.UPDATED, 1)


def test_sync_of_150_users_with_one_missing_handle_then_nothing_to_do(
    endpoints: Endpoints, pool_settings: Settings
) -> None:
    handles = [f"user_{i:03d}" for i in range(150)]
    cognito.seed_users(endpoints, pool_settings, fixtures_of(*handles))
    pool_id = cognito.find_pool_id(endpoints, pool_settings.user_pool_name)
    endpoints.client("cognito-idp").admin_create_user(UserPoolId=pool_id, Username="no_handle",
                                                      MessageAction="SUPPRESS")
    load_schema(endpoints)
    insert_users(endpoints, [*handles, "only_in_postgres"])

    report = cognito.sync_report(endpoints, pool_id)
    again = cognito.sync_report(endpoints, pool_id)

    assert report.written == 150 and len(report.plan.updates) == 150
    assert report.plan.postgres_only == ("only_in_postgres",)
    assert report.plan.without_handle == ("no_handle",)
    ids = postgres_ids(endpoints)
    assert {h: ids[h] for h in handles} == cognito_subs(endpoints, pool_id)
    assert ids["only_in_postgres"] == "MOCK"
    assert again.written == 0 and again.plan.updates == () and len(again.plan.in_sync) == 150
    assert again.step_result().action is Action.UNCHANGED
    assert len(cognito.user_rows(cognito.list_users(endpoints, pool_id))) == 151


def test_the_sync_given_the_fixtures_records_their_fingerprint_as_up_does(endpoints: Endpoints,
                                                                          pool_settings: Settings) -> None:
    from bootstrap.fixtures.model import cognito_fingerprint
    from bootstrap.meta import COGNITO_FINGERPRINT
    from bootstrap.pg.bookkeeping import read_meta

    fixtures = fixtures_of("ann", "bob")
    cognito.seed_users(endpoints, pool_settings, fixtures)
    pool_id = cognito.find_pool_id(endpoints, pool_settings.user_pool_name)
    load_schema(endpoints)
    insert_users(endpoints, ["ann", "bob"])
    cognito.sync_report(endpoints, pool_id, dry_run=True, fixtures=fixtures)
    assert COGNITO_FINGERPRINT not in read_meta(endpoints.postgres_url), "a dry run records nothing"
    cognito.sync_user_ids(endpoints, pool_id, fixtures)
    assert read_meta(endpoints.postgres_url)[COGNITO_FINGERPRINT] == cognito_fingerprint(fixtures.users_fingerprint,
                                                                                         pool_id)


def test_sync_without_schema_says_what_to_do(endpoints: Endpoints, pool_settings: Settings) -> None:
    cognito.seed_users(endpoints, pool_settings, fixtures_of("ann"))
    pool_id = cognito.find_pool_id(endpoints, pool_settings.user_pool_name)
    with pytest.raises(BootstrapError, match="schema"):
        cognito.sync_report(endpoints, pool_id)


def test_local_pool_must_exist_for_reads(endpoints: Endpoints, pool_settings: Settings) -> None:
    with pytest.raises(BootstrapError, match="cognito.seed-users"):
        cognito.resolve_pool_id(endpoints, pool_settings)


@pytest.fixture
def own_moto(tmp_path: Path) -> Iterator[MotoServer]:
    """A moto server of this test's own, so that restarting it leaves the shared one alone."""
    settings = make_settings(tmp_path / ".cruddur-own")
    server = MotoServer(settings, StateDir(settings.state_dir).ensure())
    try:
        yield server
    finally:
        server.stop()


REGION = "us-east-1"


def start_and_wait(server: MotoServer, postgres_url: str) -> Endpoints:
    server.start(Deadline(30))  # returns once its probes (Cognito's among them) answer
    return Endpoints(postgres_url, server.url(), REGION)


def test_subs_survive_a_restart_and_the_sync_repairs_them_when_they_do_not(
    endpoints: Endpoints, own_moto: MotoServer, tmp_path: Path
) -> None:
    settings = make_settings(tmp_path / ".cruddur-own", user_pool_name="cruddur-user-pool")
    handles = ["ann", "bob", "cat"]
    load_schema(endpoints)
    insert_users(endpoints, handles)

    local = start_and_wait(own_moto, endpoints.postgres_url)
    cognito.seed_users(local, settings, fixtures_of(*handles))
    pool_id = cognito.find_pool_id(local, settings.user_pool_name)
    before = cognito_subs(local, pool_id)
    assert cognito.sync_report(local, pool_id).written == 3

    # Restart: moto forgets everything; seeding again recreates the same pool id and subs.
    own_moto.stop()
    local = start_and_wait(own_moto, endpoints.postgres_url)
    assert cognito.find_pool_id(local, settings.user_pool_name) is None
    assert cognito.seed_users(local, settings, fixtures_of(*handles)).action is Action.CREATED
    assert cognito.find_pool_id(local, settings.user_pool_name) == pool_id
    assert cognito_subs(local, pool_id) == before
    assert cognito.sync_report(local, pool_id).written == 0

    # Restart again, and recreate the users the way a tool without stable ids would: new subs.
    own_moto.stop()
    local = start_and_wait(own_moto, endpoints.postgres_url)
    client = local.client("cognito-idp")
    new_pool = client.create_user_pool(PoolName=settings.user_pool_name)["UserPool"]["Id"]
    for handle in handles:
        client.admin_create_user(UserPoolId=new_pool, Username=handle, MessageAction="SUPPRESS",
                                 UserAttributes=[{"Name": "preferred_username", "Value": handle}])
    after = cognito_subs(local, new_pool)
    assert set(after.values()).isdisjoint(before.values())

    report = cognito.sync_report(local, new_pool)
    assert report.written == 3
    assert {h: postgres_ids(endpoints)[h] for h in handles} == after


# --- tasks ---------------------------------------------------------------------------


@pytest.fixture
def task_env(endpoints: Endpoints, monkeypatch: pytest.MonkeyPatch) -> str:
    """Point the tasks at the shared services as an external backend; returns the pool name."""
    pool_name = f"pool-{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("CRUDDUR_BACKEND", "external")
    monkeypatch.setenv("CONNECTION_URL", endpoints.postgres_url)
    monkeypatch.setenv("AWS_ENDPOINT_URL", endpoints.aws_endpoint_url)
    monkeypatch.setenv("CRUDDUR_USER_POOL_NAME", pool_name)
    return pool_name


def test_tasks_seed_list_sync_and_env(
    endpoints: Endpoints, task_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    import os

    from invoke import Context

    import tasks
    from bootstrap import lifecycle
    from bootstrap.config import resolve_settings

    load_schema(endpoints)
    insert_users(endpoints, ["maren_kiln", "tobias_w"])

    tasks.cognito_seed_users(Context())
    capsys.readouterr()
    tasks.cognito_list_users(Context(), json=True)
    listed = json.loads(capsys.readouterr().out)
    assert "maren_kiln" in {u["handle"] for u in listed["users"]}

    tasks.db_update_cognito_user_ids(Context(), json=True)
    synced = json.loads(capsys.readouterr().out)
    assert sorted(u["handle"] for u in synced["updated"]) == ["maren_kiln", "tobias_w"]
    tasks.db_update_cognito_user_ids(Context(), json=True)
    assert json.loads(capsys.readouterr().out)["written"] == 0
    tasks.cognito_list_users(Context())
    tasks.db_update_cognito_user_ids(Context(), dry_run=True)
    human = capsys.readouterr()
    assert "maren_kiln" in human.out and "unchanged" in human.err
    assert [u["sub"] for u in listed["users"] if not any(u["sub"] in line for line in human.out.splitlines())] == []

    variables = lifecycle.env_variables(resolve_settings({}, os.environ, {}))
    assert variables["AWS_COGNITO_USER_POOL_ID"] == listed["pool_id"]


def test_list_users_task_on_prod_without_a_pool_id_exits_with_a_config_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from invoke import Context, Exit

    import tasks

    monkeypatch.setenv("PROD_CONNECTION_URL", "postgresql://u:p@db.invalid/cruddur")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with pytest.raises(Exit) as caught:
        tasks.cognito_list_users(Context(), target="prod")
    assert caught.value.code == 2 and "AWS_COGNITO_USER_POOL_ID" in str(caught.value)
