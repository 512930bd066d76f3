"""The stream Lambda's package and plan (pure, plain values), and its zip's handler run on a recorded stream event."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from bootstrap import deploy
from bootstrap.deploy import Change, Observed, WorkerSpec
from bootstrap.errors import DriftError
from tests.conftest import Stack
from tests.helpers import PROJECT_ROOT

SPEC = WorkerSpec("cruddur-messaging-stream", "cruddur-messages", batch_size=100, starting_position="LATEST")
TABLE_ARN = "arn:aws:dynamodb:eu-west-1:111122223333:table/cruddur-messages"
STREAM_ARN = f"{TABLE_ARN}/stream/2026-11-30T00:00:00.000"
PACKAGE = deploy.build_package(PROJECT_ROOT)


def _deployed(**overrides: Any) -> Observed:
    """What AWS holds after a deployment of SPEC and PACKAGE; ``overrides`` change single parts."""
    function = {"CodeSha256": PACKAGE.sha256, **SPEC.configuration(deploy.role_arn(SPEC, TABLE_ARN))}
    mapping = {"UUID": "m-1", "EventSourceArn": STREAM_ARN, "BatchSize": 100, "State": "Enabled"}
    values = {"table_arn": TABLE_ARN, "stream_arn": STREAM_ARN, "trust": deploy.trust_policy(),
              "policy": deploy.execution_policy(SPEC, TABLE_ARN), "function": function, "mappings": (mapping,)}
    return Observed(**{**values, **overrides})


def _plan(observed: Observed, spec: WorkerSpec = SPEC, package: deploy.Package = PACKAGE) -> list[tuple[str, str]]:
    return [(change.part, change.verb) for change in deploy.plan_deployment(spec, package, observed)]


# --- the package ----------------------------------------------------------------------------


def test_the_zip_holds_the_handler_and_the_modules_it_imports_nothing_else() -> None:
    assert PACKAGE.files == ("bootstrap/__init__.py", "bootstrap/config.py", "bootstrap/ddb/__init__.py",
                             "bootstrap/ddb/table.py", "bootstrap/errors.py", "bootstrap/messaging.py",
                             "bootstrap/steps.py")


def test_the_zip_is_the_same_bytes_for_the_same_sources_and_changes_with_them(tmp_path: Path) -> None:
    copy = tmp_path / "project"
    shutil.copytree(PROJECT_ROOT / "bootstrap", copy / "bootstrap", ignore=shutil.ignore_patterns("__pycache__"))
    os.utime(copy / "bootstrap" / "messaging.py", (0, 0))
    assert deploy.build_package(copy).data == PACKAGE.data
    (copy / "bootstrap" / "ddb" / "seed.py").write_text("# not imported by the handler\n")
    assert deploy.build_package(copy).sha256 == PACKAGE.sha256
    with open(copy / "bootstrap" / "messaging.py", "a") as source:
        source.write("\n# a changed handler\n")
    assert deploy.build_package(copy).sha256 != PACKAGE.sha256


def test_only_top_level_imports_are_followed() -> None:
    source = (
        "from __future__ import annotations\n"
        "import json\n"
        "from . import steps\n"
        "from .config import Endpoints, mask_url\n"
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from .fixtures import Fixtures\n"
        "def later():\n"
        "    from . import postgres\n"
    )
    assert list(deploy.top_level_imports(source, "bootstrap.messaging", is_package=False)) == [
        "__future__.annotations", "json", "bootstrap.steps", "bootstrap.config.Endpoints",
        "bootstrap.config.mask_url", "typing.TYPE_CHECKING"]


# --- the plan ----------------------------------------------------------------------------------


def test_nothing_deployed_plans_every_part_in_order() -> None:
    nothing = Observed(TABLE_ARN, STREAM_ARN, trust=None, policy=None, function=None)
    assert _plan(nothing) == [("role", "create"), ("policy", "create"), ("function", "create"), ("trigger", "create")]


def test_a_deployment_that_matches_plans_nothing() -> None:
    assert _plan(_deployed()) == []


def test_iam_spellings_of_the_same_policy_count_as_the_same() -> None:
    """IAM may return ``"Action": "x"`` for ``["x"]`` and reorder lists; neither is a change."""
    trust = {"Version": "2012-10-17", "Statement": [{"Action": ["sts:AssumeRole"], "Effect": "Allow",
                                                     "Principal": {"Service": ["lambda.amazonaws.com"]}}]}
    policy = deploy.execution_policy(SPEC, TABLE_ARN)
    reordered = {**policy, "Statement": list(reversed(policy["Statement"]))}
    assert _plan(_deployed(trust=trust, policy=reordered)) == []


def test_a_changed_handler_updates_the_code_only() -> None:
    changed = deploy.Package(PACKAGE.files, PACKAGE.data + b"\0")
    assert _plan(_deployed(), package=changed) == [("code", "update")]


def test_a_changed_batch_size_updates_the_trigger_only() -> None:
    changes = deploy.plan_deployment(WorkerSpec(SPEC.function_name, SPEC.table_name, 10, "LATEST"), PACKAGE,
                                     _deployed())
    assert changes == [Change("trigger", "update", "batch size 100 → 10, enabled", "m-1")]


def test_a_starting_position_is_not_a_change_of_an_existing_trigger() -> None:
    """AWS fixes it when the trigger is created: planning an update for it could never converge."""
    assert _plan(_deployed(), spec=WorkerSpec(SPEC.function_name, SPEC.table_name, 100, "TRIM_HORIZON")) == []


def test_changed_settings_and_a_widened_policy_are_put_back() -> None:
    function = {**_deployed().function, "Timeout": 3, "Environment": {"Variables": {"TABLE_NAME": "other"}}}
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}]}
    changes = deploy.plan_deployment(SPEC, PACKAGE, _deployed(function=function, policy=policy))
    assert [(c.part, c.verb) for c in changes] == [("policy", "update"), ("configuration", "update")]
    assert changes[1].detail.endswith("Environment, Timeout")


def test_a_recreated_table_moves_the_trigger_to_its_new_stream() -> None:
    old = {"UUID": "m-old", "EventSourceArn": f"{TABLE_ARN}/stream/2025-01-01T00:00:00.000", "BatchSize": 100}
    unrelated = {"UUID": "m-sqs", "EventSourceArn": "arn:aws:sqs:eu-west-1:111122223333:queue"}
    changes = deploy.plan_deployment(SPEC, PACKAGE, _deployed(mappings=(old, unrelated)))
    assert [(c.part, c.verb, c.mapping_uuid) for c in changes] == [("trigger", "delete", "m-old"),
                                                                   ("trigger", "create", None)]


def test_a_table_without_a_stream_is_reported_not_deployed() -> None:
    with pytest.raises(DriftError, match="has no stream; repair it first with `invoke ddb.schema-load --target prod`"):
        deploy.plan_deployment(SPEC, PACKAGE, _deployed(stream_arn=None))


def test_the_policy_grants_what_the_trigger_and_the_handler_do_on_this_table_only() -> None:
    grants = {statement["Sid"]: (statement["Action"], statement["Resource"])
              for statement in deploy.execution_policy(SPEC, TABLE_ARN)["Statement"]}
    log_group = "arn:aws:logs:eu-west-1:111122223333:log-group:/aws/lambda/cruddur-messaging-stream"
    assert grants == {
        "ReadTheTableStream": (["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
                                "dynamodb:ListStreams"], f"{TABLE_ARN}/stream/*"),
        "FindTheGroupItems": (["dynamodb:Query"], f"{TABLE_ARN}/index/message-group-sk-index"),
        "ReplaceTheGroupItems": (["dynamodb:DeleteItem", "dynamodb:PutItem"], TABLE_ARN),
        "WriteItsLogs": (["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
                         [log_group, f"{log_group}:*"]),
    }
    assert deploy.role_arn(SPEC, TABLE_ARN) == "arn:aws:iam::111122223333:role/cruddur-messaging-stream-role"


# --- the zip's handler, run as the Lambda runtime would -----------------------------------------

# Imports the handler from the zip alone: -I keeps the project folder and PYTHON* variables off sys.path,
# so only the zip and the interpreter's installed packages (botocore, as in the Lambda runtime) are there.
_RUN_HANDLER = """
import json, sys
sys.path.insert(0, sys.argv[1])
import bootstrap.messaging as handler_module
assert handler_module.__file__.startswith(sys.argv[1]), handler_module.__file__
loaded = sorted(name for name in sys.modules if name.split(".")[0] == "bootstrap")
print(json.dumps({"loaded": loaded, "result": handler_module.lambda_handler(json.load(sys.stdin), None)}))
"""


def _recorded_insert(stack: Stack, table: str, message_uuid: str) -> dict[str, Any]:
    """The stream record of the message's INSERT, read from the table's real (moto) stream, as a Lambda event."""
    from bootstrap import streams

    arn = streams.latest_stream_arn(stack.endpoints, table)
    client = stack.endpoints.client("dynamodbstreams")
    records = []
    for shard in streams.list_shards(client, arn):
        iterator = client.get_shard_iterator(StreamArn=arn, ShardId=shard["ShardId"],
                                             ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records.extend(client.get_records(ShardIterator=iterator)["Records"])
    [record] = [r for r in records if r["eventName"] == "INSERT"
                and r["dynamodb"]["NewImage"].get("message_uuid", {}).get("S") == message_uuid]
    moment = record["dynamodb"]["ApproximateCreationDateTime"]
    record = {**record, "eventSourceARN": arn, "awsRegion": stack.endpoints.region,
              "dynamodb": {**record["dynamodb"], "ApproximateCreationDateTime":
                           moment.timestamp() if isinstance(moment, datetime) else moment}}
    return {"Records": [record]}


def test_the_zips_handler_runs_in_a_plain_python_on_a_recorded_stream_event(
    stack: Stack, table_name: str, tmp_path: Path
) -> None:
    from bootstrap.config import LOCAL_AWS_ACCESS_KEY_ID, LOCAL_AWS_SECRET_ACCESS_KEY
    from bootstrap.ddb.schema import schema_load
    from bootstrap.ddb.table import TableSpec, UserRef
    from bootstrap.messaging import Messages

    schema_load(stack.endpoints, TableSpec(table_name))
    messages = Messages(stack.endpoints.client("dynamodb"), table_name)
    alice = UserRef("9f0a8d41-0d8b-4a8e-9d35-1c1f2a7c3b01", "alice", "Alice")
    bob = UserRef("9f0a8d41-0d8b-4a8e-9d35-1c1f2a7c3b02", "bob", "Bob")
    group_uuid, _ = messages.create_message_group(alice, bob, "first")
    reply = messages.create_message(group_uuid, bob, "the newest message")
    event = _recorded_insert(stack, table_name, reply["message_uuid"])
    archive = tmp_path / "function.zip"
    archive.write_bytes(PACKAGE.data)

    env = {"PATH": os.environ.get("PATH", ""), "TABLE_NAME": table_name, "AWS_REGION": stack.endpoints.region,
           "AWS_ENDPOINT_URL": stack.endpoints.aws_endpoint_url, "AWS_ACCESS_KEY_ID": LOCAL_AWS_ACCESS_KEY_ID,
           "AWS_SECRET_ACCESS_KEY": LOCAL_AWS_SECRET_ACCESS_KEY}
    result = subprocess.run([sys.executable, "-I", "-c", _RUN_HANDLER, str(archive)], input=json.dumps(event),
                            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    output = json.loads(result.stdout)
    assert output["result"] == {"applied": 1, "skipped": 0}
    assert output["loaded"] == ["bootstrap", "bootstrap.config", "bootstrap.ddb", "bootstrap.ddb.table",
                                "bootstrap.errors", "bootstrap.messaging", "bootstrap.steps"]
    groups = messages.group_items(group_uuid)
    assert [(g["sk"], g["message"]) for g in groups] == [(reply["sk"], "the newest message")] * 2
