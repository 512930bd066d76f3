"""The prod target run to success, task by task as processes, against a stand-in for AWS.

The stand-in is a real moto server of this module's own (DynamoDB with
Streams, Cognito, IAM, Lambda). The task processes get no endpoint from us:
a temporary shared config file (``AWS_CONFIG_FILE``) whose ``[default]``
profile sets botocore's own ``endpoint_url``, and test credentials in the
environment, exactly how a real account is configured. Production Postgres is
a database of the session's embedded Postgres named by ``PROD_CONNECTION_URL``.

moto runs Lambda functions only in Docker. The server is told, through moto's
own ``/moto-api/config``, to use its Docker-less stand-in, so the deployed
function is created and triggered by the stream but does not run here; its
handler runs from its zip in ``tests/test_deploy.py``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pytest

from bootstrap.config import Endpoints, with_database
from bootstrap.fixtures.parse import load_fixtures
from bootstrap.readiness import Deadline
from bootstrap.services.moto import MotoServer
from bootstrap.state import StateDir
from tests.conftest import Stack, make_settings
from tests.helpers import ENV_PREFIXES, PROJECT_ROOT

pytestmark = pytest.mark.slow

REGION = "eu-west-1"
STANDIN_KEY_ID = "AKIASTANDINPROD"
FIXTURES = load_fixtures(PROJECT_ROOT / "seeds")


@pytest.fixture(scope="module")
def aws(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A moto server standing in for an AWS account; its URL (given to botocore's config file only)."""
    settings = make_settings(tmp_path_factory.mktemp("aws") / ".cruddur")
    moto = MotoServer(settings, StateDir(settings.state_dir))
    try:
        moto.start(Deadline(60))  # returns once DynamoDB and Cognito answer
        request = urllib.request.Request(f"{moto.url()}/moto-api/config", method="POST",
                                         data=json.dumps({"lambda": {"use_docker": False}}).encode(),
                                         headers={"Content-Type": "application/json"})
        urllib.request.urlopen(request, timeout=10).read()
        yield moto.url()
    finally:
        moto.stop()


@dataclass
class Prod:
    """One test's production: its table, function, pool and database names, and its task runner."""

    aws_url: str
    env: dict[str, str]
    database: Endpoints
    table: str
    function: str
    pool_id: str

    def run(self, *args: str, check: bool = True, cwd: Path = PROJECT_ROOT, **extra: str) -> Any:
        """``invoke *args`` as a process in this production's environment (plus ``extra``)."""
        result = subprocess.run([sys.executable, "-m", "invoke", *args], cwd=cwd, env={**self.env, **extra},
                                stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=180, check=False)
        if check and result.returncode != 0:
            command = " ".join(args)
            raise AssertionError(f"invoke {command} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
        return result

    def client(self, service: str) -> Any:
        """The test's own view of the stand-in (an explicit endpoint: this is the test looking, not the tool)."""
        import boto3

        return boto3.client(service, endpoint_url=self.aws_url, region_name=REGION,
                            aws_access_key_id=STANDIN_KEY_ID, aws_secret_access_key="stand-in-secret")


def _pool_with_users(prod_client: Any) -> str:
    """A user pool holding one confirmed user per fixture user, as sign-ups leave it."""
    pool_id = prod_client.create_user_pool(PoolName=f"prod-{uuid.uuid4().hex[:8]}")["UserPool"]["Id"]
    for user in FIXTURES.users:
        prod_client.admin_create_user(UserPoolId=pool_id, Username=user.handle, MessageAction="SUPPRESS",
                                      UserAttributes=[{"Name": "preferred_username", "Value": user.handle},
                                                      {"Name": "email", "Value": user.email}])
    return pool_id


@pytest.fixture
def prod(aws: str, stack: Stack, tmp_path: Path) -> Iterator[Prod]:
    import psycopg

    config = tmp_path / "aws-config"
    config.write_text(f"[default]\nregion = {REGION}\nendpoint_url = {aws}\n")
    suffix = uuid.uuid4().hex[:8]
    database = Endpoints(with_database(stack.endpoints.postgres_url, f"prod_{suffix}"), None, REGION)
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES)}
    env.update(
        AWS_CONFIG_FILE=str(config), AWS_SHARED_CREDENTIALS_FILE=str(tmp_path / "no-aws-credentials"),
        AWS_ACCESS_KEY_ID=STANDIN_KEY_ID, AWS_SECRET_ACCESS_KEY="stand-in-secret", AWS_EC2_METADATA_DISABLED="true",
        AWS_DEFAULT_REGION=REGION, PROD_CONNECTION_URL=database.postgres_url,
        CRUDDUR_STATE_DIR=str(tmp_path / ".cruddur"), CRUDDUR_TABLE_NAME=f"cruddur-messages-{suffix}",
        CRUDDUR_STREAM_FUNCTION_NAME=f"cruddur-messaging-stream-{suffix}", NO_COLOR="1", COLUMNS="200",
    )
    standin = Prod(aws, env, database, env["CRUDDUR_TABLE_NAME"], env["CRUDDUR_STREAM_FUNCTION_NAME"], "")
    standin.pool_id = env["AWS_COGNITO_USER_POOL_ID"] = _pool_with_users(standin.client("cognito-idp"))
    yield standin
    with psycopg.connect(stack.endpoints.admin_postgres_url, autocommit=True) as conn:
        conn.execute(f'drop database if exists "{database.database_name}" with (force)')


