"""The errors this tool raises on purpose.

Library code raises these; only ``tasks.py`` turns them into ``invoke.Exit``
so that a user sees one clear message and an exit code, never a traceback,
for a problem they can fix. Messages must never contain a password or an AWS
secret: build them from masked URLs (``config.mask_url``).
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
from dataclasses import dataclass, replace
from typing import Any, Callable, Iterator


class BootstrapError(Exception):
    """Base class: a problem the user can act on. ``exit_code`` is the process exit code."""

    exit_code = 1


class ConfigError(BootstrapError):
    """A setting, flag or environment variable has a value we cannot use."""

    exit_code = 2


class InputError(BootstrapError):
    """Bad input from the user (fixture files, task arguments). Nothing was written."""

    exit_code = 2


class RefusedError(BootstrapError):
    """A destructive or local-only operation was refused (e.g. on the prod target without --yes)."""

    exit_code = 3


class LocalOnlyError(RefusedError):
    """Work on local services asked of the prod target, which has none (``guard.require_local``)."""


class ServiceError(BootstrapError):
    """A service could not be started, stopped or reached."""


class NotReadyError(ServiceError):
    """A service did not become ready before its deadline."""


class ServiceExitedError(NotReadyError):
    """A process this workspace started is gone: said at once, with its log, never after waiting out the deadline."""


class PortLostError(ServiceExitedError):
    """Another program listens on the port chosen for a service, which therefore cannot: it is started on another."""


class DriftError(BootstrapError):
    """Live state differs from the spec in a way that needs an explicit decision (e.g. --recreate)."""


class VerifyError(BootstrapError):
    """One or more verification checks failed."""


class PartWayError(BootstrapError):
    """Another failure or Ctrl-C stopped a task part-way; the message says what the task put back (or what to do
    by hand) and names the failure. It keeps that failure's exit code, 130 for Ctrl-C."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


INTERRUPTED = "interrupted; run the same command again to finish the job"
DEBUG_VARIABLE = "CRUDDUR_DEBUG"  # set to 1: a failure shows its whole traceback (for us, not for users)
UNEXPECTED_EXIT = 70  # sysexits.h's EX_SOFTWARE: a failure nobody foresaw, which is a bug of ours
CLOSED_OUTPUT_EXIT = 141  # 128 + SIGPIPE: what a shell reports for a program whose pipe's reader went away
UNEXPECTED_HINT = f"re-run with {DEBUG_VARIABLE}=1 for the traceback and report it"
HINT_SEPARATOR = "; hint: "


