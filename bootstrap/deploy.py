"""Deploy pattern E's stream Lambda on prod: package the handler, plan, then apply only what differs.

Four parts make the deployment: the execution role (trusted by Lambda), its
inline policy (least privilege: read the table's stream, query the group
index, replace group items, write its own logs), the function, and the event
source mapping from the table's latest stream. ``observe`` reads them;
``plan_deployment`` (pure) compares them with the spec and returns one
``Change`` per part that differs, in the order they must be applied;
``apply`` performs them. A rerun with nothing changed plans nothing.

The zip holds ``bootstrap/messaging.py`` (whose ``lambda_handler`` is the
handler) and the project modules it imports at the top level of its module
body, found by reading their import statements, not by importing them; imports
inside functions are not followed (the handler's path needs none of ours).
boto3/botocore are not packed: the Lambda Python runtime provides them. The
zip's bytes depend only on the sources (fixed timestamps and modes), so an
unchanged handler keeps its CodeSha256 and is not uploaded again.

Assumes the table exists with its stream (``ddb.schema-load``); the account
and partition come from the table's ARN, so no STS call is needed. A trigger's
starting position applies when it is created and cannot change afterwards.
"""

from __future__ import annotations

import ast
import base64
import hashlib
import io
import json
import logging
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

from .config import Endpoints, Settings
from .ddb.table import INDEX_NAME
from .errors import DriftError, aws_errors
from .steps import Action, StepResult

log = logging.getLogger(__name__)

HANDLER_MODULE = "bootstrap.messaging"
HANDLER = f"{HANDLER_MODULE}.lambda_handler"
RUNTIME = "python3.12"
TIMEOUT_SECONDS = 30
MEMORY_MB = 256
# The earliest time a zip entry can carry: any fixed value makes the bytes reproducible.
ZIP_TIMESTAMP = (1980, 1, 1, 0, 0, 0)
LAMBDA_PRINCIPAL = "lambda.amazonaws.com"
# A role created a moment ago may not yet be assumable by Lambda (IAM is eventually consistent).
ROLE_PROPAGATION_ATTEMPTS = 10
ROLE_PROPAGATION_WAIT = 3.0
STEP = "ddb.deploy-stream-worker"


# --- the package -----------------------------------------------------------------------


@dataclass(frozen=True)
class Package:
    """The function's zip: its entries (sorted) and its bytes."""

    files: tuple[str, ...]
    data: bytes

    @property
    def sha256(self) -> str:
        """The digest in Lambda's own form (``CodeSha256``: base64 of the SHA-256)."""
        return base64.b64encode(hashlib.sha256(self.data).digest()).decode()


def module_closure(source_root: Path, module: str) -> list[str]:
    """``module``, its parent packages, and every module of its package it imports at top level, transitively."""
    package = module.split(".")[0]
    found: set[str] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        if name in found:
            continue
        found.add(name)
        parts = name.split(".")
        pending.extend(".".join(parts[:end]) for end in range(1, len(parts)))
        path = module_path(source_root, name)
        for imported in top_level_imports(path.read_text(), name, path.name == "__init__.py"):
            if imported.split(".")[0] == package:
                pending.append(_existing_module(source_root, imported))
    return sorted(found)


def module_path(source_root: Path, module: str) -> Path:
    base = source_root.joinpath(*module.split("."))
    return base / "__init__.py" if base.is_dir() else base.with_suffix(".py")


def _existing_module(source_root: Path, name: str) -> str:
    """``from pkg import name`` names a module or an attribute of ``pkg``: the module when there is one."""
    path = module_path(source_root, name)
    return name if path.exists() else name.rpartition(".")[0]


def top_level_imports(source: str, module: str, is_package: bool) -> Iterator[str]:
    """The absolute names imported by the statements at the top level of ``source`` (``module``'s text).

    For ``from X import a, b`` both ``X.a`` and ``X.b`` are yielded; the caller
    keeps those that are modules.
    """
    own_package = module if is_package else module.rpartition(".")[0]
    for statement in ast.parse(source).body:
        if isinstance(statement, ast.Import):
            yield from (alias.name for alias in statement.names)
        elif isinstance(statement, ast.ImportFrom):
            base = statement.module or ""
            if statement.level:
                anchor = own_package.split(".")
                anchor = anchor[: len(anchor) - (statement.level - 1)]
                base = ".".join(part for part in (*anchor, base) if part)
            yield from (f"{base}.{alias.name}" for alias in statement.names)


def build_package(source_root: Path, module: str = HANDLER_MODULE) -> Package:
    """The zip of ``module`` and what it imports, byte for byte the same for the same sources."""
    names = module_closure(source_root, module)
    buffer = io.BytesIO()
    files = []
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in names:
            path = module_path(source_root, name)
            entry = path.relative_to(source_root).as_posix()
            info = zipfile.ZipInfo(entry, date_time=ZIP_TIMESTAMP)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16  # readable by the runtime's user, whatever the checkout's modes
            archive.writestr(info, path.read_bytes())
            files.append(entry)
    return Package(tuple(sorted(files)), buffer.getvalue())


