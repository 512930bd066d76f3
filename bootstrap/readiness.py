"""Readiness: small probes, one retry loop, one deadline per service.

Each probe has one method, ``probe()``, that raises while the service is not
ready. ``wait_until_ready`` is the only retry loop (tenacity: exponential
backoff with jitter, bounded by a deadline); on timeout it raises
``NotReadyError`` naming the service, the masked endpoint, how long was
waited of the deadline, the last error, the log file and its tail, and a hint.
The probes and their hints come from the service that serves the endpoint
(``bootstrap.services``), so the hint names what actually serves it.

A ``Deadline`` is started once per service, when its start begins: launching
it (``pg_ctl -w``, a container's healthcheck) and every probe after share it,
so a service that never answers fails at ``ready_timeout``, not at a multiple.

A process this workspace started is probed through ``OwnProcess``: its probe
asks the port only while that process is alive and the one listening there,
so an answer from another workspace's server (or anyone's) never counts. A
process that is gone is said at once with its log (``ServiceExitedError``,
never retried), and a port another program holds at once too
(``PortLostError``: the service starts again on another port).

While it waits, each probe shows a line on the console's board: the service,
its endpoint, the seconds waited of the deadline and the last error seen.
"""

from __future__ import annotations

import contextlib
import errno
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

from .config import Endpoints, mask_url
from .errors import NotReadyError, PortLostError, ServiceError, ServiceExitedError, os_failure_hint
from .processes import ADDRESS_IN_USE, describe_listeners, log_tail, lost_port, port_listeners

if TYPE_CHECKING:
    from tenacity import RetryCallState


# One probe attempt gives up after this long, so a listener that accepts and
# never answers cannot stretch a wait past its deadline.
PROBE_TIMEOUT = 2.0


class Probe(Protocol):
    """One check that a service answers. Read-only members, so that frozen dataclasses match."""

    @property
    def service(self) -> str: ...

    @property
    def endpoint(self) -> str: ...

    @property
    def log_path(self) -> Path | None: ...

    @property
    def hint(self) -> str: ...

    def probe(self) -> None: ...


@dataclass(frozen=True)
class Deadline:
    """The time one service has to become ready, from when its start began; every wait for it shares this."""

    timeout: float
    started: float = field(default_factory=time.monotonic)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False, compare=False)

    def elapsed(self, now: float | None = None) -> float:
        return (self.clock() if now is None else now) - self.started

    def remaining(self) -> float:
        return max(0.0, self.timeout - self.elapsed())

    def expired(self) -> bool:
        return self.remaining() <= 0.0


@dataclass(frozen=True)
class PostgresProbe:
    """Postgres answers ``select 1`` over TCP with the configured password."""

    url: str
    log_path: Path | None = None
    service: str = "postgres"
    hint: str = "is Postgres running and are user/password right? see `invoke status`"

    @property
    def endpoint(self) -> str:
        return mask_url(self.url)

    def probe(self) -> None:
        import psycopg

        with psycopg.connect(self.url, connect_timeout=2, autocommit=True) as conn:
            conn.execute("select 1")


@dataclass(frozen=True)
class AwsProbe:
    """An AWS API on the endpoint answers a cheap read call."""

    endpoints: Endpoints
    client_name: str
    operation: str
    arguments: tuple[tuple[str, object], ...]
    service: str
    log_path: Path | None = None
    hint: str = "is the moto server running? see `invoke status`"

    @property
    def endpoint(self) -> str:
        return self.endpoints.endpoint_for(self.client_name) or f"AWS {self.endpoints.region}"

    def probe(self) -> None:
        client = self.endpoints.client(self.client_name, timeout=PROBE_TIMEOUT)
        getattr(client, self.operation)(**dict(self.arguments))


def dynamodb_probe(endpoints: Endpoints, log_path: Path | None = None, hint: str | None = None,
                   also: str | None = None) -> AwsProbe:
    """ListTables answers; ``also`` is a further hint (this shell's credentials that DynamoDB Local refuses)."""
    probe = AwsProbe(endpoints, "dynamodb", "list_tables", (("Limit", 1),), "dynamodb", log_path)
    hint = hint or "is the DynamoDB endpoint running? see `invoke status`"
    return replace(probe, hint=hint + (f"; also: {also}" if also else ""))