def debugging() -> bool:
    """True when the user asked for tracebacks (``CRUDDUR_DEBUG=1``): read at the failure, never cached."""
    import os

    return os.environ.get(DEBUG_VARIABLE, "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Failure:
    """What the user is told about an exception that ended a task: one line, a hint, an exit code."""

    exit_code: int
    error: str
    hint: str | None = None
    expected: bool = True  # False: nobody foresaw it (``unexpected error: ...``)
    said: str | None = None  # our own error's message as it was written, hint included: shown as is

    def line(self) -> str:
        if self.exit_code == 130:  # Ctrl-C is no error: the generic line, or our own saying what was put back
            return self.said if self.said is not None else INTERRUPTED
        if self.said is not None:
            return f"error: {self.said}"
        head = "error" if self.expected else "unexpected error"
        return f"{head}: {self.error}" + (f"{HINT_SEPARATOR}{self.hint}" if self.hint else "")

    def to_json(self) -> dict[str, object]:
        return {"error": self.error, "hint": self.hint, "exit_code": self.exit_code}

    def masked(self, mask: Callable[[str], str]) -> Failure:
        """The same failure with ``mask`` applied to its texts (secrets in URLs, see ``config.mask_text``)."""
        return replace(self, error=mask(self.error), hint=mask(self.hint) if self.hint else None,
                       said=mask(self.said) if self.said is not None else None)


def describe(exc: BaseException) -> Failure:
    """The last-resort mapping of any exception to what the user is told, the way invoke turns its own
    ``Failure``/``ParseError`` into an exit: our errors as they say, the libraries' failures we can meet
    (AWS, Postgres, Docker, processes, the operating system) as one line with a fix, anything else as a bug."""
    if isinstance(exc, BootstrapError):
        return _split_hint(exc.exit_code, str(exc))
    if isinstance(exc, KeyboardInterrupt):
        return Failure(130, "interrupted", "run the same command again to finish the job")
    for explain in (_aws_failure, _docker_failure, _postgres_failure, _process_failure, _retry_failure):
        failure = explain(exc)
        if failure is not None:
            return failure
    if isinstance(exc, subprocess.CalledProcessError):
        return Failure(1, f"`{_command(exc.cmd)}` exited with status {exc.returncode}", DOCTOR_HINT)
    if isinstance(exc, subprocess.TimeoutExpired):
        return Failure(1, f"`{_command(exc.cmd)}` did not finish within {exc.timeout:g}s",
                       "run the same command again; if it keeps timing out, run `invoke doctor`")
    if isinstance(exc, BrokenPipeError):  # `invoke ddb.scan | head`: the reader had what it wanted
        return Failure(CLOSED_OUTPUT_EXIT, "the output was closed before all of it was written (its reader, such "
                       "as `head`, stopped reading)", "to keep all of it, send it to a file instead")
    if isinstance(exc, OSError):
        path = None if exc.filename is None else str(exc.filename)
        what = (exc.strerror or _one_line(exc) or type(exc).__name__) + (f" ({path})" if path else "")
        return Failure(1, what, os_failure_hint(exc.errno, path))
    return Failure(UNEXPECTED_EXIT, f"{type(exc).__name__}: {_one_line(exc)}", UNEXPECTED_HINT, expected=False)


def exit_status(exc: BaseException) -> tuple[int, str]:
    """The exit code and the one line for any exception that ends a task (see ``describe``)."""
    failure = describe(exc)
    return failure.exit_code, failure.line()


def _split_hint(code: int, message: str) -> Failure:
    """Our messages carry their fix after ``; hint: `` or, from ``up``, on a last line of their own."""
    error, separator, hint = message.partition(HINT_SEPARATOR)
    if not separator and message.endswith(f"\n{DOCTOR_HINT}"):
        error, hint = message.removesuffix(f"\n{DOCTOR_HINT}"), DOCTOR_HINT
    return Failure(code, error, hint or None, said=message)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _command(cmd: object) -> str:
    return " ".join(map(str, cmd)) if isinstance(cmd, (list, tuple)) else str(cmd)


# The libraries are looked up among the modules already imported: an exception of a library that was
# never imported cannot happen, and importing botocore or docker only to say so would slow every failure.
def _loaded(module: str) -> Any:
    return sys.modules.get(module)


CREDENTIALS_REFUSED = frozenset({
    "UnrecognizedClientException", "InvalidClientTokenId", "InvalidSignatureException", "SignatureDoesNotMatch",
    "ExpiredToken", "ExpiredTokenException", "AccessDenied", "AccessDeniedException", "InvalidAccessKeyId",
    "UnauthorizedOperation", "NotAuthorizedException",
})
AWS_CREDENTIALS_HINT = ("check the credentials boto3 finds (`aws sts get-caller-identity`, AWS_PROFILE); locally, "
                        "`eval \"$(invoke env)\"` sets the ones the local services accept")


def _aws_failure(exc: BaseException, what: str | None = None) -> Failure | None:
    """botocore's failures; ``what`` (what we were doing) replaces the plain ``AWS`` that starts the line."""
    botocore = _loaded("botocore.exceptions")
    if botocore is None or not isinstance(exc, (botocore.BotoCoreError, botocore.ClientError)):
        return None
    doing = what or "AWS"
    if isinstance(exc, (botocore.NoCredentialsError, botocore.PartialCredentialsError)):
        return Failure(2, f"{doing}: {_one_line(exc)}", AWS_CREDENTIALS_HINT)
    if isinstance(exc, botocore.NoRegionError):
        return Failure(2, f"{doing}: no AWS region set", "set AWS_DEFAULT_REGION, or a region in the AWS profile")
    if isinstance(exc, (botocore.EndpointConnectionError, botocore.ConnectTimeoutError, botocore.ReadTimeoutError,
                        botocore.ConnectionClosedError)):
        return Failure(1, f"{what + ': ' if what else ''}AWS endpoint not answering: {_one_line(exc)}",
                       "check that the services run (`invoke status`, `invoke up`) or that AWS_ENDPOINT_URL is right")
    if isinstance(exc, botocore.ClientError):
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "error"), " ".join(error.get("Message", "").split())
        said = f"{what or f'AWS {exc.operation_name}'}: {code}: {message or _one_line(exc)}"
        if code in CREDENTIALS_REFUSED:
            return Failure(2, said, AWS_CREDENTIALS_HINT)
        if code.endswith("NotFoundException"):
            return Failure(1, said, "`invoke up` creates what is missing locally; on prod, see the runbook")
        return Failure(1, said, DOCTOR_HINT)
    return Failure(1, f"{doing}: {_one_line(exc)}", DOCTOR_HINT)


def _docker_failure(exc: BaseException) -> Failure | None:
    docker = _loaded("docker.errors")
    requests = _loaded("requests.exceptions")
    if not ((docker and isinstance(exc, docker.DockerException)) or
            (requests and isinstance(exc, requests.RequestException))):
        return None
    return Failure(1, f"Docker engine: {_one_line(exc) or type(exc).__name__}",
                   "check that the Docker engine runs (`docker info`), or use another backend "
                   "(`--backend embedded`)")


