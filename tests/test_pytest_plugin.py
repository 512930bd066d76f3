"""The pytest plugin, as an app's test suite uses it: a test file of an imaginary app, run by pytest in a process
of its own (with and without xdist, in both orders), on an environment the plugin brings up itself."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest

from tests.helpers import PROJECT_ROOT

pytestmark = pytest.mark.slow

WRITES = '''
def test_writes_to_all_three_services(cruddur_env):
    import psycopg
    with psycopg.connect(cruddur_env.postgres_url) as conn:
        conn.execute("delete from activities")
        conn.execute("update users set display_name = 'changed'")
    session = cruddur_env.boto3_session()
    dynamodb = session.client("dynamodb", endpoint_url=cruddur_env.aws_endpoint_url)
    dynamodb.put_item(TableName=cruddur_env.table_name, Item={"pk": {"S": "MSG#test"}, "sk": {"S": "x"}})
    first = dynamodb.scan(TableName=cruddur_env.table_name, Limit=1)["Items"][0]
    dynamodb.delete_item(TableName=cruddur_env.table_name, Key={"pk": first["pk"], "sk": first["sk"]})
    cognito = session.client("cognito-idp", endpoint_url=cruddur_env.cognito_endpoint_url)
    cognito.admin_create_user(UserPoolId=cruddur_env.user_pool_id, Username="intruder", MessageAction="SUPPRESS")
'''

SEEDED = '''
def test_sees_the_seeded_state(cruddur_env):
    import psycopg
    with psycopg.connect(cruddur_env.postgres_url) as conn:
        assert conn.execute("select count(*) from activities").fetchone()[0] == 9
        assert conn.execute("select count(*) from users where display_name = 'changed'").fetchone()[0] == 0
        subs = dict(conn.execute("select handle, cognito_user_id from users").fetchall())
    session = cruddur_env.boto3_session()
    dynamodb = session.client("dynamodb", endpoint_url=cruddur_env.aws_endpoint_url)
    items = dynamodb.scan(TableName=cruddur_env.table_name, Select="COUNT", ConsistentRead=True)["Count"]
    assert items == 125
    cognito = session.client("cognito-idp", endpoint_url=cruddur_env.cognito_endpoint_url)
    users = cognito.list_users(UserPoolId=cruddur_env.user_pool_id)["Users"]
    found = {next(a["Value"] for a in u["Attributes"] if a["Name"] == "preferred_username"):
             next(a["Value"] for a in u["Attributes"] if a["Name"] == "sub") for u in users}
    assert found == subs
'''


def test_an_apps_tests_each_start_from_the_seeded_state_in_any_order_with_and_without_xdist(cli,
                                                                                           tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "test_writes_first.py").write_text(WRITES + SEEDED)
    (app / "test_seeded_first.py").write_text(SEEDED + WRITES)
    for workers in ("0", "2"):
        for file in ("test_writes_first.py", "test_seeded_first.py"):
            result = cli.run([sys.executable, "-m", "pytest", "-p", "bootstrap.pytest_plugin", "-p", "no:cacheprovider",
                              "--rootdir", str(app), "--cruddur-dir", str(PROJECT_ROOT), "-n", workers, "-q",
                              str(app / file)], timeout=300)
            assert "2 passed" in result.stdout, result.stdout


def test_the_plugin_is_the_projects_pytest11_entry_point() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"cruddur": "bootstrap.pytest_plugin"}
