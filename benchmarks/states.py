"""Named states measured: ``invoke state.load seeded`` against a cold ``up``, and the pytest plugin's reset.

``state.load seeded`` is timed as a user runs it (the task as a process), in
a state folder that a cold ``up`` just prepared; its figure is the median
load over the median cold ``up`` of the same engine in the same run. The
reset is the pytest plugin's (``bootstrap.states.worker``), timed in process
as the plugin calls it, after a "test" that changed one row and one item;
beside it, the naive way of getting back there: drop and reseed the
database and the table.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from benchmarks.commands import purged, fresh_cli, say, timed
from benchmarks.figures import Figure, Target, median
from bootstrap.backends import endpoints_for
from bootstrap.config import Settings, resolve_settings

TARGETS = {
    "load_share": Target(0.30, "×"),
    "reset": Target(0.100, "s"),
    "naive": Target(1.0, "s", at_most=False),
}
RESET_SAMPLES = 15


def measure_states(root: Path, runs: int, engine: str, cold_median: float) -> list[Figure]:
    with purged(fresh_cli(root, engine)) as cli:
        timed(cli, "up")
        loads = []
        for run in range(runs * 3):
            loads.append(timed(cli, "state.load", "seeded"))
            say(f"  state.load seeded on {engine} {run + 1}/{runs * 3}: {loads[-1]:.2f}s")
        figures = [
            Figure(f"state.load seeded on {engine}", tuple(loads), "s", detail="the task, end to end"),
            Figure(f"state.load seeded on {engine} ÷ cold up", (median(loads) / cold_median,), "×",
                   TARGETS["load_share"], detail="medians of this run"),
        ]
        resets, naive = _resets(resolve_settings({}, cli.env, {}), runs)
    say(f"  plugin reset on {engine}: {median(resets) * 1000:.0f} ms; drop and reseed: {median(naive):.2f}s")
    return figures + [
        Figure(f"pytest plugin reset on {engine}", tuple(resets), "s", TARGETS["reset"],
               detail="p50 after a test changed one row and one item"),
        Figure(f"drop and reseed on {engine}", tuple(naive), "s", TARGETS["naive"],
               detail="the naive reset, for comparison"),
    ]


def _resets(settings: Settings, runs: int) -> tuple[list[float], list[float]]:
    import psycopg

    from bootstrap.ddb.schema import schema_load
    from bootstrap.ddb.seed import seed_from_fixtures
    from bootstrap.ddb.table import TableSpec
    from bootstrap.fixtures.parse import load_fixtures
    from bootstrap.pg.seed import setup_database
    from bootstrap.states.worker import prepare

    environment = prepare(settings, endpoints_for(settings), "bench")
    endpoints = environment.endpoints
    dynamodb = endpoints.client("dynamodb")
    try:
        resets = []
        for _ in range(RESET_SAMPLES):
            with psycopg.connect(endpoints.postgres_url) as conn:
                conn.execute("update users set display_name = %s where handle = (select min(handle) from users)",
                             (uuid.uuid4().hex,))
            dynamodb.put_item(TableName=environment.table_name,
                              Item={"pk": {"S": "MSG#bench"}, "sk": {"S": uuid.uuid4().hex}})
            started = time.perf_counter()
            environment.reset()
            resets.append(time.perf_counter() - started)
        fixtures = load_fixtures(settings.seeds_dir)
        own = settings.with_values(table_name=environment.table_name)
        naive = []
        for _ in range(runs):
            started = time.perf_counter()
            setup_database(endpoints, fixtures, fresh=True)
            schema_load(endpoints, TableSpec(environment.table_name), recreate=True)
            seed_from_fixtures(endpoints, own, fixtures)
            naive.append(time.perf_counter() - started)
    finally:
        environment.remove()
    return resets, naive
