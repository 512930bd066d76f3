"""The embedded moto server: DynamoDB, DynamoDB Streams and Cognito in memory, keeping its data across down/up.

moto holds everything in memory, so the server keeps its own data: stopped
by ``invoke down`` it first saves it, and started fresh it puts it back once
it answers, before anything is seeded. The keeping itself (an internal saved
state in the state folder) is ``bootstrap.states.keeper``'s, which stands above the services
(it writes tables and user pools): whoever builds the server for ``up`` and
``down`` hands it a ``Keeper``. Without one (``status``, ``env``, tests) the
server keeps nothing.

It runs detached in its own session (``bootstrap.processes``), bound to the
loopback interface, on a port chosen once and remembered.
"""

from __future__ import annotations

import sys
from typing import Protocol

from ..config import Endpoints, Settings
from ..processes import BIND_ADDRESS, DetachedServer
from ..readiness import Deadline, Probe, wait_all
from ..state import StateDir
from .base import aws_endpoints, own_probes


class Keeper(Protocol):
    """Keeps a moto server's in-memory data from its stop to its next start (``bootstrap.states.keeper.Kept``)."""

    def save(self, endpoints: Endpoints, tables: bool) -> None: ...

    def restore(self, endpoints: Endpoints, tables: bool) -> None: ...


class MotoServer(DetachedServer):
    """A moto server: DynamoDB, DynamoDB Streams and Cognito in memory, or Cognito only beside DynamoDB Local.

    Serving DynamoDB it is the service "moto" on ``ddb_port``; serving Cognito
    only it is the service "cognito" on ``cognito_port``, so that the two never
    share a pid file, log or remembered port.
    """

    port_flags = ("-p",)
    marker = "moto"

    def __init__(self, settings: Settings, state: StateDir, serves_dynamodb: bool = True,
                 keeper: Keeper | None = None) -> None:
        self.name = "moto" if serves_dynamodb else "cognito"
        self.roles = ("dynamodb", "cognito") if serves_dynamodb else ("cognito",)
        self.what = ("the embedded moto server (DynamoDB and Cognito)" if serves_dynamodb
                     else "the embedded moto server (Cognito only, beside DynamoDB Local)")
        super().__init__(state, settings.ddb_port if serves_dynamodb else settings.cognito_port)
        self.region = settings.region
        self.keeper = keeper

    def command(self, port: int) -> list[str]:
        # No limit on int digits: a named state's saved Cognito ids come back through a very long seed
        # (bootstrap.states.moto_random).
        return [sys.executable, "-X", "int_max_str_digits=0", "-m", "moto.server", "-H", BIND_ADDRESS,
                "-p", str(port)]

    def probes(self) -> list[Probe]:
        return own_probes(self, self.region)

    def start(self, deadline: Deadline) -> "MotoServer":
        """Start (or find running), wait until it answers, and put back what the last ``down`` saved, if started now."""
        started = self.start_until_ready(self.launch, lambda: wait_all(self.probes(), deadline))
        if started and self.keeper is not None:
            # Beside DynamoDB Local, which keeps its tables on disk itself, only the user pools are ours to keep.
            self.keeper.restore(self._endpoints(), tables="dynamodb" in self.roles)
        return self

    def stop(self, save: bool = False) -> None:
        """Stop it; with ``save`` (``invoke down``), first save what it holds, since it holds it in memory only."""
        if save and self.keeper is not None and self.is_running():
            self.keeper.save(self._endpoints(), tables="dynamodb" in self.roles)
        super().stop()

    def _endpoints(self) -> Endpoints:
        return aws_endpoints(self.url(), self.region)