def cognito_probe(endpoints: Endpoints, log_path: Path | None = None, hint: str | None = None) -> AwsProbe:
    probe = AwsProbe(endpoints, "cognito-idp", "list_user_pools", (("MaxResults", 1),), "cognito", log_path)
    return probe if hint is None else replace(probe, hint=hint)


@dataclass(frozen=True)
class OwnProcess:
    """``inner``, asked only while the process this workspace started is alive and the one listening on ``port``.

    ``name`` is that process's service (the "moto" serving the roles "dynamodb" and "cognito"); ``pid`` finds it now
    (None: it is gone); ``log_start`` is where its start's lines begin in the log.
    """

    inner: Probe
    name: str
    pid: Callable[[], int | None]
    port: int
    log_start: int | None = None

    @property
    def service(self) -> str:
        return self.inner.service

    @property
    def endpoint(self) -> str:
        return self.inner.endpoint

    @property
    def log_path(self) -> Path | None:
        return self.inner.log_path

    @property
    def hint(self) -> str:
        return self.inner.hint

    def probe(self) -> None:
        pid = self.pid()
        if pid is None:
            raise self._gone()
        listeners = port_listeners(self.port, pid)
        if None in listeners:
            who = describe_listeners(self.port, pid)
            raise PortLostError(f"{self.name}: port {self.port} is held by another program, {who}, "
                                "not by the process this workspace started")
        if not listeners:
            raise ServiceError(f"the process this workspace started (pid {pid}) does not listen on port {self.port} "
                               "yet")
        self.inner.probe()

    def _gone(self) -> ServiceExitedError:
        """The error for a process of ours that is gone: its start's last log lines, and why when they say."""
        tail = log_tail(self.log_path, 8, self.log_start or 0)
        if ADDRESS_IN_USE in tail:
            return lost_port(self.name, self.port)
        lines = [f"{self.service} at {self.endpoint}: the process this workspace started for it is gone"
                 + (" (it exited during its start)" if self.log_start is not None else " (not running)") + "."]
        if self.log_path is not None:
            lines.append(f"  log: {self.log_path}")
            lines.extend("    | " + line for line in tail.splitlines())
        lines.append(f"  hint: {self.hint}")
        return ServiceExitedError("\n".join(lines))


@dataclass
class Waiting:
    """One probe being waited for: what its line on the board says. ``started``: when its first try began."""

    probe: Probe
    deadline: Deadline
    started: float = field(default_factory=time.monotonic)
    last_error: BaseException | None = None

    def line(self, now: float | None = None) -> str:
        now = time.monotonic() if now is None else now
        waited, timeout = self.deadline.elapsed(now), self.deadline.timeout
        # Before the first try ends, what is seen is that nothing answered yet: say so, with how long.
        last = (describe_error(self.last_error) if self.last_error is not None
                else f"no answer yet, {now - self.started:.1f}s into the first try "
                     f"(a try gives up after {PROBE_TIMEOUT:g}s)")
        # A try under way at the deadline still runs to its end (at most PROBE_TIMEOUT): say so, not "17s of 15s".
        deadline = f"of {timeout:g}s" if waited <= timeout else f"(deadline {timeout:g}s passed, last try)"
        return (f"{self.probe.service} at {self.probe.endpoint}: not ready, waited {int(waited)}s {deadline}; "
                f"last error: {last}")