# --- the spec and the policies (pure) --------------------------------------------------


@dataclass(frozen=True)
class WorkerSpec:
    """What the deployment should be, from the settings."""

    function_name: str
    table_name: str
    batch_size: int
    starting_position: str
    runtime: str = RUNTIME
    handler: str = HANDLER
    timeout: int = TIMEOUT_SECONDS
    memory: int = MEMORY_MB

    @property
    def role_name(self) -> str:
        return f"{self.function_name}-role"

    @property
    def policy_name(self) -> str:
        return f"{self.function_name}-policy"

    def configuration(self, role_arn: str) -> dict[str, Any]:
        """The function's settings as CreateFunction and UpdateFunctionConfiguration take them."""
        return {"Runtime": self.runtime, "Handler": self.handler, "Role": role_arn, "Timeout": self.timeout,
                "MemorySize": self.memory, "Environment": {"Variables": {"TABLE_NAME": self.table_name}}}


def worker_spec(settings: Settings) -> WorkerSpec:
    return WorkerSpec(settings.stream_function_name, settings.table_name, settings.stream_batch_size,
                      settings.stream_starting_position)


def trust_policy() -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"Service": LAMBDA_PRINCIPAL}, "Action": "sts:AssumeRole"}]}


def execution_policy(spec: WorkerSpec, table_arn: str) -> dict[str, Any]:
    """Exactly what the trigger and the handler do, on this table and this function's logs only."""
    partition, _, region, account = table_arn.split(":")[1:5]
    log_group = f"arn:{partition}:logs:{region}:{account}:log-group:/aws/lambda/{spec.function_name}"
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "ReadTheTableStream", "Effect": "Allow",
         "Action": ["dynamodb:DescribeStream", "dynamodb:GetRecords", "dynamodb:GetShardIterator",
                    "dynamodb:ListStreams"],
         "Resource": f"{table_arn}/stream/*"},
        {"Sid": "FindTheGroupItems", "Effect": "Allow", "Action": ["dynamodb:Query"],
         "Resource": f"{table_arn}/index/{INDEX_NAME}"},
        {"Sid": "ReplaceTheGroupItems", "Effect": "Allow", "Action": ["dynamodb:DeleteItem", "dynamodb:PutItem"],
         "Resource": table_arn},
        {"Sid": "WriteItsLogs", "Effect": "Allow",
         "Action": ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"],
         "Resource": [log_group, f"{log_group}:*"]},
    ]}


def role_arn(spec: WorkerSpec, table_arn: str) -> str:
    """The role's ARN, known before it exists: roles are created without a path."""
    partition, account = table_arn.split(":")[1], table_arn.split(":")[4]
    return f"arn:{partition}:iam::{account}:role/{spec.role_name}"


def canonical(document: Any) -> Any:
    """A policy document in a form where IAM's equivalent spellings compare equal (``"a"`` and ``["a"]``)."""
    if isinstance(document, Mapping):
        return {key: canonical(value) for key, value in sorted(document.items())}
    if isinstance(document, (list, tuple)):
        items = [canonical(item) for item in document]
        if len(items) == 1:
            return items[0]
        return sorted(items, key=lambda item: json.dumps(item, sort_keys=True))
    return document


# --- the plan (pure) ---------------------------------------------------------------------


@dataclass(frozen=True)
class Observed:
    """The deployment's parts as AWS holds them; None where a part is missing."""

    table_arn: str
    stream_arn: str | None
    trust: Mapping[str, Any] | None  # the role's trust policy; None: no role
    policy: Mapping[str, Any] | None
    function: Mapping[str, Any] | None  # GetFunctionConfiguration
    mappings: Sequence[Mapping[str, Any]] = ()  # the function's event source mappings


@dataclass(frozen=True)
class Change:
    part: str  # role, policy, function, code, configuration, trigger
    verb: str  # create, update, delete
    detail: str
    mapping_uuid: str | None = None


def plan_deployment(spec: WorkerSpec, package: Package, observed: Observed) -> list[Change]:
    """The changes that make AWS match the spec, in the order they must be applied; [] when it does."""
    if not observed.stream_arn:
        raise DriftError(f"table {spec.table_name} has no stream; repair it first with "
                         "`invoke ddb.schema-load --target prod`")
    changes = []
    if observed.trust is None:
        changes.append(Change("role", "create", f"{spec.role_name}, assumable by {LAMBDA_PRINCIPAL}"))
    elif canonical(observed.trust) != canonical(trust_policy()):
        changes.append(Change("role", "update", f"{spec.role_name}: trust only {LAMBDA_PRINCIPAL}"))
    policy = execution_policy(spec, observed.table_arn)
    if observed.policy is None or canonical(observed.policy) != canonical(policy):
        verb = "create" if observed.policy is None else "update"
        changes.append(Change("policy", verb, f"{spec.policy_name}: stream read, index query, "
                                              f"group item writes on {spec.table_name}, its logs"))
    changes.extend(_function_changes(spec, package, observed))
    changes.extend(_trigger_changes(spec, observed))
    return changes


