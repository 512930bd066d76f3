"""cruddur-bootstrap tasks: a table of contents over ``bootstrap/``.

Each task resolves its settings (default < invoke.yaml < environment < flag),
calls one library function, and turns our errors into ``invoke.Exit``. Heavy
libraries are imported inside the library functions, so listing tasks is fast.
"""

from __future__ import annotations

import functools
import os
from typing import Any, Callable

from invoke import Collection, Exit, task

from bootstrap.config import OPTION_BY_NAME, Settings, resolve_settings
from bootstrap.errors import BootstrapError

COMMON_HELP = {
    "target": "local (default) or prod: real AWS and PROD_CONNECTION_URL",
    "backend": "auto (default), embedded, docker or external",
}


def _help(*common: str, **extra: str) -> dict[str, str]:
    """Help for the common flags the task takes (by name) plus its own."""
    return {**{name: COMMON_HELP[name] for name in common}, **extra}


def _settings(c: Any, **flags: Any) -> Settings:
    file_values = dict(c.config.get("cruddur", {}) or {})
    known = {name: value for name, value in flags.items() if name in OPTION_BY_NAME}
    return resolve_settings(file_values, os.environ, known)


def _friendly(body: Callable[..., Any]) -> Callable[..., Any]:
    """Turn our own errors into a message and an exit code, never a traceback."""

    @functools.wraps(body)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return body(*args, **kwargs)
        except BootstrapError as exc:
            raise Exit(f"error: {exc}", code=exc.exit_code) from None
        except KeyboardInterrupt:
            raise Exit("interrupted; run the same command again to finish the job", code=130) from None

    return wrapper


# --- environment ------------------------------------------------------------------


@task(help=_help("target", "backend", timeout="seconds to wait for each service to become ready"))
@_friendly
def up(c, target=None, backend=None, timeout=None):
    """Start the services, wait until ready, and create the database."""
    from bootstrap import lifecycle

    lifecycle.up(_settings(c, target=target, backend=backend, ready_timeout=timeout))


@task(help=_help("backend", purge="also delete .cruddur/ (all local data)"))
@_friendly
def down(c, purge=False, backend=None):
    """Stop the local services (data is kept unless --purge)."""
    from bootstrap import lifecycle

    lifecycle.down(_settings(c, backend=backend), purge=purge)


@task(help=_help("backend", json="print machine-readable JSON"))
@_friendly
def status(c, backend=None, json=False):
    """Show each service's backend, endpoint, pid and readiness; exit 1 unless all are ready."""
    from bootstrap import lifecycle

    if not lifecycle.status(_settings(c, backend=backend), as_json=json):
        raise Exit(code=1)


@task(help=_help("target", "backend", dotenv="write the same variables to this .env file instead of printing"))
@_friendly
def env(c, target=None, backend=None, dotenv=None):
    """Print `export` lines for the app: eval "$(invoke env)"."""
    from bootstrap import lifecycle

    lifecycle.env(_settings(c, target=target, backend=backend), dotenv=dotenv)


# --- db: Postgres -------------------------------------------------------------------

db = Collection("db")


# --- ddb: DynamoDB ------------------------------------------------------------------

ddb = Collection("ddb")


# --- cognito ------------------------------------------------------------------------

cognito = Collection("cognito")


ns = Collection(up, down, status, env, db, ddb, cognito)
ns.configure({"cruddur": {}})
