"""Named states measured: ``invoke state.load seeded`` against a cold ``up``, the pytest plugin's reset, and
``state.export`` / ``state.import`` of a growing table.

``state.load seeded`` is timed as a user runs it (the task as a process), in
a state folder that a cold ``up`` just prepared; its figure is the median
load over the median cold ``up`` of the same engine in the same run. The
reset is the pytest plugin's (``bootstrap.states.worker``), timed in process
as the plugin calls it, after a "test" that changed one row and one item;
beside it, the naive way of getting back there: drop and reseed the
database and the table.

Export and import are run as a user runs them, on a table that
``ddb.seed --synthetic`` grew to a small and then a large size: the peak RSS
of ``state.save`` (which reads the table), ``state.export`` and
``state.import`` at each size (flat: they stream, one item per line in,
batches out), and the import's rate on the large table (into a dropped
table, so it writes every item) against the engine's raw batch-write ceiling
on the same items in the same run.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path

from benchmarks.commands import peak_rss, purged, fresh_cli, say, timed
from benchmarks.figures import Figure, Target, items_of, median, transfer_figures
from benchmarks.inprocess import Stack, raw_batches, timed_on_fresh_table
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
            loads.append(timed(cli, "state.load", "--name", "seeded"))
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

    from bootstrap.ddb.schema import drop_table, schema_load
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
            # Dropped, not schema_load(recreate=True): that keeps a table whose key schema matches, items and all.
            drop_table(endpoints, environment.table_name)
            schema_load(endpoints, TableSpec(environment.table_name))
            seed_from_fixtures(endpoints, own, fixtures)
            naive.append(time.perf_counter() - started)
    finally:
        environment.remove()
    return resets, naive


TRANSFER_TASKS = ("state.save", "state.export", "state.import")


def measure_transfer(root: Path, engine: str, small: str, large: str) -> list[Figure]:
    """Peak RSS of save, export and import at both sizes; the import's rate on the large table against the ceiling."""
    from bootstrap.ddb.placement import parse_synthetic

    peaks: dict[str, list[int]] = {task: [] for task in TRANSFER_TASKS}
    seconds: dict[str, float] = {}
    with purged(fresh_cli(root, engine)) as cli:
        timed(cli, "up")
        archive = str(cli.state_dir.parent / "transfer.tar")
        for size in (small, large):
            say(f"  ddb.seed --synthetic {size} ({items_of(size):,} items) on {engine}…")
            timed(cli, "ddb.seed", "--synthetic", size)
            # Flags, not bare words: a bare word is not taken as NAME or FILE (see the report of #26's finish).
            for task, args in (("state.save", ("--name", "big")), ("state.export", ("--name", "big", "--file", archive)),
                               ("state.import", ("--file", archive, "--name", "big"))):
                if task == "state.import":
                    timed(cli, "ddb.drop")  # the import creates the table again and writes every item
                started = time.perf_counter()
                peaks[task].append(peak_rss(cli, task, *args))
                seconds[task] = time.perf_counter() - started
                say(f"  {task} of {items_of(size):,} items: {seconds[task]:.1f}s, "
                    f"peak RSS {peaks[task][-1] / 1024:.1f} MB")
        settings = resolve_settings({}, cli.env, {})
        say(f"  the raw batch-write ceiling on {items_of(large):,} items…")
        ceiling = timed_on_fresh_table(Stack(settings, endpoints_for(settings)),
                                       raw_batches(endpoints_for(settings), parse_synthetic(large)))
        say(f"  raw ceiling: {ceiling:.1f}s")
    figures = []
    for task in TRANSFER_TASKS:
        timing = (seconds[task], ceiling) if task == "state.import" else (None, None)
        figures += transfer_figures(engine, task, small, peaks[task][0], large, peaks[task][1], items_of(large),
                                    *timing)
    return figures