def _function_changes(spec: WorkerSpec, package: Package, observed: Observed) -> list[Change]:
    wanted = spec.configuration(role_arn(spec, observed.table_arn))
    current = observed.function
    if current is None:
        return [Change("function", "create", f"{spec.function_name} ({spec.runtime}, {spec.handler}, "
                                             f"{len(package.files)} files, {len(package.data)} bytes)")]
    changes = []
    if current.get("CodeSha256") != package.sha256:
        changes.append(Change("code", "update", f"{spec.function_name}: {len(package.files)} files, "
                                                f"sha256 {package.sha256[:12]}…"))
    differing = sorted(key for key, value in wanted.items() if _current_setting(current, key) != value)
    if differing:
        changes.append(Change("configuration", "update", f"{spec.function_name}: {', '.join(differing)}"))
    return changes


def _current_setting(function: Mapping[str, Any], key: str) -> Any:
    if key == "Environment":
        return {"Variables": dict(function.get("Environment", {}).get("Variables", {}))}
    return function.get(key)


def _trigger_changes(spec: WorkerSpec, observed: Observed) -> list[Change]:
    """Triggers from older streams of this table (it was recreated) go; one from the latest stream stays."""
    stream_prefix = f"{observed.table_arn}/stream/"
    ours = [m for m in observed.mappings if str(m.get("EventSourceArn", "")).startswith(stream_prefix)]
    current = [m for m in ours if m["EventSourceArn"] == observed.stream_arn]
    changes = [Change("trigger", "delete", f"from the old stream {m['EventSourceArn'].removeprefix(stream_prefix)}",
                      m["UUID"]) for m in ours if m["EventSourceArn"] != observed.stream_arn]
    changes.extend(Change("trigger", "delete", "a duplicate from the latest stream", m["UUID"]) for m in current[1:])
    if not current:
        changes.append(Change("trigger", "create", f"from the stream of {spec.table_name}: batch size "
                                                   f"{spec.batch_size}, starting at {spec.starting_position}"))
    elif current[0].get("BatchSize") != spec.batch_size or current[0].get("State") in ("Disabled", "Disabling"):
        changes.append(Change("trigger", "update", f"batch size {current[0].get('BatchSize')} → {spec.batch_size}, "
                                                   "enabled", current[0]["UUID"]))
    return changes


# --- doing ---------------------------------------------------------------------------------


def observe(endpoints: Endpoints, spec: WorkerSpec) -> Observed:
    """Read the table and the deployment's parts; missing parts are None."""
    iam, functions = endpoints.client("iam"), endpoints.client("lambda")
    with aws_errors(f"reading the table {spec.table_name}",
                    not_found_hint="create it first with `invoke ddb.schema-load --target prod`"):
        table = endpoints.client("dynamodb").describe_table(TableName=spec.table_name)["Table"]
    stream_on = table.get("StreamSpecification", {}).get("StreamEnabled", False)
    with aws_errors(f"reading the stream Lambda {spec.function_name}, its role and its trigger"):
        trust = _missing_as_none(lambda: iam.get_role(RoleName=spec.role_name)["Role"]["AssumeRolePolicyDocument"])
        policy = None if trust is None else _missing_as_none(lambda: iam.get_role_policy(
            RoleName=spec.role_name, PolicyName=spec.policy_name)["PolicyDocument"])
        function = _missing_as_none(lambda: functions.get_function_configuration(FunctionName=spec.function_name))
        mappings = [] if function is None else [
            mapping for page in functions.get_paginator("list_event_source_mappings").paginate(
                FunctionName=spec.function_name) for mapping in page["EventSourceMappings"]]
    # botocore hands IAM's URL-encoded policy documents over already decoded into dicts.
    return Observed(table["TableArn"], table.get("LatestStreamArn") if stream_on else None,
                    trust, policy, function, mappings)


def _missing_as_none(read: Any) -> Any:
    from botocore.exceptions import ClientError

    try:
        return read()
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") in ("NoSuchEntity", "ResourceNotFoundException"):
            return None
        raise


