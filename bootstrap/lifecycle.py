"""Bringing the local environment up and down, and describing it (status, env)."""

from __future__ import annotations

import contextlib
import shlex
import shutil
from pathlib import Path
from typing import Callable, Iterator

from .backends import endpoints_for, local_endpoints, select_backend, start_all, status_of, stop_all
from .config import LOCAL_AWS_ACCESS_KEY_ID, LOCAL_AWS_SECRET_ACCESS_KEY, Endpoints, Settings
from .console import print_json, print_line, print_table, say
from .errors import BootstrapError, ConfigError, NotReadyError, os_errors
from .guard import require_local
from .readiness import Deadline, wait_all
from .services.base import Backend, Service
from .state import StateDir, write_atomic
from .states.keeper import Kept, kept_folder


def start_services(settings: Settings, on_ready: Callable[[tuple[str, ...], Endpoints], None] | None = None
                   ) -> tuple[Backend, Endpoints, list[str]]:
    """Start (or reuse) the local services, each until it is ready; also say which were started.

    Each service waits for itself under one deadline of ``ready_timeout``; a fresh moto server puts back
    what the last ``down`` kept itself (``bootstrap.states.keeper``). ``on_ready`` hears each service's roles as
    soon as it is ready, with the endpoints known then, while the others may still be starting.
    """
    require_local(settings, "starting local services")
    state = StateDir(settings.state_dir).ensure()
    backend = select_backend(settings, state, keeper=Kept(state))
    _check_engine(settings, backend)
    _check_ephemeral(settings, backend, state)

    def ready(service: Service) -> None:
        if on_ready is not None:
            on_ready(service.roles, local_endpoints(settings, backend, state))

    with noting_remembered(backend):
        started = start_all(backend, state, settings.ready_timeout, on_ready=ready)
    if settings.ephemeral and not state.get(EPHEMERAL):
        state.update(EPHEMERAL, value=True)
    # Read after the start: restoring the kept data may have changed the remembered pool id.
    return backend, local_endpoints(settings, backend, state), started


def _check_engine(settings: Settings, backend: Backend) -> None:
    """`up` with an engine other than the one still running would serve the app from two places: refuse."""
    if backend.engine and settings.ddb_engine not in ("auto", backend.engine):
        raise ConfigError(
            f"DynamoDB is served by {backend.engine}, which still runs, but ddb_engine is {settings.ddb_engine} "
            f"({settings.sources.get('ddb_engine')}): run `invoke down` first (it keeps both engines' data), "
            "then `invoke up` starts the new engine")


# In the state file while what runs (or ran last) keeps nothing across `down`: `status`, `down` and the next
# `up` read it.
EPHEMERAL = "ephemeral"
EPHEMERAL_WHAT = ("DynamoDB Local in memory, Postgres without fsync, synchronous commits or full-page writes, "
                  "moto keeping nothing at `down`")


def _check_ephemeral(settings: Settings, backend: Backend, state: StateDir) -> None:
    """Ephemeral and kept data never mix: entering ephemeral mode needs no kept data; leaving it starts clean."""
    was = bool(state.get(EPHEMERAL))
    if settings.ephemeral and backend.name != "embedded":
        raise ConfigError(f"ephemeral mode ({settings.sources.get('ephemeral')}) is for the embedded backend; "
                          f"the {backend.name} backend keeps its services' data as they do")
    if settings.ephemeral and not was and _holds_data(backend, state):
        raise ConfigError(
            f"ephemeral mode ({settings.sources.get('ephemeral')}) keeps nothing across `invoke down`, but "
            f"{state.root} holds data kept on disk: `invoke down --purge` first (it deletes that data), or use "
            "another state folder (CRUDDUR_STATE_DIR)")
    if was and not settings.ephemeral:
        say("starting clean: the last `invoke up` was ephemeral (--ephemeral or CRUDDUR_EPHEMERAL), "
            "so none of its data is kept")
        stop_all(backend)
        _discard_data(backend, state)
        state.update(EPHEMERAL, value=None)


def _holds_data(backend: Backend, state: StateDir) -> bool:
    if any(service.is_running() for service in backend.services):
        return True
    postgres = backend.serving("postgres")
    folders = [getattr(postgres, "data_dir", state.data_dir("postgres")), state.data_dir("dynamodb")]
    return kept_folder(state).exists() or any(folder.is_dir() and any(folder.iterdir()) for folder in folders)


