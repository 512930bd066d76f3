"""What a step reports: one action per step, a one-line detail, and how many writes it made.

Every step of ``invoke up`` and every task returns a ``StepResult``; the runner
adds durations and prints one row per step (human table or ``--json``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from enum import Enum

# The steps of ``invoke up``, each also a task of its own: every result and plan takes its name from here.
SERVICES = "services"
DB_CREATE = "db.create"
DB_SCHEMA_LOAD = "db.schema-load"
DB_SEED = "db.seed"
DDB_SCHEMA_LOAD = "ddb.schema-load"
DDB_SEED = "ddb.seed"
COGNITO_SEED_USERS = "cognito.seed-users"
COGNITO_SYNC = "db.update-cognito-user-ids"
VERIFY = "verify"


class Action(str, Enum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"
    REMOVED = "removed"
    FAILED = "failed"
    WOULD_RUN = "would run"
    STARTED = "started"  # services that were not running and are now (first start or again)
    PASSED = "passed"  # verify's checks, all of them (a failed one stops up with an error)


@dataclass(frozen=True)
class StepResult:
    step: str
    action: Action
    detail: str = ""
    writes: int = 0
    duration: float = 0.0

    def to_json(self) -> dict[str, object]:
        data = asdict(self)
        data["action"] = self.action.value
        data["duration"] = round(self.duration, 3)
        return data
