"""Readiness: small probes, one retry loop.

Each probe has one method, ``probe()``, that raises while the service is not
ready. ``wait_until_ready`` is the only retry loop (tenacity: exponential
backoff with jitter, bounded by a deadline); on timeout it raises
``NotReadyError`` naming the service, the masked endpoint, the last error, the
log file and its tail, and a hint.
"""

from __future__ import annotations

import errno
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .config import Endpoints, mask_url
from .errors import NotReadyError, os_failure_hint


# One probe attempt gives up after this long, so a listener that accepts and
# never answers cannot stretch a wait past its deadline.
PROBE_TIMEOUT = 2.0


class Probe(Protocol):
    service: str
    endpoint: str
    log_path: Path | None
    hint: str

    def probe(self) -> None: ...


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


def dynamodb_probe(endpoints: Endpoints, log_path: Path | None = None, also: str | None = None) -> AwsProbe:
    """ListTables answers; ``also`` is a further hint (this shell's credentials that DynamoDB Local refuses)."""
    hint = "is the DynamoDB endpoint running? see `invoke status`" + (f"; also: {also}" if also else "")
    return AwsProbe(endpoints, "dynamodb", "list_tables", (("Limit", 1),), "dynamodb", log_path, hint)


def cognito_probe(endpoints: Endpoints, log_path: Path | None = None) -> AwsProbe:
    return AwsProbe(endpoints, "cognito-idp", "list_user_pools", (("MaxResults", 1),), "cognito", log_path)


def wait_until_ready(probe: Probe, timeout: float) -> None:
    from tenacity import RetryError, Retrying, stop_after_delay, wait_random_exponential

    retrying = Retrying(
        stop=stop_after_delay(timeout),
        wait=wait_random_exponential(multiplier=0.02, max=1.0),
        reraise=False,
    )
    try:
        for attempt in retrying:
            with attempt:
                probe.probe()
    except RetryError as exc:
        raise NotReadyError(_timeout_message(probe, timeout, exc.last_attempt.exception())) from None


def wait_all(probes: list[Probe], timeout: float) -> None:
    """Wait for every probe concurrently; report every service that did not become ready."""
    if not probes:
        return
    with ThreadPoolExecutor(max_workers=len(probes)) as pool:
        futures = [pool.submit(wait_until_ready, probe, timeout) for probe in probes]
        errors = [f.exception() for f in futures if f.exception() is not None]
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise NotReadyError("\n\n".join(str(e) for e in errors))


def _timeout_message(probe: Probe, timeout: float, last: BaseException | None) -> str:
    from .processes import log_tail

    lines = [
        f"{probe.service} at {probe.endpoint} was not ready after {timeout:g}s.",
        f"  last error: {_one_line(last)}",
    ]
    hint = probe.hint
    if probe.log_path is not None:
        lines.append(f"  log: {probe.log_path}")
        tail = log_tail(probe.log_path, 8)
        if tail:
            lines.extend("    | " + line for line in tail.splitlines())
        if "Address already in use" in tail:  # a stranger took the port between choosing and binding it
            hint = os_failure_hint(errno.EADDRINUSE, None)
    lines.append(f"  hint: {hint}")
    return "\n".join(lines)


def _one_line(error: BaseException | None) -> str:
    if error is None:
        return "none"
    text = " ".join(str(error).split()) or type(error).__name__
    return f"{type(error).__name__}: {text}"[:300]