def _discard_data(backend: Backend, state: StateDir) -> None:
    """What an ephemeral run left: Postgres's data folder, moto's kept data (none is written, but be sure)."""
    postgres = backend.serving("postgres")
    for folder in (getattr(postgres, "data_dir", state.data_dir("postgres")), state.data_dir("dynamodb")):
        shutil.rmtree(folder, ignore_errors=True)
    shutil.rmtree(kept_folder(state), ignore_errors=True)
    for service in backend.services:
        service.purge()


@contextlib.contextmanager
def noting_remembered(backend: Backend) -> Iterator[None]:
    """A failure of a backend or engine that no setting chose but the last start: say so, and how to choose again."""
    notes = [f"{what} {name} is {why}" for what, name, why in (("the backend", backend.name, backend.reason),
                                                                ("the DynamoDB engine", backend.engine,
                                                                 backend.engine_reason))
             if name and why.startswith("remembered")]
    try:
        yield
    except BootstrapError as exc:
        if notes:
            exc.args = (f"{exc}\n" + "\n".join(f"  {note}" for note in notes),)
        raise


@contextlib.contextmanager
def running_services(settings: Settings) -> Iterator[tuple[Backend, Endpoints]]:
    """Services started for the duration of a block (tests, benchmarks), stopped even when starting failed."""
    backend = select_backend(settings, StateDir(settings.state_dir))
    try:
        backend, endpoints, _ = start_services(settings)
        yield backend, endpoints
    finally:
        stop_all(backend)


def down(settings: Settings, purge: bool = False) -> None:
    require_local(settings, "`invoke down` (it stops local services)")
    state = StateDir(settings.state_dir)
    backend = select_backend(settings, state, keeper=Kept(state))
    ephemeral = bool(state.get(EPHEMERAL))
    with noting_remembered(backend):
        stopped = stop_all(backend, save=not purge and not ephemeral)  # --purge deletes the kept data anyway
    say(f"stopped: {', '.join(stopped)}" if stopped else "nothing was running")
    if ephemeral and not purge:
        _discard_data(backend, state)
        # The mark stays: the next `up` says why it starts clean.
        say(f"ephemeral: its data went with it ({EPHEMERAL_WHAT}); the next `invoke up` starts clean")
    if purge:
        for service in backend.services:
            service.purge()
    if purge and state.root.exists():
        with os_errors(f"deleting {state.root} (--purge)"):
            shutil.rmtree(state.root)
        say(f"removed {state.root}")


def status(settings: Settings, as_json: bool = False) -> bool:
    """Print one row per service; True when every service is running and ready."""
    require_local(settings, "`invoke status` (it shows local services)")
    state = StateDir(settings.state_dir)
    backend = select_backend(settings, state)
    rows = []
    with noting_remembered(backend):
        ready_by_name = _readiness(backend)
        for row in status_of(backend):
            # A port that answers while our process is gone is someone else's: not ready for us.
            ready = ready_by_name.get(row.name, False) and row.running is not False
            rows.append({**row.__dict__, "ready": ready})
    postgres_user = _postgres_user(backend)
    ephemeral = bool(state.get(EPHEMERAL))
    if as_json:
        print_json({"backend": backend.name, "reason": backend.reason, "ddb_engine": backend.engine,
                    "ephemeral": ephemeral,
                    "ddb_engine_reason": backend.engine_reason or None, "services": rows,
                    "postgres_user": postgres_user})
    else:
        _say_backend(backend)
        if ephemeral:
            print_line(f"ephemeral: {EPHEMERAL_WHAT}; the data goes with `invoke down`")
        if postgres_user:
            print_line(postgres_user)
        print_table(
            ["service", "backend", "endpoint", "pid", "running", "ready"],
            [[r["name"], r["backend"], r["endpoint"], r["pid"] or "-", _yes_no(r["running"]), _yes_no(r["ready"])]
             for r in rows],
        )
    return all(r["ready"] for r in rows)


def _postgres_user(backend: Backend) -> str | None:
    """As root: the system user the embedded Postgres runs as, whether it exists, why, and where its data is."""
    from .services.postgres import EmbeddedPostgres
    from .services.postgres_user import SYSTEM_USER, WHY_SYSTEM_USER, running_as_root, system_user_exists

    postgres = backend.serving("postgres")
    if not running_as_root() or not isinstance(postgres, EmbeddedPostgres):
        return None
    exists = "exists" if system_user_exists() else "does not exist yet; `invoke up` creates it"
    return (f"Postgres runs as the system user {SYSTEM_USER} ({exists}): {WHY_SYSTEM_USER}; "
            f"its data is in {postgres.data_dir} ({postgres.placement.reason})")


