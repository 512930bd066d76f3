"""What the end-to-end tests of states share: everything a state holds, read back, and changing all of it."""

from __future__ import annotations

import json
import uuid

import psycopg

from bootstrap.fixtures.parse import load_fixtures
from tests.helpers import PROJECT_ROOT


def everything(cli) -> tuple:
    """A dump of the app's rows, a full scan of the table (None without one), and every Cognito user with its sub
    and attributes."""
    endpoints = cli.endpoints()
    with psycopg.connect(endpoints.postgres_url) as conn:
        rows = [conn.execute(f"select to_jsonb(t)::text from {table} t order by 1").fetchall()
                for table in ("users", "activities")]
    dynamodb = endpoints.client("dynamodb")
    items = None  # no table
    if "cruddur-messages" in dynamodb.list_tables()["TableNames"]:
        pages = dynamodb.get_paginator("scan").paginate(TableName="cruddur-messages", ConsistentRead=True)
        items = sorted(json.dumps(item, sort_keys=True) for page in pages for item in page["Items"])
    cognito = endpoints.client("cognito-idp")
    users = cognito.list_users(UserPoolId=endpoints.user_pool_id)["Users"]
    people = sorted(json.dumps([u["Username"], u["Enabled"], sorted((a["Name"], a["Value"]) for a in u["Attributes"])])
                    for u in users)
    return rows, items, people, endpoints.user_pool_id


def change_everything(cli) -> None:
    """A Postgres row, a DynamoDB item through pattern C, a new Cognito user."""
    endpoints = cli.endpoints()
    conversation = load_fixtures(PROJECT_ROOT / "seeds").conversations[0]
    with psycopg.connect(endpoints.postgres_url) as conn:
        conn.execute("update users set display_name = %s where handle = %s", (uuid.uuid4().hex,
                                                                               conversation.members[0]))
    cli("ddb.create-message", "--group", conversation.group_uuid, "--handle", conversation.members[0],
        "--text", uuid.uuid4().hex)
    endpoints.client("cognito-idp").admin_create_user(
        UserPoolId=endpoints.user_pool_id, Username=f"u{uuid.uuid4().hex[:8]}", MessageAction="SUPPRESS",
        UserAttributes=[{"Name": "email", "Value": "new@example.com"}])
