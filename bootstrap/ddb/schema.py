"""Tables on the service: load (create or repair) the messages table, drop, list and describe tables.

``schema_load`` reads the table's description, asks ``bootstrap.ddb.plan`` what
to do and does it, waiting after each call until the table and its indexes are
ACTIVE again. Every wait is one tenacity ``Retrying`` on DescribeTable
(``_wait_until``), bounded by ``TABLE_WAIT_SECONDS``; a state's
load waits for the tables it creates with ``wait_until_active`` too.
Assumes the low-level boto3 client from ``Endpoints.client``; tenacity is
imported inside functions.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from ..config import Endpoints
from ..console import say
from ..errors import DriftError, ServiceError, aws_errors
from ..steps import DDB_SCHEMA_LOAD, Action, StepResult
from .plan import Change, TableAction, TablePlan, plan_table, update_arguments
from .table import TableSpec

log = logging.getLogger(__name__)

# Long enough for a GSI backfill on real AWS; moto is immediate.
TABLE_WAIT_SECONDS = 900.0


def schema_load(endpoints: Endpoints, spec: TableSpec, recreate: bool = False) -> StepResult:
    """Create the table, or bring it in line with ``spec``; DriftError when that needs ``recreate``."""
    client = endpoints.client("dynamodb")
    with aws_errors(f"loading the schema of table {spec.name}"):
        plan = plan_table(spec, _settled_description(client, spec.name), recreate)
        if plan.blocked:
            listed = "\n".join(f"  - {difference}" + ("" if difference.repairs else " (cannot change in place)")
                               for difference in plan.differences)
            raise DriftError(
                f"table {spec.name} differs from the spec and DynamoDB cannot change all of it in place:\n{listed}\n"
                "Re-run with --recreate to drop and recreate it (this deletes every item in it)."
            )
        for difference in plan.differences:
            say(f"  {spec.name}: {difference}")
        for action in plan.actions:
            log.debug("table %s: %s", spec.name, action)
            _apply(client, spec, action)
    return _schema_result(spec, plan)


def _schema_result(spec: TableSpec, plan: TablePlan) -> StepResult:
    step = DDB_SCHEMA_LOAD
    if not plan.actions:
        return StepResult(step, Action.UNCHANGED, f"table {spec.name} matches the spec")
    if plan.differences and plan.actions[0].change is Change.DELETE_TABLE:
        return StepResult(step, Action.CREATED, f"table {spec.name} (dropped and recreated: {plan.describe()})",
                          writes=2)
    if plan.actions[0].change is Change.CREATE_TABLE:
        stream = f"stream {spec.stream_view_type}"
        return StepResult(step, Action.CREATED, f"table {spec.name} ({spec.billing_mode}, {stream})", writes=1)
    done = ", ".join(str(action) for action in plan.actions)
    return StepResult(step, Action.UPDATED, f"table {spec.name}: {done}", writes=len(plan.actions))


def _apply(client: Any, spec: TableSpec, action: TableAction) -> None:
    if action.change is Change.DELETE_TABLE:
        _delete_and_wait(client, spec.name)
    elif action.change is Change.CREATE_TABLE:
        client.create_table(**spec.create_arguments())
        _wait_until(client, spec.name, _is_settled_table, "ACTIVE")
    else:
        client.update_table(**update_arguments(spec, action))
        wait_until_active(client, spec.name)


def wait_until_active(client: Any, name: str) -> dict[str, Any]:
    """Wait until the table ``name`` (just created by the caller) and its indexes are ACTIVE; its description."""
    return _wait_until(client, name, _is_settled_table, "ACTIVE with every index ACTIVE")


def describe_table(endpoints: Endpoints, name: str) -> dict[str, Any] | None:
    """DescribeTable's "Table", or None when there is no such table."""
    with aws_errors(f"describing table {name}"):
        return describe(endpoints.client("dynamodb"), name)


def describe(client: Any, name: str) -> dict[str, Any] | None:
    """``describe_table`` on a client the caller already holds (inside its own ``aws_errors``)."""
    try:
        return client.describe_table(TableName=name)["Table"]
    except client.exceptions.ResourceNotFoundException:
        return None


def _is_settled_table(description: Mapping[str, Any] | None) -> bool:
    if description is None:
        return False
    indexes = description.get("GlobalSecondaryIndexes") or []
    return description.get("TableStatus") == "ACTIVE" and all(i.get("IndexStatus") == "ACTIVE" for i in indexes)


def _settled_description(client: Any, name: str) -> dict[str, Any] | None:
    """The table's description once no create, update or delete is in progress; None if there is no table."""
    description = describe(client, name)
    if description is None or _is_settled_table(description):
        return description
    if description.get("TableStatus") == "DELETING":
        _wait_until(client, name, lambda d: d is None, "deleted")
        return None
    return wait_until_active(client, name)


def _wait_until(client: Any, name: str, done: Callable[[dict[str, Any] | None], bool], what: str) -> Any:
    from tenacity import RetryError, Retrying, retry_if_result, stop_after_delay, wait_exponential

    retrying = Retrying(stop=stop_after_delay(TABLE_WAIT_SECONDS), wait=wait_exponential(multiplier=0.1, max=5),
                        retry=retry_if_result(lambda description: not done(description)))
    try:
        return retrying(describe, client, name)
    except RetryError as exc:
        last = exc.last_attempt.result()
        status = last.get("TableStatus") if last else "missing"
        raise ServiceError(f"table {name} was not {what} after {TABLE_WAIT_SECONDS:.0f}s (last status: {status})") \
            from None


def _delete_and_wait(client: Any, name: str) -> None:
    try:
        client.delete_table(TableName=name)
    except client.exceptions.ResourceNotFoundException:
        return
    _wait_until(client, name, lambda description: description is None, "deleted")


def drop_table(endpoints: Endpoints, name: str) -> StepResult:
    """Delete the table ``name`` and wait until it is gone; a missing table is not an error."""
    client = endpoints.client("dynamodb")
    with aws_errors(f"dropping table {name}"):
        if _settled_description(client, name) is None:
            return StepResult("ddb.drop", Action.UNCHANGED, f"table {name} does not exist")
        _delete_and_wait(client, name)
    return StepResult("ddb.drop", Action.REMOVED, f"table {name}", writes=1)


@dataclass(frozen=True)
class TableSummary:
    name: str
    status: str
    item_count: int  # DescribeTable's count: exact on moto, refreshed about every six hours on AWS


def list_tables(endpoints: Endpoints) -> list[TableSummary]:
    client = endpoints.client("dynamodb")
    summaries = []
    with aws_errors("listing tables"):
        for page in client.get_paginator("list_tables").paginate():
            for name in page["TableNames"]:
                description = describe(client, name)
                if description is not None:
                    summaries.append(TableSummary(name, description["TableStatus"], description.get("ItemCount", 0)))
    return summaries