def _readiness(backend: Backend) -> dict[str, bool]:
    """Whether each service answers its own probes now (half a second each)."""
    ready: dict[str, bool] = {}
    for service in backend.services:
        try:
            wait_all(service.probes(), Deadline(0.5), show=False)
            ready[service.name] = True
        except NotReadyError:
            ready[service.name] = False
    return ready


def _yes_no(value: bool | None) -> str:
    return "unknown" if value is None else ("yes" if value else "no")


COGNITO_ENDPOINT_VARIABLE = "AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER"


def env_variables(settings: Settings) -> dict[str, str]:
    """The variables the Cruddur app reads, for the local services of this workspace, which must be running.

    Services that are not running are an error, never their remembered or default URLs: another workspace's
    services may answer there.
    """
    require_local(settings, "`invoke env` (it describes the local services)",
                  "prod variables come from your deployment")
    endpoints = endpoints_for(settings)
    variables = {
        "CONNECTION_URL": endpoints.postgres_url,
        "AWS_ENDPOINT_URL": endpoints.aws_endpoint_url or "",
        "AWS_DEFAULT_REGION": endpoints.region,
        "AWS_ACCESS_KEY_ID": LOCAL_AWS_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": LOCAL_AWS_SECRET_ACCESS_KEY,
    }
    if endpoints.cognito_endpoint_url:
        # Cognito is served apart from DynamoDB (beside DynamoDB Local, or the docker backend's container):
        # boto3's service-specific variable sends Cognito clients there and everything else to AWS_ENDPOINT_URL.
        variables[COGNITO_ENDPOINT_VARIABLE] = endpoints.cognito_endpoint_url
    if endpoints.user_pool_id:
        variables["AWS_COGNITO_USER_POOL_ID"] = endpoints.user_pool_id
    return variables


def explain(settings: Settings) -> None:
    """Every setting: its value (secrets masked), where the value came from, and what it is for."""
    from .config import OPTIONS, mask_url

    secret = {"pg_password"}
    rows = []
    for option in OPTIONS:
        value = getattr(settings, option.name)
        if option.name in secret and value:
            shown = "***"
        elif isinstance(value, str) and "://" in value:
            shown = mask_url(value)
        elif isinstance(value, tuple):
            shown = ":".join(str(v) for v in value)
        else:
            shown = "" if value is None else str(value)
        rows.append([option.name, shown, settings.sources.get(option.name, "default"), option.help])
    print_table(["setting", "value", "from", "meaning"], rows, wrap={"meaning"})
    if not settings.is_prod:  # prod has no local services; its region's row says where the region came from
        _say_backend(select_backend(settings, StateDir(settings.state_dir)))


def _say_backend(backend: Backend) -> None:
    """Which backend serves, which engine serves DynamoDB, and why: part of the answer of `status` and
    `env --explain`, so on stdout."""
    print_line(f"backend: {backend.name}; {backend.reason}")
    if backend.engine:
        print_line(f"DynamoDB engine: {backend.engine}; {backend.engine_reason}")


ENV_FORMATS = ("shell", "github")


def env(settings: Settings, dotenv: Path | None = None, fmt: str = "shell") -> None:
    """The app's variables as export lines, as GitHub's environment file lines (``fmt``), or into the file
    ``dotenv`` (whose folder the caller checked)."""
    if fmt not in ENV_FORMATS:
        raise ConfigError(f"--format {fmt!r}: expected one of {', '.join(ENV_FORMATS)}")
    if fmt != "shell" and dotenv:
        raise ConfigError(f"--format {fmt} prints the variables; --dotenv writes a file for a shell: give one of them")
    variables = env_variables(settings)
    if fmt == "github":
        import sys

        from .workspace import github_file, github_masks

        # For `>> "$GITHUB_ENV"`: the variables on stdout; the masks on stderr, which the runner also reads
        # for workflow commands, so they reach the log and not the file.
        sys.stderr.write(github_masks(variables))
        sys.stdout.write(github_file(variables))
        return
    if dotenv:
        with os_errors(f"writing {dotenv}"):
            write_atomic(dotenv, "".join(f"{k}={shlex.quote(v)}\n" for k, v in variables.items()))
        say(f"wrote {len(variables)} variables to {dotenv}")
        return
    print("\n".join(f"export {k}={shlex.quote(v)}" for k, v in variables.items()))
