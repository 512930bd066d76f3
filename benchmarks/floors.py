"""Each user-facing time beside its own floor, measured in the same run on the same machine (#27).

- cold ``invoke up`` on DynamoDB Local beside DynamoDB Local's own time to first
  answer: the jar alone, started with the same flags, until ListTables answers;
- warm ``invoke up`` beside its floor: a Python process that imports invoke,
  boto3 and psycopg and asks each service one question (DescribeTable,
  DescribeUserPool, ``select 1``), in the same state folder right after;
- ``invoke ddb.seed --synthetic 100:100`` from the shell (its time minus a plain
  ``invoke ddb.seed``'s, both on an emptied table) beside the raw ceiling: the
  same items, prepared, as bare BatchWriteItem calls from four threads on the
  same endpoint right after;
- the same with ``--ephemeral`` (``CRUDDUR_EPHEMERAL=1``): seeding on DynamoDB
  Local against its on-disk rate, and cold ``up`` against on disk.

Each pair is timed back to back within a run, and each figure is the median of
the runs' own differences or ratios.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Sequence

from benchmarks.commands import BenchmarkFailed, empty_table, fresh_cli, purged, say, timed
from benchmarks.figures import Figure, Target, median, messages, paired_ratios
from benchmarks.inprocess import raw_batches
from bootstrap.config import Endpoints, resolve_settings
from bootstrap.ddb.placement import parse_synthetic
from bootstrap.ddb.table import table_spec
from bootstrap.processes import free_port
from bootstrap.services.dynamodb_local import DynamoDBLocal
from bootstrap.state import StateDir
from tests.helpers import Cli

SEED = "100:100"
FLOOR_TARGETS = {
    "cold_over_jar": Target(1.0, "s"),
    "warm_over_floor": Target(0.1, "s"),
    "seed_share": Target(0.85, "×", at_most=False),
    "ephemeral_seed": Target(3.0, "×", at_most=False),
    "ephemeral_cold": Target(1.0, "×"),
}

# The warm floor: what any tool must pay to know nothing changed (imports, one question to each service).
FLOOR_SCRIPT = """
import os, sys
import invoke, boto3, psycopg
table, pool = sys.argv[1:3]
region = os.environ["AWS_DEFAULT_REGION"]
boto3.client("dynamodb", region_name=region).describe_table(TableName=table)
cognito = os.environ.get("AWS_ENDPOINT_URL_COGNITO_IDENTITY_PROVIDER") or os.environ["AWS_ENDPOINT_URL"]
boto3.client("cognito-idp", region_name=region, endpoint_url=cognito).describe_user_pool(UserPoolId=pool)
with psycopg.connect(os.environ["CONNECTION_URL"]) as conn:
    conn.execute("select 1")
