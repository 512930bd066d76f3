"""Services that already run elsewhere (``backend external``): we neither start nor stop them, only wait for them.

Their URLs come from CONNECTION_URL and AWS_ENDPOINT_URL; the service that
serves AWS serves DynamoDB and Cognito both.
"""

from __future__ import annotations

from ..readiness import Deadline, Probe, wait_all
from .base import role_probe


class ExternalService:
    """A service that already runs elsewhere. ``origin``: the setting that chose it."""

    log_path = None

    def __init__(self, name: str, url: str, roles: tuple[str, ...], origin: str, region: str) -> None:
        self.name = name
        self.roles = roles
        self._url = url
        self.origin = origin
        self.region = region

    def hint(self) -> str:
        return (f"served by an external service that this tool does not start (backend external, URL from "
                f"{self.origin}); check that it runs and answers there, or point the setting at it "
                "(`invoke env --explain` shows every setting and where it came from)")

    def url(self) -> str:
        return self._url

    def probes(self) -> list[Probe]:
        return [role_probe(role, self._url, self.region, None, self.hint()) for role in self.roles]

    def pid(self) -> int | None:
        return None

    def is_running(self) -> bool | None:
        return None

    def start(self, deadline: Deadline) -> "ExternalService":
        """Nothing to start: wait until it answers."""
        wait_all(self.probes(), deadline)
        return self

    def stop(self, save: bool = False) -> None:
        """Never: a service we did not start is not ours to stop."""

    def purge(self) -> None:
        """Never: the data of a service we did not start is not ours to remove."""