def _postgres_failure(exc: BaseException) -> Failure | None:
    psycopg = _loaded("psycopg")
    if psycopg is None or not isinstance(exc, psycopg.Error):
        return None
    if isinstance(exc, psycopg.OperationalError):
        return Failure(1, f"Postgres: {_one_line(exc)}",
                       "check that Postgres runs (`invoke status`, `invoke up`), or CONNECTION_URL/PROD_CONNECTION_URL")
    state = f" ({exc.sqlstate})" if getattr(exc, "sqlstate", None) else ""
    return Failure(1, f"Postgres{state}: {_one_line(exc)}", "`invoke verify` says what differs from what we expect")


def _process_failure(exc: BaseException) -> Failure | None:
    psutil = _loaded("psutil")
    if psutil is None or not isinstance(exc, psutil.Error):
        return None
    who = f"process {getattr(exc, 'pid', None) or '?'}" + (f" ({exc.name})" if getattr(exc, "name", None) else "")
    if isinstance(exc, psutil.AccessDenied):
        return Failure(1, f"permission denied on {who}",
                       "it belongs to another user: stop it as that user, or run as the user who started it")
    if isinstance(exc, psutil.NoSuchProcess):
        return Failure(1, f"{who} ended while we were looking at it", "run the same command again")
    return Failure(1, f"{who}: {_one_line(exc) or type(exc).__name__}", DOCTOR_HINT)


def _retry_failure(exc: BaseException) -> Failure | None:
    """tenacity's RetryError says only that it gave up: what counts is the last attempt's own failure."""
    tenacity = _loaded("tenacity")
    if tenacity is None or not isinstance(exc, tenacity.RetryError):
        return None
    last = exc.last_attempt.exception() if exc.last_attempt.failed else None
    return describe(last) if last is not None else Failure(1, "gave up after retrying", DOCTOR_HINT)


@contextlib.contextmanager
def aws_errors(what: str, not_found_hint: str | None = None) -> Iterator[None]:
    """Turn botocore failures into our errors, saying what we were doing.

    Missing credentials (the prod target) and, when ``not_found_hint`` is
    given, a missing resource are problems the user fixes with settings:
    ConfigError. Everything else is a ServiceError with the AWS error code.
    """
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        yield
    except (ClientError, BotoCoreError) as exc:
        if not_found_hint and isinstance(exc, ClientError):
            error = exc.response.get("Error", {})
            if error.get("Code") == "ResourceNotFoundException":
                raise ConfigError(f"{what}: {error.get('Message') or 'not found'}; {not_found_hint}") from None
        failure = _aws_failure(exc, what)
        assert failure is not None
        raise (ConfigError if failure.exit_code == ConfigError.exit_code else ServiceError)(
            f"{failure.error}{HINT_SEPARATOR}{failure.hint}") from None


DOCTOR_HINT = "run `invoke doctor` to check this machine"


def os_failure_hint(errno_code: int | None, path: str | None) -> str:
    """Pure: a one-line fix for an operating-system failure, by its errno."""
    import errno

    where = f" {path}" if path else ""
    if errno_code in (errno.EACCES, errno.EPERM):
        return (f"permission denied on{where}: make it writable by this user, or point the setting that names it "
                "elsewhere (CRUDDUR_STATE_DIR, CRUDDUR_CACHE_DIR, CRUDDUR_SYSTEM_DIR)")
    if errno_code in (errno.ENOSPC, errno.EDQUOT):
        return f"no space left on the disk holding{where}: free some (`df -h{where}`) and run the same command again"
    if errno_code == errno.EROFS:
        return f"{path or 'the folder'} is on a read-only file system: point CRUDDUR_STATE_DIR at a writable folder"
    if errno_code == errno.EADDRINUSE:
        return "another program took the port: run `invoke up` again, it chooses a free port"
    if errno_code == errno.ENOENT:
        if path and "/" in path:
            return f"{path} does not exist: check the path (and the flag or setting that gives it), or create it"
        return f"{path or 'a program'} is not installed (or not on PATH): install it, or check the settings"
    return DOCTOR_HINT


@contextlib.contextmanager
def os_errors(what: str) -> Iterator[None]:
    """Turn an operating-system failure (an OSError) into a ServiceError saying what we were doing and a fix."""
    try:
        yield
    except OSError as exc:
        path = exc.filename if exc.filename is None else str(exc.filename)
        detail = exc.strerror or str(exc)
        raise ServiceError(f"{what}: {detail}{f' ({path})' if path else ''}; hint: "
                           f"{os_failure_hint(exc.errno, path)}") from None