"""


def differences(slower: Sequence[float], faster: Sequence[float]) -> tuple[float, ...]:
    return tuple(slow - fast for slow, fast in zip(slower, faster))


def measure_floors(root: Path, runs: int, fast: int, engines: Sequence[str]) -> list[Figure]:
    figures: list[Figure] = []
    if "dynamodb-local" in engines:
        figures.extend(_cold_against_jar(root, runs))
    for engine in engines:
        figures.extend(_warm_against_floor(root, fast, engine))
    seeding: dict[tuple[str, bool], tuple[float, ...]] = {}
    for engine in engines:
        for ephemeral in ((False, True) if engine == "dynamodb-local" else (False,)):
            rates, shares = _seed_against_ceiling(root, runs, engine, ephemeral)
            seeding[engine, ephemeral] = rates
            label = f"{engine}{', ephemeral' if ephemeral else ''}"
            figures.append(Figure(f"invoke ddb.seed --synthetic {SEED} on {label}", rates, "items/s",
                                  detail="end to end from the shell, minus a plain ddb.seed"))
            figures.append(Figure(f"  share of the raw ceiling on {label}", shares, "×", FLOOR_TARGETS["seed_share"],
                                  detail="raw 4-thread BatchWriteItem, same items, same table emptied the same way, before and after"))
    if ("dynamodb-local", True) in seeding:
        figures.append(Figure("  ephemeral ÷ on-disk seeding on dynamodb-local",
                              (median(seeding["dynamodb-local", True]) / median(seeding["dynamodb-local", False]),),
                              "×", FLOOR_TARGETS["ephemeral_seed"], detail="medians of this run"))
    return figures


def _cold_against_jar(root: Path, runs: int) -> list[Figure]:
    jar, cold, ephemeral = [], [], []
    for run in range(runs):
        jar.append(jar_first_answer(root))
        with purged(fresh_cli(root, "dynamodb-local")) as cli:
            cold.append(timed(cli, "up"))
        with purged(_ephemeral(fresh_cli(root, "dynamodb-local"))) as cli:
            ephemeral.append(timed(cli, "up"))
        say(f"  DynamoDB Local alone {jar[-1]:.2f}s; cold up {cold[-1]:.2f}s; ephemeral {ephemeral[-1]:.2f}s "
            f"({run + 1}/{runs})")
    return [
        Figure("DynamoDB Local alone: first answer", tuple(jar), "s",
               detail="the jar with up's flags (-sharedDb -disableTelemetry -dbPath) until ListTables answers"),
        Figure("invoke up on dynamodb-local, cold", tuple(cold), "s", detail="no .cruddur/ → verified"),
        Figure("  cold up − DynamoDB Local alone", differences(cold, jar), "s", FLOOR_TARGETS["cold_over_jar"],
               detail="per run"),
        Figure("invoke up --ephemeral on dynamodb-local, cold", tuple(ephemeral), "s",
               detail="-inMemory, Postgres without fsync"),
        Figure("  ephemeral ÷ on-disk cold up", paired_ratios(ephemeral, cold), "×", FLOOR_TARGETS["ephemeral_cold"],
               detail="per run; ≤ 1: no slower"),
    ]


def jar_first_answer(root: Path) -> float:
    """DynamoDB Local started alone, exactly as ``up`` starts it; seconds until its first ListTables answer."""
    state = StateDir(root / f"jar-{uuid.uuid4().hex[:8]}" / ".cruddur").ensure()
    settings = resolve_settings({}, {}, {"state_dir": str(state.root), "ddb_engine": "dynamodb-local"})
    port = free_port()
    command = DynamoDBLocal(settings, state).command(port)
    client = Endpoints("", f"http://localhost:{port}", settings.region).client("dynamodb", timeout=2)
    started = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while True:
            try:
                client.list_tables(Limit=1)
                return time.perf_counter() - started
            except Exception:  # noqa: BLE001 -- not answering yet, whatever the way
                if process.poll() is not None:
                    raise BenchmarkFailed(f"DynamoDB Local alone exited {process.returncode}") from None
                if time.perf_counter() - started > 120:
                    raise BenchmarkFailed("DynamoDB Local alone did not answer in 120 s") from None
                time.sleep(0.02)
    finally:
        process.terminate()
        process.wait(30)


def _warm_against_floor(root: Path, samples: int, engine: str) -> list[Figure]:
    warm, floor = [], []
    with purged(fresh_cli(root, engine)) as cli:
        timed(cli, "up")
        exported = cli.exported()
        variables = {name: value for name, value in exported.items()}
        arguments = [sys.executable, "-c", FLOOR_SCRIPT, "cruddur-messages", exported["AWS_COGNITO_USER_POOL_ID"]]
        for _ in range(samples):
            warm.append(timed(cli, "up"))
            started = time.perf_counter()
            result = cli.run(arguments, check=False, **variables)  # type: ignore[arg-type]  # environment names only
            floor.append(time.perf_counter() - started)
            if result.returncode != 0:
                raise BenchmarkFailed(f"the warm floor's process failed:\n{result.stderr[-2000:]}")
        say(f"  warm up on {engine} {median(warm):.3f}s, its floor {median(floor):.3f}s")
    return [
        Figure(f"invoke up on {engine}, warm", tuple(warm), "s", detail="everything up to date"),
        Figure(f"  floor on {engine}", tuple(floor), "s",
               detail="python importing invoke, boto3, psycopg; DescribeTable, DescribeUserPool, select 1"),
        Figure(f"  warm up − floor on {engine}", differences(warm, floor), "s", FLOOR_TARGETS["warm_over_floor"],
               detail="per run"),
    ]


def _seed_against_ceiling(root: Path, runs: int, engine: str, ephemeral: bool
                          ) -> tuple[tuple[float, ...], tuple[float, ...]]:
    synthetic = parse_synthetic(SEED)
    items = synthetic.item_count
    rates, shares = [], []
    cli = fresh_cli(root, engine)
    with purged(_ephemeral(cli) if ephemeral else cli) as cli:
        timed(cli, "up")
        endpoints = cli.endpoints()
        settings = resolve_settings({}, {}, {})
        write = raw_batches(endpoints, synthetic)

        def raw_write() -> float:
            # Into the task's own table, emptied the task's way: on DynamoDB Local a write's cost depends on the
            # table and on what the shared file holds (a second table took items 2-4× slower here), so the
            # reference must write where the task writes. It runs before and after the task, and the mean
            # counts: the file grows with every table dropped, which would favour whichever went first.
            empty_table(cli)
            started = time.perf_counter()
            write(table_spec(settings))
            return time.perf_counter() - started

        for run in range(runs):
            before = raw_write()
            empty_table(cli)
            plain = timed(cli, "ddb.seed")
            empty_table(cli)
            task = timed(cli, "ddb.seed", "--synthetic", SEED) - plain
            raw = (before + raw_write()) / 2
            rates.append(items / task)
            shares.append(raw / task)
            say(f"  ddb.seed --synthetic {SEED} ({messages(SEED)}) on {engine}{' ephemeral' if ephemeral else ''}: "
                f"{items / task:,.0f} items/s end to end, raw ceiling {items / raw:,.0f} ({run + 1}/{runs})")
    return tuple(rates), tuple(shares)


def _ephemeral(cli: Cli) -> Cli:
    return Cli(cli.state_dir, {**cli.env, "CRUDDUR_EPHEMERAL": "1"})