# --- the whole sequence ------------------------------------------------------------------------

SEQUENCE = (
    ("ddb.schema-load", "created"),
    ("db.create", "created"),
    ("db.schema-load --yes", "created"),  # applying a schema on prod needs --yes
    ("db.seed --yes", "created"),  # stands in for the users that sign-ups put into production
    ("db.update-cognito-user-ids", "updated"),
    ("ddb.deploy-stream-worker --yes", "created"),
)


def _step_action(output: str, step: str) -> str:
    """The action of the step's report line, ``<step>: <action> <detail>``."""
    match = re.search(rf"^{re.escape(step)}: (\w+)", output, re.MULTILINE)
    assert match, f"no report line for {step} in:\n{output}"
    return match.group(1)


def _aws_state(prod: Prod) -> dict[str, Any]:
    """Everything the deployment and the table consist of that a change would alter."""
    iam, functions = prod.client("iam"), prod.client("lambda")
    role = f"{prod.function}-role"
    return {
        "table": prod.client("dynamodb").describe_table(TableName=prod.table)["Table"],
        "role": iam.get_role(RoleName=role)["Role"],
        "policy": iam.get_role_policy(RoleName=role, PolicyName=f"{prod.function}-policy")["PolicyDocument"],
        "function": {key: value for key, value in functions.get_function_configuration(
            FunctionName=prod.function).items() if key != "ResponseMetadata"},
        "mappings": functions.list_event_source_mappings(FunctionName=prod.function)["EventSourceMappings"],
    }


def _database_state(prod: Prod) -> tuple:
    import psycopg

    with psycopg.connect(prod.database.postgres_url) as conn:
        return tuple(conn.execute(f"select t.*::text, t.xmin::text from public.{table} t order by 1").fetchall()
                     for table in ("users", "activities"))


def _cognito_users(prod: Prod) -> list[dict[str, Any]]:
    return prod.client("cognito-idp").list_users(UserPoolId=prod.pool_id)["Users"]


def test_the_whole_prod_sequence_succeeds_then_a_rerun_changes_nothing(prod: Prod) -> None:
    pool_before = _cognito_users(prod)
    for command, action in SEQUENCE:
        task, *flags = command.split()
        result = prod.run(task, "--target", "prod", *flags)
        assert _step_action(result.stderr + result.stdout, task) == action, result.stderr
    first = prod.run("verify", "--target", "prod", "--json")
    aws_before, database_before = _aws_state(prod), _database_state(prod)

    for command, _ in SEQUENCE:
        task, *flags = command.split()
        result = prod.run(task, "--target", "prod", *flags)
        assert _step_action(result.stderr + result.stdout, task) == "unchanged", result.stderr
    again = prod.run("verify", "--target", "prod", "--json")
    assert _aws_state(prod) == aws_before and _database_state(prod) == database_before

    for verified in (first, again):
        assert [(check["name"], check["ok"]) for check in json.loads(verified.stdout)] == [
            ("postgres: schema loaded", True), ("postgres: tables match sql/schema.sql", True),
            ("postgres: handles unique", True), ("postgres: users have cognito ids", True), ("dynamodb: table matches spec", True),
            ("dynamodb: group index answers", True), ("dynamodb: stream has a trigger", True)]
    assert f"function {prod.function}" in again.stdout
    [mapping] = aws_before["mappings"]
    assert mapping["EventSourceArn"] == aws_before["table"]["LatestStreamArn"]
    assert _cognito_users(prod) == pool_before, "the sync reads Cognito and writes only the database"
    subs = {u["Username"]: {a["Name"]: a["Value"] for a in u["Attributes"]}["sub"] for u in pool_before}
    assert _cognito_ids(prod) == subs