def wait_until_ready(probe: Probe, deadline: Deadline, show: bool = True) -> None:
    """Probe until ready, backing off; ``NotReadyError`` at the deadline. ``show``: a line on the board meanwhile.

    One try is always made, even when the deadline has passed already (the service's start used it up):
    the error then says why this try failed, not only that time ran out.
    """
    from tenacity import RetryError, Retrying, retry_if_not_exception_type, wait_random_exponential

    from .console import status_line

    waiting = Waiting(probe, deadline, started=deadline.clock())
    # Short waits: every service we wait for answers on this machine or nearby, where a try costs a refused
    # connection; a wait of up to a second let DynamoDB Local's first answer go unheard for half a second on
    # average, all of it added to a cold `up`.
    backoff = wait_random_exponential(multiplier=0.02, max=0.1)

    def remember(state: RetryCallState) -> None:
        waiting.last_error = state.outcome.exception() if state.outcome is not None else None

    retrying = Retrying(
        stop=lambda state: deadline.expired(),
        # A process that is gone will not come back by waiting: said at once.
        retry=retry_if_not_exception_type(ServiceExitedError),
        # Never sleep past the deadline: the last try starts at it, not up to a second after.
        wait=lambda state: min(backoff(state), deadline.remaining()),
        before_sleep=remember,
        reraise=False,
    )
    try:
        with status_line(waiting.line) if show else contextlib.nullcontext():
            for attempt in retrying:
                with attempt:
                    probe.probe()
    except RetryError as exc:
        raise not_ready(probe, deadline, exc.last_attempt.exception(), waiting.started) from None


def wait_all(probes: list[Probe], deadline: Deadline, show: bool = True) -> None:
    """Wait for every probe concurrently, under one deadline; report every service that did not become ready."""
    if not probes:
        return
    with ThreadPoolExecutor(max_workers=len(probes)) as pool:
        futures = [pool.submit(wait_until_ready, probe, deadline, show) for probe in probes]
        errors = [f.exception() for f in futures if f.exception() is not None]
    # One service's probes share its process: that it is gone (or lost its port) is said once, as itself.
    gone: list[BaseException | None] = [error for error in errors if isinstance(error, ServiceExitedError)]
    raise_together(gone[:1] or errors)


def raise_together(errors: list[BaseException | None]) -> None:
    """Raise nothing, the one error, the first that is not about readiness, or every ``NotReadyError`` as one."""
    raised = [error for error in errors if error is not None]
    failures = [error for error in raised if not isinstance(error, NotReadyError)]
    if failures or len(raised) == 1:
        raise (failures or raised)[0]
    if raised:
        raise NotReadyError("\n\n".join(str(e) for e in raised))


def not_ready(probe: Probe, deadline: Deadline, last: BaseException | None,
              checking_since: float | None = None) -> NotReadyError:
    """The error for ``probe``'s service at its deadline; ``checking_since``: when the probe's own tries began."""
    now = deadline.clock()
    waited = f"  waited {deadline.elapsed(now):.1f}s of {deadline.timeout:g}s"
    if checking_since is not None and checking_since - deadline.started >= 0.05:
        waited += f" ({checking_since - deadline.started:.1f}s of it starting the service, before this check)"
    lines = [
        f"{probe.service} at {probe.endpoint} was not ready after {deadline.timeout:g}s.",
        waited,
        f"  last error: {_one_line(last)}",
    ]
    hint = probe.hint
    if probe.log_path is not None:
        lines.append(f"  log: {probe.log_path}")
        tail = log_tail(probe.log_path, 8)
        if tail:
            lines.extend("    | " + line for line in tail.splitlines())
        if ADDRESS_IN_USE in tail:  # a stranger took the port between choosing and binding it
            hint = os_failure_hint(errno.EADDRINUSE, None)
    lines.append(f"  hint: {hint}")
    return NotReadyError("\n".join(lines))


def describe_error(error: BaseException) -> str:
    """A short reason for a failed probe, for the line shown while waiting: refused, timed out, an HTTP status."""
    from botocore.exceptions import ClientError, ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError

    text = " ".join(str(error).split())
    if isinstance(error, ClientError):
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = error.response.get("Error", {}).get("Code", "")
        return f"HTTP {status} {code}".strip()
    if isinstance(error, (ConnectTimeoutError, ReadTimeoutError, TimeoutError)) or "timeout expired" in text:
        return f"no answer within {PROBE_TIMEOUT:g}s (timeout)"
    if "refused" in text.lower():
        return "connection refused"
    if isinstance(error, EndpointConnectionError):
        return "cannot connect"
    return _one_line(error)[:160]


def _one_line(error: BaseException | None) -> str:
    if error is None:
        return "none"
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:300]
