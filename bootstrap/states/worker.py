"""A test worker's own copy of the ``seeded`` state, and its reset to it between tests (the pytest plugin's work).

Each worker (pytest-xdist's ``gw0``, ``gw1``…, or ``main`` without xdist) gets
a database, a table and a user pool of its own, named after the app's with
the worker id appended, loaded from ``seeded``: tests on two workers never
see each other's writes. Resetting undoes only what a test changed: in
Postgres the tables its statements wrote (noted by triggers, rewritten from
a copy kept in the worker's database); in DynamoDB the items that differ
from the seed (rewritten or deleted, never the table dropped); in Cognito the
users it created, deleted or changed.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..config import Endpoints, Settings, with_database
from ..errors import ConfigError
from . import cognito, dynamodb, postgres
from .manifest import COGNITO_FILE, DYNAMODB_FOLDER, SEEDED
from .store import checked_state

_WORKER = re.compile(r"^[A-Za-z0-9_]{1,16}$")


@dataclass
class WorkerEnvironment:
    """One worker's database, table and pool, and how to put them back to the seeded state."""

    settings: Settings
    endpoints: Endpoints  # the worker's own: its database in the URL, its pool's id
    worker: str
    table_name: str
    pool_name: str
    folder: Path
    saved_table: str
    saved_pool: dict[str, Any] | None
    changes: dynamodb.TableChanges
    saved_items: dict[str, dict[str, Any]]
    key_names: list[str]
    _conn: Any = field(default=None, repr=False)

    def reset(self) -> None:
        """Undo what the last test changed: the three services at once, each waiting on its own round trips."""
        import psycopg

        if self._conn is None or self._conn.closed:
            self._conn = psycopg.connect(self.endpoints.postgres_url)
        with ThreadPoolExecutor(max_workers=3) as pool:
            futures: list[Future[object]] = [pool.submit(postgres.reset_changes, self._conn),
                       pool.submit(dynamodb.undo_changes, self.endpoints, self.table_name, self.changes,
                                   self.saved_items, self.key_names)]
            if self.saved_pool is not None and self.endpoints.user_pool_id:
                futures.append(pool.submit(cognito.load_users, self.endpoints, self.endpoints.user_pool_id,
                                           self.saved_pool))
            for future in futures:
                future.result()

    def remove(self) -> None:
        """Drop the worker's database, table and pool."""
        if self._conn is not None:
            self._conn.close()
        postgres.drop_database(self.endpoints, self.endpoints.database_name)
        self.endpoints.client("dynamodb").delete_table(TableName=self.table_name)
        if self.endpoints.user_pool_id:
            self.endpoints.client("cognito-idp").delete_user_pool(UserPoolId=self.endpoints.user_pool_id)


def worker_names(settings: Settings, endpoints: Endpoints, worker: str) -> tuple[str, str, str]:
    """The worker's database, table and pool names: the app's with ``_<worker>`` / ``-<worker>`` appended."""
    if not _WORKER.match(worker):
        raise ConfigError(f"worker id {worker!r} cannot be part of a database name")
    return (f"{endpoints.database_name}_{worker}", f"{settings.table_name}-{worker}",
            f"{settings.user_pool_name}-{worker}")


def prepare(settings: Settings, endpoints: Endpoints, worker: str) -> WorkerEnvironment:
    """Load ``seeded`` into the worker's own database, table and pool (replacing older ones), tracked for resets."""
    folder, manifest = checked_state(settings, endpoints, SEEDED)
    database, table, pool_name = worker_names(settings, endpoints, worker)
    postgres.load_database(endpoints, SEEDED, into=database)
    url = with_database(endpoints.postgres_url, database)
    postgres.track_changes(url)
    saved_table = manifest["dynamodb"]["table"]
    dynamodb.load_table(endpoints, folder / DYNAMODB_FOLDER, saved_table, table)
    changes = dynamodb.TableChanges(endpoints, table)
    key_names = [part["AttributeName"] for part in dynamodb.saved_shape(folder / DYNAMODB_FOLDER,
                                                                          saved_table)["KeySchema"]]
    saved_pool = None
    pool_id = None
    if manifest["cognito"]["users"] is not None:
        saved_pool = json.loads((folder / COGNITO_FILE).read_text(encoding="utf-8"))
        pool_id, _ = cognito.load_pool(endpoints, saved_pool, pool_name)
    own = Endpoints(url, endpoints.aws_endpoint_url, endpoints.region, pool_id, endpoints.cognito_endpoint_url)
    return WorkerEnvironment(settings, own, worker, table, pool_name, folder, saved_table, saved_pool, changes,
                             dynamodb.saved_items(folder / DYNAMODB_FOLDER, saved_table), key_names)
