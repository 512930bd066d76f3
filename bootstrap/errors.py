"""The errors this tool raises on purpose.

Library code raises these; only ``tasks.py`` turns them into ``invoke.Exit``
so that a user sees one clear message and an exit code, never a traceback,
for a problem they can fix. Messages must never contain a password or an AWS
secret: build them from masked URLs (``config.mask_url``).
"""

from __future__ import annotations

import contextlib
from typing import Iterator


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


INTERRUPTED = "interrupted; run the same command again to finish the job"


def exit_status(exc: BaseException) -> tuple[int, str] | None:
    """The exit code and message for our errors and Ctrl-C; None for anything else (a bug: let it show)."""
    if isinstance(exc, BootstrapError):
        return exc.exit_code, f"error: {exc}"
    if isinstance(exc, KeyboardInterrupt):
        return 130, INTERRUPTED
    return None


@contextlib.contextmanager
def aws_errors(what: str, not_found_hint: str | None = None) -> Iterator[None]:
    """Turn botocore failures into our errors, saying what we were doing.

    Missing credentials (the prod target) and, when ``not_found_hint`` is
    given, a missing resource are problems the user fixes with settings:
    ConfigError. Everything else is a ServiceError with the AWS error code.
    """
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        yield
    except NoCredentialsError:
        raise ConfigError(f"{what}: no AWS credentials found; configure them for the prod target") from None
    except ClientError as exc:
        error = exc.response.get("Error", {})
        code, message = error.get("Code", "error"), error.get("Message", "")
        if not_found_hint and code == "ResourceNotFoundException":
            raise ConfigError(f"{what}: {message or 'not found'}; {not_found_hint}") from None
        raise ServiceError(f"{what}: {code}: {message or exc}") from None
    except BotoCoreError as exc:
        raise ServiceError(f"{what}: {exc}") from None


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
        return f"{path or 'a file or program'} does not exist: install what is missing, or check the settings"
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