def apply(endpoints: Endpoints, spec: WorkerSpec, package: Package, observed: Observed,
          changes: Sequence[Change]) -> None:
    """Perform ``changes`` in order, waiting for the function to settle after each change to it."""
    iam, functions = endpoints.client("iam"), endpoints.client("lambda")
    arn = role_arn(spec, observed.table_arn)
    for change in changes:
        log.debug("%s: %s %s", change.part, change.verb, change.detail)
        with aws_errors(f"{change.verb} {change.part} of the stream Lambda {spec.function_name}"):
            if change.part == "role" and change.verb == "create":
                iam.create_role(RoleName=spec.role_name, AssumeRolePolicyDocument=json.dumps(trust_policy()),
                                Description=f"Execution role of {spec.function_name} (pattern E)")
            elif change.part == "role":
                iam.update_assume_role_policy(RoleName=spec.role_name, PolicyDocument=json.dumps(trust_policy()))
            elif change.part == "policy":
                iam.put_role_policy(RoleName=spec.role_name, PolicyName=spec.policy_name,
                                    PolicyDocument=json.dumps(execution_policy(spec, observed.table_arn)))
            elif change.part == "function":
                _create_function(functions, spec, package, arn)
            elif change.part == "code":
                functions.update_function_code(FunctionName=spec.function_name, ZipFile=package.data)
                _wait(functions, "function_updated_v2", spec)
            elif change.part == "configuration":
                functions.update_function_configuration(FunctionName=spec.function_name, **spec.configuration(arn))
                _wait(functions, "function_updated_v2", spec)
            elif change.verb == "delete":
                functions.delete_event_source_mapping(UUID=change.mapping_uuid)
            elif change.verb == "update":
                functions.update_event_source_mapping(UUID=change.mapping_uuid, BatchSize=spec.batch_size,
                                                      Enabled=True)
            else:
                _once_role_propagated(lambda: functions.create_event_source_mapping(
                    EventSourceArn=observed.stream_arn, FunctionName=spec.function_name,
                    BatchSize=spec.batch_size, StartingPosition=spec.starting_position, Enabled=True))


def _create_function(functions: Any, spec: WorkerSpec, package: Package, arn: str) -> None:
    _once_role_propagated(lambda: functions.create_function(
        FunctionName=spec.function_name, Code={"ZipFile": package.data},
        Description="Cruddur pattern E: moves message groups to their newest message", **spec.configuration(arn)))
    _wait(functions, "function_active_v2", spec)


def _once_role_propagated(call: Callable[[], Any]) -> Any:
    """``call``, retried while Lambda says the role (or its new policy) cannot be used yet.

    IAM is eventually consistent: right after a role or its policy is written,
    CreateFunction and CreateEventSourceMapping may be refused with an
    InvalidParameterValueException naming the role, for some seconds.
    """
    from botocore.exceptions import ClientError
    from tenacity import Retrying, retry_if_exception, stop_after_attempt, wait_fixed

    def role_not_ready(exc: BaseException) -> bool:
        return (isinstance(exc, ClientError) and exc.response.get("Error", {}).get("Code")
                == "InvalidParameterValueException" and "role" in str(exc).lower())

    retrying = Retrying(retry=retry_if_exception(role_not_ready), stop=stop_after_attempt(ROLE_PROPAGATION_ATTEMPTS),
                        wait=wait_fixed(ROLE_PROPAGATION_WAIT), reraise=True)
    return retrying(call)


def _wait(functions: Any, waiter: str, spec: WorkerSpec) -> None:
    """Lambda refuses a change while the previous one is in progress: wait until it is done."""
    functions.get_waiter(waiter).wait(FunctionName=spec.function_name)


@dataclass(frozen=True)
class Deployment:
    """What ``deploy`` planned, whether it was applied, and the step line that sums it up."""

    spec: WorkerSpec
    package: Package
    changes: tuple[Change, ...]
    applied: bool

    def step_result(self) -> StepResult:
        if not self.changes:
            return StepResult(STEP, Action.UNCHANGED, f"{self.spec.function_name} and its trigger match")
        summary = ", ".join(f"{c.verb} {c.part}" for c in self.changes)
        if not self.applied:
            return StepResult(STEP, Action.WOULD_RUN, f"{self.spec.function_name}: {summary}")
        action = Action.CREATED if any(c.part == "function" for c in self.changes) else Action.UPDATED
        return StepResult(STEP, action, f"{self.spec.function_name}: {summary}", writes=len(self.changes))

    def rows(self) -> list[list[str]]:
        return [[c.part, c.verb, c.detail] for c in self.changes]


def deploy(endpoints: Endpoints, spec: WorkerSpec, source_root: Path, dry_run: bool = False) -> Deployment:
    """Package, observe, plan, and (unless ``dry_run``) apply."""
    package = build_package(source_root)
    observed = observe(endpoints, spec)
    changes = tuple(plan_deployment(spec, package, observed))
    if changes and not dry_run:
        apply(endpoints, spec, package, observed, changes)
    return Deployment(spec, package, changes, applied=not dry_run)