def _cognito_ids(prod: Prod) -> dict[str, str]:
    import psycopg

    with psycopg.connect(prod.database.postgres_url) as conn:
        return dict(conn.execute("select handle, cognito_user_id from users").fetchall())


def test_verify_on_prod_names_what_production_lacks_not_fixture_rows(prod: Prod) -> None:
    """An empty production (no table, no tables, no ids) fails each check with what to do, never a traceback."""
    prod.run("db.create", "--target", "prod")
    result = prod.run("verify", "--target", "prod", check=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "missing: activities, users" in result.stdout
    assert f"table {prod.table} missing" in result.stdout
    assert "seeded rows" not in result.stdout and "pattern A" not in result.stdout


# --- the table -------------------------------------------------------------------------------------


def test_schema_load_on_prod_creates_the_contracts_table_and_reports_drift(prod: Prod) -> None:
    prod.run("ddb.schema-load", "--target", "prod")
    table = prod.client("dynamodb").describe_table(TableName=prod.table)["Table"]
    assert table["KeySchema"] == [{"AttributeName": "pk", "KeyType": "HASH"},
                                  {"AttributeName": "sk", "KeyType": "RANGE"}]
    [index] = table["GlobalSecondaryIndexes"]
    assert (index["IndexName"], index["KeySchema"], index["Projection"]) == (
        "message-group-sk-index", [{"AttributeName": "message_group_uuid", "KeyType": "HASH"},
                                   {"AttributeName": "sk", "KeyType": "RANGE"}], {"ProjectionType": "ALL"})
    assert table["StreamSpecification"] == {"StreamEnabled": True, "StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert table["ProvisionedThroughput"]["ReadCapacityUnits"] == 5

    prod.client("dynamodb").update_table(TableName=prod.table, BillingMode="PAY_PER_REQUEST")
    repaired = prod.run("ddb.schema-load", "--target", "prod")
    assert "billing mode: expected PROVISIONED, found PAY_PER_REQUEST" in repaired.stderr
    assert _step_action(repaired.stderr, "ddb.schema-load") == "updated"

    other = f"{prod.table}-keys"
    prod.client("dynamodb").create_table(TableName=other, BillingMode="PAY_PER_REQUEST",
                                         KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                                         AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    drift = prod.run("ddb.schema-load", "--target", "prod", check=False, CRUDDUR_TABLE_NAME=other)
    assert drift.returncode == 1 and "differs from the spec" in drift.stderr and "--recreate" in drift.stderr


# --- reads and the access patterns ------------------------------------------------------------------


def test_reads_and_patterns_on_prod(prod: Prod) -> None:
    for task, *flags in (["ddb.schema-load"], ["db.create"], ["db.schema-load", "--yes"], ["db.seed", "--yes"]):
        prod.run(task, "--target", "prod", *flags)
    first, second = FIXTURES.users[0].handle, FIXTURES.users[1].handle
    created = prod.run("ddb.create-group", "--from", first, "--to", second, "--text", "hello from prod",
                       "--target", "prod")
    group = re.search(r"group ([0-9a-f-]{36})", created.stderr).group(1)
    prod.run("ddb.create-message", "--group", group, "--handle", second, "--text", "a reply", "--target", "prod")

    conversation = prod.run("ddb.get-conversation", "--group", group, "--target", "prod").stdout
    assert conversation.index("hello from prod") < conversation.index("a reply")
    assert second in prod.run("ddb.list-conversations", "--handle", first, "--target", "prod").stdout
    assert prod.table in prod.run("ddb.list-tables", "--target", "prod").stdout
    items = json.loads(prod.run("ddb.scan", "--json", "--target", "prod").stdout)
    assert sorted(item["pk"][:4] for item in items) == ["GRP#", "GRP#", "MSG#", "MSG#"]
    users = json.loads(prod.run("cognito.list-users", "--json", "--target", "prod").stdout)
    assert users["pool_id"] == prod.pool_id and len(users["users"]) == len(FIXTURES.users)


# --- refusals -----------------------------------------------------------------------------------------


def test_seeding_the_demo_fixtures_into_prod_is_refused_without_yes_naming_what_it_would_write(prod: Prod) -> None:
    """Without credentials: a refusal that came after an AWS call would exit 2, not 3."""
    prod.run("db.create", "--target", "prod")
    prod.run("db.schema-load", "--target", "prod", "--yes")
    before = _database_state(prod)
    users, activities = len(FIXTURES.users), len(FIXTURES.activities)
    messages = sum(len(c.messages) for c in FIXTURES.conversations)
    conversations = len(FIXTURES.conversations)
    cases = {
        "db.seed": f"this would write the demo fixtures into database {prod.database.database_name}: "
                   f"{users} users and {activities} activities",
        "db.setup": f"{users} users and {activities} activities",
        "ddb.seed": f"this would write the demo conversations of seeds/ ({conversations} conversations: {messages} "
                    f"message items and {2 * conversations} group items) into the DynamoDB table {prod.table}",
    }
    for task, message in cases.items():
        result = prod.run(task, "--target", "prod", check=False, AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="")
        assert result.returncode == 3, result.stderr
        assert message in result.stderr and "Re-run with --yes to confirm." in result.stderr
    assert _database_state(prod) == before


def test_deploying_the_stream_worker_is_refused_without_yes_before_any_aws_call_and_locally(prod: Prod) -> None:
    """Without credentials: a refusal that came after an AWS call would exit 2, not 3."""
    result = prod.run("ddb.deploy-stream-worker", "--target", "prod", check=False,
                      AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="")
    assert result.returncode == 3, result.stderr
    assert (f"this would create or update the Lambda {prod.function}, its role {prod.function}-role and policy, "
            f"and its trigger on the stream of {prod.table} (see the plan with --dry-run)") in result.stderr
    local = prod.run("ddb.deploy-stream-worker", "--yes", check=False)
    assert local.returncode == 3 and "is prod-only and never runs against the local target" in local.stderr


# --- the stream Lambda's deployment -----------------------------------------------------------------


def test_deploy_creates_the_parts_then_updates_only_what_changed(prod: Prod, tmp_path: Path) -> None:
    prod.run("ddb.schema-load", "--target", "prod")
    plan = prod.run("ddb.deploy-stream-worker", "--target", "prod", "--dry-run")
    rows = [[cell.strip() for cell in line.split("│")] for line in plan.stdout.splitlines() if "│" in line]
    assert [row[:2] for row in rows if row[0] != "part"] == [
        ["role", "create"], ["policy", "create"], ["function", "create"], ["trigger", "create"]]
    assert f"ddb.deploy-stream-worker: would run {prod.function}" in plan.stderr
    assert not any(f["FunctionName"] == prod.function for f in prod.client("lambda").list_functions()["Functions"])

    prod.run("ddb.deploy-stream-worker", "--target", "prod", "--yes")
    state = _aws_state(prod)
    assert json.loads(json.dumps(state["role"]["AssumeRolePolicyDocument"]))["Statement"] == [
        {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]
    table_arn = state["table"]["TableArn"]
    assert {s["Sid"]: s["Resource"] for s in state["policy"]["Statement"]}["ReplaceTheGroupItems"] == table_arn
    function = state["function"]
    assert (function["Handler"], function["Runtime"], function["Role"], function["Environment"]) == (
        "bootstrap.messaging.lambda_handler", "python3.12", state["role"]["Arn"],
        {"Variables": {"TABLE_NAME": prod.table}})
    [mapping] = state["mappings"]
    assert (mapping["EventSourceArn"], mapping["BatchSize"], mapping["StartingPosition"], mapping["State"]) == (
        state["table"]["LatestStreamArn"], 100, "LATEST", "Enabled")

    resized = prod.run("ddb.deploy-stream-worker", "--target", "prod", "--yes", "--batch-size", "10")
    assert f"ddb.deploy-stream-worker: updated {prod.function}: update trigger" in resized.stderr
    after_resize = _aws_state(prod)
    assert after_resize["mappings"][0]["BatchSize"] == 10
    assert (after_resize["function"], after_resize["policy"]) == (state["function"], state["policy"])

    project = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT, project, ignore=shutil.ignore_patterns(".venv", ".git", ".cruddur", "__pycache__",
                                                                         ".pytest_cache"))
    with open(project / "bootstrap" / "messaging.py", "a") as handler:
        handler.write("\n# a changed handler\n")
    changed = prod.run("ddb.deploy-stream-worker", "--target", "prod", "--yes", "--batch-size", "10", cwd=project)
    assert f"ddb.deploy-stream-worker: updated {prod.function}: update code" in changed.stderr
    after_code = _aws_state(prod)
    assert after_code["function"]["CodeSha256"] != state["function"]["CodeSha256"]
    assert {k: v for k, v in after_code["function"].items() if k not in ("CodeSha256", "CodeSize", "LastModified",
                                                                          "RevisionId", "Version")} == {
        k: v for k, v in state["function"].items() if k not in ("CodeSha256", "CodeSize", "LastModified",
                                                                  "RevisionId", "Version")}
    assert after_code["mappings"] == after_resize["mappings"]


# --- the region: boto3's own chain, never a silent us-east-1 ------------------------------------------


def _named_profile(prod: Prod, config: Path, text: str, **env: str) -> None:
    """Point the tasks at an AWS config file of ``text`` and nothing else for the region (no region variables)."""
    config.write_text(text)
    prod.env = {**{k: v for k, v in prod.env.items() if k not in ("AWS_REGION", "AWS_DEFAULT_REGION")},
                "AWS_CONFIG_FILE": str(config), **env}


def _lands(prod: Prod, region: str) -> dict[str, bool]:
    """Which of this test's parts the stand-in holds in ``region``."""
    import boto3

    def client(service: str) -> Any:
        return boto3.client(service, endpoint_url=prod.aws_url, region_name=region,
                            aws_access_key_id=STANDIN_KEY_ID, aws_secret_access_key="stand-in-secret")

    functions = client("lambda")
    return {"table": prod.table in client("dynamodb").list_tables()["TableNames"],
            "function": any(f["FunctionName"] == prod.function for f in functions.list_functions()["Functions"]),
            "trigger": bool(functions.list_event_source_mappings()["EventSourceMappings"]
                            and any(m["FunctionArn"].endswith(f":{prod.function}")
                                    for m in functions.list_event_source_mappings()["EventSourceMappings"]))}


def test_a_named_profiles_region_is_where_the_table_function_and_trigger_land_and_nowhere_else(
    prod: Prod, tmp_path: Path
) -> None:
    config = tmp_path / "aws-config-profile"
    _named_profile(prod, config, f"[profile cruddur-prod]\nregion = ca-central-1\nendpoint_url = {prod.aws_url}\n",
                   AWS_PROFILE="cruddur-prod")
    for task in ("ddb.schema-load", "ddb.deploy-stream-worker"):
        result = prod.run(task, "--target", "prod", "--yes")
        assert result.stderr.splitlines()[0] == f"prod: AWS region ca-central-1 (from profile cruddur-prod in {config})"
    assert _lands(prod, "ca-central-1") == {"table": True, "function": True, "trigger": True}
    for elsewhere in ("us-east-1", REGION):
        assert _lands(prod, elsewhere) == {"table": False, "function": False, "trigger": False}, elsewhere

    explained = prod.run("env", "--explain", "--target", "prod")
    assert explained.stderr.splitlines()[0] == f"prod: AWS region ca-central-1 (from profile cruddur-prod in {config})"
    assert re.search(r"region +│ ca-central-1 +│ profile cruddur-prod", explained.stdout), explained.stdout


def test_with_no_region_anywhere_a_prod_task_refuses_saying_region_and_creates_nothing(
    prod: Prod, tmp_path: Path
) -> None:
    _named_profile(prod, tmp_path / "aws-config-no-region", f"[default]\nendpoint_url = {prod.aws_url}\n")
    for task in ("ddb.schema-load", "ddb.deploy-stream-worker"):
        result = prod.run(task, "--target", "prod", "--yes", check=False)
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        assert result.stderr.startswith("error: the prod target needs an AWS region, and none is set"), result.stderr
    for region in ("us-east-1", REGION):
        assert _lands(prod, region) == {"table": False, "function": False, "trigger": False}, region
