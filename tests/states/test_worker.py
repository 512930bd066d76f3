"""A test worker's copy of ``seeded`` (on both engines, on services of the test's own): its own database, table and
pool, and a reset that undoes exactly what a test changed and nothing more."""

from __future__ import annotations

import json

import psycopg
import pytest

from bootstrap.backends import endpoints_for
from bootstrap.config import resolve_settings
from bootstrap.errors import ConfigError
from bootstrap.states.worker import prepare, worker_names

pytestmark = pytest.mark.both_engines


def _contents(environment) -> tuple:
    endpoints = environment.endpoints
    with psycopg.connect(endpoints.postgres_url) as conn:
        rows = [conn.execute(f"select to_jsonb(t)::text from {table} t order by 1").fetchall()
                for table in ("users", "activities")]
    pages = endpoints.client("dynamodb").get_paginator("scan").paginate(TableName=environment.table_name,
                                                                        ConsistentRead=True)
    items = sorted(json.dumps(item, sort_keys=True) for page in pages for item in page["Items"])
    users = endpoints.client("cognito-idp").list_users(UserPoolId=endpoints.user_pool_id)["Users"]
    return rows, items, sorted(json.dumps([u["Username"], u["Attributes"]], sort_keys=True) for u in users)


def test_a_worker_gets_its_own_seeded_copy_and_a_reset_undoes_only_what_changed(cli) -> None:
    cli("up")
    settings = resolve_settings({}, cli.env, {})
    app = endpoints_for(settings)
    environment = prepare(settings, app, "gw7")
    try:
        assert environment.endpoints.database_name == "cruddur_gw7"
        assert environment.table_name == "cruddur-messages-gw7" and environment.pool_name == "cruddur-user-pool-gw7"
        seeded = _contents(environment)
        endpoints = environment.endpoints
        with psycopg.connect(endpoints.postgres_url) as conn:
            conn.execute("delete from users")  # activities reference users: the reset must not mind the order
            conn.execute("delete from activities")
        dynamodb = endpoints.client("dynamodb")
        dynamodb.put_item(TableName=environment.table_name, Item={"pk": {"S": "MSG#new"}, "sk": {"S": "1"}})
        cognito = endpoints.client("cognito-idp")
        cognito.admin_create_user(UserPoolId=endpoints.user_pool_id, Username="extra", MessageAction="SUPPRESS")
        # The app's own database, table and pool are not the worker's.
        with psycopg.connect(app.postgres_url) as conn:
            assert conn.execute("select count(*) from users").fetchone()[0] == 5

        environment.reset()
        assert _contents(environment) == seeded
        with psycopg.connect(endpoints.postgres_url) as conn:
            assert conn.execute("select count(*) from cruddur_seeded.changed").fetchone()[0] == 0
        environment.reset()  # nothing changed: nothing to do
        assert _contents(environment) == seeded
    finally:
        environment.remove()
    assert "gw7" not in json.dumps(app.client("dynamodb").list_tables()["TableNames"])


def test_a_worker_id_must_fit_in_a_name() -> None:
    settings = resolve_settings({}, {}, {})
    with pytest.raises(ConfigError, match="cannot be part of a database name"):
        worker_names(settings, type("E", (), {"database_name": "cruddur"})(), "gw 1; drop")
