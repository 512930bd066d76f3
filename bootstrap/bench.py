"""The performance benchmark: ``python -m bootstrap.bench [--runs N] [--quick] [--json]``.

Measures, on the machine it runs on, what the project promises to be fast:
cold and warm ``invoke up`` on each DynamoDB engine (moto, and AWS's DynamoDB
Local where it can run), DynamoDB seeding on each engine against two
references on the same endpoint in the same run (one ``put_item`` per item,
and the engine's ceiling: raw BatchWriteItem calls of the same items from
four threads with nothing else going on), the Cognito id sync against one
UPDATE per user over a new connection, the peak memory of ``ddb.seed
--synthetic`` at two sizes, and ``invoke --list``.
Each time is the median of ``--runs`` runs (three times as many for the
sub-second ones); the peak memory is read once per size (it is a high-water
mark, not a time). Every figure is printed next to its target with pass or miss.

``invoke`` is measured as a separate process, the way a user runs it, in temp
state folders on free ports, with our modules' bytecode written first (as any
first run writes it where ``PYTHONDONTWRITEBYTECODE`` is not set). A warm
run is an ``up`` with nothing to do, right after a cold one in the same state
folder; its share of the cold time has a target. Seeding and the sync run in-process
against embedded stacks (Postgres and the engine) that the benchmark starts
itself. All of it is stopped and deleted at the end, also on Ctrl-C or error.

Assumes Linux (``resource.getrusage`` for peak RSS) and the project venv.
Planning and formatting are pure; measuring is thin.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import logging
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence


if TYPE_CHECKING:
    from .config import Endpoints, Settings
    from .ddb.placement import SyntheticSpec
    from .ddb.table import TableSpec

log = logging.getLogger(__name__)

PROJECT_ROOT = Path(__file__).resolve().parent.parent
# Variables of the user's own environment that would point the measured runs elsewhere.
FOREIGN_PREFIXES = ("CRUDDUR_", "AWS_", "CONNECTION_URL", "PROD_CONNECTION_URL", "INVOKE_")
INVOKE_TIMEOUT = 1800.0
# Sub-second figures (warm up, --list) take this many samples per run: they are
# cheap, and a VM's moments of contention move their medians the most.
FAST_SAMPLES_PER_RUN = 3
COGNITO_SETUP_THREADS = 8

# A child's peak RSS, read by a tiny parent process so nothing else is counted.
RSS_WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)\n"
)


def say(message: str) -> None:
    """A progress line on stderr, printed literally: rich would turn ``100:100`` into an emoji."""
    from .console import console

    console(stderr=True).print(message, markup=False, emoji=False, highlight=False)


# --- options and sizes (pure) --------------------------------------------------------


@dataclass(frozen=True)
class Options:
    runs: int = 3
    quick: bool = False
    json: bool = False


@dataclass(frozen=True)
class Sizes:
    """How much work each measurement does: full size, or small for ``--quick``."""

    seed: str  # GROUPS:MESSAGES of the seeding comparison on moto
    seed_dynamodb_local: str  # the same on DynamoDB Local, whose disk-bound writes are far slower here
    cognito_users: int
    rss_small: str
    rss_large: str


FULL = Sizes(seed="100:100", seed_dynamodb_local="20:100", cognito_users=1000, rss_small="100:100",
             rss_large="2000:100")
QUICK = Sizes(seed="10:100", seed_dynamodb_local="5:100", cognito_users=100, rss_small="10:100",
              rss_large="200:100")
ENGINES = ("moto", "dynamodb-local")


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m bootstrap.bench", description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=None,
                        help="runs per timed figure, three times as many for the sub-second ones; each figure "
                             "is their median (default 3, 1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="a fast smoke run: one run each and a tenth of the data (targets are for full size)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    args = parser.parse_args(argv)
    runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    if runs < 1:
        parser.error("--runs must be at least 1")
    return Options(runs=runs, quick=args.quick, json=args.json)


def sizes_for(options: Options) -> Sizes:
    return QUICK if options.quick else FULL


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))


# --- figures and targets (pure) --------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """``value <= limit`` (``at_most``) or ``value >= limit``."""

    limit: float
    unit: str
    at_most: bool = True

    def met(self, value: float) -> bool:
        return value <= self.limit if self.at_most else value >= self.limit

    def __str__(self) -> str:
        return f"{'≤' if self.at_most else '≥'} {_number(self.limit, self.unit)}"


@dataclass(frozen=True)
class Figure:
    name: str
    samples: tuple[float, ...]
    unit: str
    target: Target | None = None
    detail: str = ""

    @property
    def value(self) -> float:
        return median(self.samples)

    @property
    def passed(self) -> bool | None:
        return None if self.target is None else self.target.met(self.value)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name, "value": round(self.value, 4), "unit": self.unit, "runs": len(self.samples),
            "samples": [round(s, 4) for s in self.samples],
            "target": str(self.target) if self.target else None, "passed": self.passed, "detail": self.detail,
        }


TARGETS = {
    "cold": Target(4.0, "s"),
    "warm": Target(0.8, "s"),
    "warm_share": Target(0.35, "×"),
    "seed_ratio": Target(8.0, "×", at_most=False),
    "seed_ceiling": Target(0.85, "×", at_most=False),
    "sync": Target(1.0, "s"),
    "rss_ratio": Target(1.10, "×"),
    "list": Target(0.3, "s"),
}


def _number(value: float, unit: str) -> str:
    if unit == "s":
        return f"{value:.2f} s"
    if unit == "×":
        return f"{value:.2f}×"
    if unit == "MB":
        return f"{value:.1f} MB"
    return f"{value:,.0f} {unit}"


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("inf")


def paired_ratios(slower_seconds: Sequence[float], faster_seconds: Sequence[float]) -> tuple[float, ...]:
    """Each run's ratio: both ways of a run are timed back to back, so both see the machine in the same state."""
    return tuple(ratio(slow, fast) for slow, fast in zip(slower_seconds, faster_seconds))


def seeding_figures(engine: str, label: str, ours_seconds: Sequence[float], baseline_seconds: Sequence[float],
                    ceiling_seconds: Sequence[float], items: int) -> list[Figure]:
    """Items/s of the three ways on one engine; ours against one put_item per item and against the ceiling.

    Each ratio is the median of the runs' own ratios (the three ways of a run are timed back to back).
    moto's speed-up over put_item has a target; on DynamoDB Local only the share of the ceiling has one.
    """
    def rate(seconds: Sequence[float]) -> tuple[float, ...]:
        return tuple(items / s for s in seconds)

    return [
        Figure(f"ddb seed on {engine} {label}: ours", rate(ours_seconds), "items/s",
               detail=f"{items:,} items, BatchWriteItem from threads"),
        Figure(f"ddb seed on {engine}: 1 put_item per item", rate(baseline_seconds), "items/s", detail="sequential"),
        Figure(f"ddb seed on {engine}: raw ceiling", rate(ceiling_seconds), "items/s",
               detail="the same items, prepared, raw BatchWriteItem from 4 threads"),
        Figure(f"ddb seed on {engine}: speed-up", paired_ratios(baseline_seconds, ours_seconds), "×",
               TARGETS["seed_ratio"] if engine == "moto" else None, detail="put_item time ÷ ours, per run"),
        Figure(f"ddb seed on {engine}: share of the ceiling", paired_ratios(ceiling_seconds, ours_seconds), "×",
               TARGETS["seed_ceiling"], detail="ceiling time ÷ ours, per run"),
    ]


def sync_figures(users: int, ours_seconds: Sequence[float], baseline_seconds: Sequence[float]) -> list[Figure]:
    return [
        Figure(f"cognito sync {users:,} users: ours", tuple(ours_seconds), "s", TARGETS["sync"],
               detail="list_users + one UPDATE"),
        Figure(f"cognito sync {users:,} users: 1 UPDATE per user", tuple(baseline_seconds), "s",
               detail="list_users + new connection per user"),
        Figure("cognito sync speed-up", paired_ratios(baseline_seconds, ours_seconds), "×",
               detail="1-UPDATE-per-user time ÷ ours, per run"),
    ]


def rss_figures(small: str, small_kib: int, large: str, large_kib: int) -> list[Figure]:
    """Peak RSS of the two seed runs (ru_maxrss is KiB on Linux) and their ratio."""
    growth = ratio(large_kib, small_kib)
    return [
        Figure(f"peak RSS ddb.seed --synthetic {small}", (small_kib / 1024,), "MB", detail=_messages(small)),
        Figure(f"peak RSS ddb.seed --synthetic {large}", (large_kib / 1024,), "MB", detail=_messages(large)),
        Figure("peak RSS growth", (growth,), "×", TARGETS["rss_ratio"], detail=f"{large} ÷ {small}"),
    ]


def _messages(synthetic: str) -> str:
    groups, messages = (int(part) for part in synthetic.split(":"))
    return f"{groups * messages:,} messages"


def figure_rows(figures: Sequence[Figure]) -> list[list[str]]:
    """Table rows: measurement, median, runs, target, result, detail."""
    rows = []
    for figure in figures:
        result = {None: "", True: "pass", False: "MISS"}[figure.passed]
        rows.append([figure.name, _number(figure.value, figure.unit), str(len(figure.samples)),
                     str(figure.target) if figure.target else "", result, figure.detail])
    return rows


def header(now: datetime | None = None) -> dict[str, Any]:
    moment = (now or datetime.now(timezone.utc)).astimezone()
    return {"date": moment.isoformat(timespec="seconds"), "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "platform": platform.platform(terse=True)}


def report_json(head: dict[str, Any], options: Options, figures: Sequence[Figure]) -> dict[str, Any]:
    return {**head, "runs": options.runs, "quick": options.quick, "figures": [f.to_json() for f in figures],
            "all_passed": all(f.passed is not False for f in figures)}


def title_line(head: dict[str, Any], options: Options) -> str:
    mode = ", quick" if options.quick else ""
    return (f"cruddur-bootstrap benchmark — {head['date']}, {head['cpu_count']} CPUs, Python {head['python']} "
            f"(median of {options.runs} run{'s' if options.runs != 1 else ''}{mode})")


def rss_command(python: str, invoke_args: Sequence[str]) -> list[str]:
    """Run ``python -m invoke ARGS`` under the wrapper that prints the child's peak RSS and exit code."""
    return [python, "-c", RSS_WRAPPER, python, "-m", "invoke", *invoke_args]


def parse_rss_output(stdout: str) -> tuple[int, int]:
    """(peak RSS in KiB, the child's exit code) from the wrapper's last line."""
    kib, code = stdout.strip().splitlines()[-1].split()
    return int(kib), int(code)


# --- invoke as a separate process --------------------------------------------------------


@dataclass
class Cli:
    """Runs ``invoke`` in the project folder against its own state folder and free ports."""

    state_dir: Path
    env: dict[str, str]

    @classmethod
    def fresh(cls, root: Path, engine: str) -> "Cli":
        from .processes import free_port

        state_dir = root / f"cli-{uuid.uuid4().hex[:8]}" / ".cruddur"
        env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_PREFIXES)}
        env.update(CRUDDUR_STATE_DIR=str(state_dir), CRUDDUR_PG_PORT=str(free_port()),
                   CRUDDUR_DDB_PORT=str(free_port()), CRUDDUR_COGNITO_PORT=str(free_port()),
                   CRUDDUR_BACKEND="embedded", CRUDDUR_DDB_ENGINE=engine, NO_COLOR="1")
        return cls(state_dir, env)

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "invoke", *args]

    def run(self, *args: str) -> float:
        """Run ``invoke ARGS``; its wall time in seconds. A failure raises with the tail of its output."""
        started = time.perf_counter()
        result = subprocess.run(self.command(*args), cwd=PROJECT_ROOT, env=self.env, capture_output=True,
                                text=True, timeout=INVOKE_TIMEOUT)
        elapsed = time.perf_counter() - started
        if result.returncode != 0:
            raise RuntimeError(f"invoke {' '.join(args)} exited {result.returncode}:\n{_tail(result.stderr)}"
                               f"{_tail(result.stdout)}")
        return elapsed

    def peak_rss(self, *args: str) -> int:
        """Peak RSS in KiB of ``invoke ARGS`` run as a child of a tiny wrapper process."""
        result = subprocess.run(rss_command(sys.executable, args), cwd=PROJECT_ROOT, env=self.env,
                                capture_output=True, text=True, timeout=INVOKE_TIMEOUT)
        kib, code = parse_rss_output(result.stdout)
        if code != 0:
            raise RuntimeError(f"invoke {' '.join(args)} exited {code}:\n{_tail(result.stderr)}")
        return kib

    def purge(self) -> None:
        """``invoke down --purge``: stop what this state folder started and delete it (never raises)."""
        if not self.state_dir.exists():
            return
        result = subprocess.run(self.command("down", "--purge"), cwd=PROJECT_ROOT, env=self.env,
                                capture_output=True, text=True, timeout=120)
        if result.returncode != 0:
            log.warning("invoke down --purge in %s exited %s: %s", self.state_dir, result.returncode,
                        _tail(result.stderr))


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join(text.strip().splitlines()[-lines:]) + "\n" if text.strip() else ""


@contextlib.contextmanager
def _cli(root: Path, engine: str) -> Iterator[Cli]:
    cli = Cli.fresh(root, engine)
    try:
        yield cli
    finally:
        cli.purge()


def measure_cold_up(root: Path, runs: int, engine: str) -> list[float]:
    samples = []
    for run in range(runs):
        with _cli(root, engine) as cli:
            samples.append(cli.run("up"))
        say(f"  cold up on {engine} {run + 1}/{runs}: {samples[-1]:.2f}s")
    return samples


def compile_project() -> None:
    """Write our modules' bytecode, as the first run of any command does where Python may write it.

    Where ``PYTHONDONTWRITEBYTECODE`` is set nothing writes it, and each run
    compiles the modules it imports again (about 0.07 s for an in-process ``up``).
    """
    import compileall

    compileall.compile_dir(PROJECT_ROOT / "bootstrap", quiet=1)
    compileall.compile_file(PROJECT_ROOT / "tasks.py", quiet=1)


def measure_warm_up(root: Path, runs: int, engine: str, sizes: Sizes | None = None
                    ) -> tuple[list[float], list[Figure]]:
    """Warm ``up`` times; with ``sizes``, then the peak RSS runs in the same state folder."""
    with _cli(root, engine) as cli:
        say(f"  cold up on {engine} to prepare the warm runs")
        cli.run("up")
        warm = []
        for run in range(runs):
            warm.append(cli.run("up"))
            say(f"  warm up on {engine} {run + 1}/{runs}: {warm[-1]:.2f}s")
        if sizes is None:
            return warm, []
        peaks = []
        for synthetic in (sizes.rss_small, sizes.rss_large):
            # An empty table: the seed then writes everything and prunes nothing, at either size.
            cli.run("ddb.schema-load", "--recreate")
            say(f"  peak RSS of ddb.seed --synthetic {synthetic} ({_messages(synthetic)})…")
            peaks.append(cli.peak_rss("ddb.seed", "--synthetic", synthetic))
            say(f"  peak RSS --synthetic {synthetic}: {peaks[-1] / 1024:.1f} MB")
    return warm, rss_figures(sizes.rss_small, peaks[0], sizes.rss_large, peaks[1])


def measure_list(runs: int) -> list[float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(FOREIGN_PREFIXES)}
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run([sys.executable, "-m", "invoke", "--list"], cwd=PROJECT_ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL, timeout=60)
        samples.append(time.perf_counter() - started)
    return samples


# --- one embedded stack for the in-process measurements -----------------------------------


@dataclass(frozen=True)
class Stack:
    settings: Settings
    endpoints: Endpoints


@contextlib.contextmanager
def embedded_stack(root: Path, engine: str) -> Iterator[Stack]:
    """Embedded Postgres and ``engine`` (with moto for Cognito) in ``root``, ready; stopped on the way out."""
    from .config import resolve_settings
    from .lifecycle import running_services
    from .processes import free_port

    settings = resolve_settings({}, {}, {
        "state_dir": str(root / f"stack-{engine}" / ".cruddur"), "pg_port": free_port(), "ddb_port": free_port(),
        "cognito_port": free_port(), "backend": "embedded", "ddb_engine": engine})
    with running_services(settings) as (_, endpoints):
        yield Stack(settings, endpoints)


# --- DynamoDB seeding: ours vs one put_item per item ---------------------------------------


def measure_seeding(root: Path, runs: int, synthetic_text: str, engine: str) -> list[Figure]:
    """The three ways, each run of each on a fresh engine of its own (then stopped and deleted).

    A fresh engine each time, because DynamoDB Local slows down as its file
    fills up (a dropped table's pages are not given back): ways measured one
    after the other on one engine would each find it slower than the last.
    """
    from .ddb.placement import parse_synthetic

    synthetic = parse_synthetic(synthetic_text)
    ways: dict[str, tuple[Callable[[Stack], Callable[[TableSpec], None]], list[float]]] = {
        "ours": (lambda stack: lambda spec: _seed_ours(stack.endpoints, spec, synthetic), []),
        "one put_item per item": (lambda stack: lambda spec: _seed_one_by_one(stack.endpoints, spec, synthetic), []),
        "raw ceiling": (lambda stack: _raw_batches(stack.endpoints, synthetic), []),
    }
    for run in range(runs):
        for name, (writer, samples) in ways.items():
            with embedded_stack(root / f"seed-{uuid.uuid4().hex[:8]}", engine) as stack:
                samples.append(_timed_on_fresh_table(stack, writer(stack)))
        say(f"  seeding on {engine} {run + 1}/{runs}: "
            + ", ".join(f"{name} {samples[-1]:.2f}s" for name, (_, samples) in ways.items()))
    ours, baseline, ceiling = (samples for _, samples in ways.values())
    return seeding_figures(engine, _messages(synthetic_text), ours, baseline, ceiling, synthetic.item_count)


def _timed_on_fresh_table(stack: Stack, write: Callable[[TableSpec], None]) -> float:
    from .ddb.schema import drop_table, schema_load
    from .ddb.table import table_spec

    spec = dataclasses.replace(table_spec(stack.settings), name=f"bench-{uuid.uuid4().hex[:10]}")
    schema_load(stack.endpoints, spec)
    try:
        started = time.perf_counter()
        write(spec)
        return time.perf_counter() - started
    finally:
        drop_table(stack.endpoints, spec.name)  # keeps the engine's memory and files from growing


def _raw_batches(endpoints: Endpoints, synthetic: SyntheticSpec) -> Callable[[TableSpec], None]:
    """The engine's ceiling: the same items, prepared beforehand, sent as bare BatchWriteItem calls from 4 threads.

    No queue, progress, retry policy or pruning: what the endpoint takes with nothing else going on.
    The items are built here, before the clock starts; the returned writer is what is timed.
    """
    import threading

    from .ddb.writer import BATCH_SIZE

    requests = [{"PutRequest": {"Item": item}} for item in _synthetic_items(synthetic)]
    client = endpoints.client("dynamodb")

    def write(spec: TableSpec) -> None:
        batches = [requests[i:i + BATCH_SIZE] for i in range(0, len(requests), BATCH_SIZE)]
        lock = threading.Lock()

        def work() -> None:
            while True:
                with lock:
                    if not batches:
                        return
                    batch = batches.pop()
                unprocessed = client.batch_write_item(RequestItems={spec.name: batch}).get("UnprocessedItems")
                if unprocessed:
                    with lock:
                        batches.append(unprocessed[spec.name])

        threads = [threading.Thread(target=work) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    return write


def _seed_epoch(synthetic: SyntheticSpec) -> datetime:
    from .ddb.placement import choose_epoch

    return choose_epoch(None, datetime.now(timezone.utc), synthetic.span())


def _seed_ours(endpoints: Endpoints, spec: TableSpec, synthetic: SyntheticSpec) -> None:
    from .ddb.seed import seed_conversations

    result = seed_conversations(endpoints, spec, (), {}, _seed_epoch(synthetic), synthetic=synthetic)
    if result.writes != synthetic.item_count:
        raise RuntimeError(f"our seeder wrote {result.writes} of {synthetic.item_count} items")


def _seed_one_by_one(endpoints: Endpoints, spec: TableSpec, synthetic: SyntheticSpec) -> None:
    """The original bin/ddb/seed: the same items, one put_item call each, in order."""
    client = endpoints.client("dynamodb")
    for item in _synthetic_items(synthetic):
        client.put_item(TableName=spec.name, Item=item)


def _synthetic_items(synthetic: SyntheticSpec) -> Iterator[dict[str, Any]]:
    """The items our seeder writes for ``synthetic``, in DynamoDB's wire form, for the two references."""
    from datetime import timedelta

    from .ddb.placement import synthetic_conversations
    from .ddb.table import to_attributes

    epoch = _seed_epoch(synthetic)
    for conversation in synthetic_conversations(synthetic, timedelta(0)):
        for item in conversation.items(epoch):
            yield to_attributes(item)


# --- Cognito sync: ours vs one UPDATE per user over a new connection -----------------------

_INSERT_USERS = """
insert into public.users (handle, display_name, email, cognito_user_id)
select handle, handle, handle || '@example.com', 'MOCK' from unnest(%s::text[]) as handle
"""
_RESET_IDS = "update public.users set cognito_user_id = 'MOCK'"
_UPDATE_ONE = "update public.users set cognito_user_id = %s where handle = %s"


def measure_cognito_sync(stack: Stack, runs: int, users: int) -> list[Figure]:
    from . import cognito
    from .pg.connection import connect

    endpoints = dataclasses.replace(stack.endpoints, postgres_url=_bench_database(stack.endpoints))
    handles = [f"bench_{n:05d}" for n in range(users)]
    pool_id = _pool_with_users(endpoints, handles)
    with connect(endpoints.postgres_url) as conn:
        conn.execute(_INSERT_USERS, (handles,))
    ours, baseline = [], []
    for run in range(runs):
        _reset_ids(endpoints)
        started = time.perf_counter()
        result = cognito.sync_user_ids(endpoints, pool_id)
        ours.append(time.perf_counter() - started)
        if result.writes != users:
            raise RuntimeError(f"the sync updated {result.writes} of {users} users")
        _reset_ids(endpoints)
        started = time.perf_counter()
        _sync_one_by_one(endpoints, pool_id)
        baseline.append(time.perf_counter() - started)
        say(f"  cognito sync {run + 1}/{runs}: ours {ours[-1]:.2f}s, one UPDATE per user {baseline[-1]:.2f}s")
    return sync_figures(users, ours, baseline)


def _bench_database(endpoints: Endpoints) -> str:
    from .config import with_database
    from .pg.database import create_database
    from .pg.schema import load_schema

    url = with_database(endpoints.postgres_url, f"bench_{uuid.uuid4().hex[:8]}")
    bench = dataclasses.replace(endpoints, postgres_url=url)
    create_database(bench)
    load_schema(bench)
    return url


def _pool_with_users(endpoints: Endpoints, handles: Sequence[str]) -> str:
    """A new pool with one user per handle, created directly (no stable-id seeding) from a few threads."""
    from concurrent.futures import ThreadPoolExecutor

    client = endpoints.client("cognito-idp")
    pool_id = client.create_user_pool(PoolName=f"bench-{uuid.uuid4().hex[:8]}")["UserPool"]["Id"]

    def create(handle: str) -> None:
        client.admin_create_user(UserPoolId=pool_id, Username=handle, MessageAction="SUPPRESS",
                                 UserAttributes=[{"Name": "preferred_username", "Value": handle}])

    with ThreadPoolExecutor(COGNITO_SETUP_THREADS) as pool:
        list(pool.map(create, handles))
    return pool_id


def _reset_ids(endpoints: Endpoints) -> None:
    from .pg.connection import connect

    with connect(endpoints.postgres_url) as conn:
        conn.execute(_RESET_IDS)


def _sync_one_by_one(endpoints: Endpoints, pool_id: str) -> None:
    """The original bin/db/update_cognito_user_ids: list the users, then one connection and UPDATE per user."""
    from .cognito import list_users
    from .pg.connection import connect

    for user in list_users(endpoints, pool_id):
        with connect(endpoints.postgres_url) as conn:
            conn.execute(_UPDATE_ONE, (user.sub, user.handle))


# --- the run ---------------------------------------------------------------------------


def run_benchmark(options: Options) -> list[Figure]:
    from .config import resolve_settings
    from .services.dynamodb_local import availability

    sizes = sizes_for(options)
    runs = options.runs
    fast = runs * FAST_SAMPLES_PER_RUN
    # DynamoDB Local as `invoke up` would find it, in the user's own settings (their cache folder).
    local_ok, local_why = availability(resolve_settings())
    engines = ENGINES if local_ok else ENGINES[:1]
    if not local_ok:
        say(f"DynamoDB Local is left out: {local_why}")
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory(prefix="cruddur-bench-") as temp:
        root = Path(temp)
        compile_project()
        cold: dict[str, list[float]] = {}
        for engine in engines:
            say(f"cold invoke up on {engine} ({runs} runs)")
            cold[engine] = measure_cold_up(root, runs, engine)
            figures.append(Figure(f"invoke up on {engine}, cold", tuple(cold[engine]), "s", TARGETS["cold"],
                                  detail="no .cruddur/ → verified"))
        for engine in engines:
            with_rss = sizes if engine == "moto" else None
            say(f"warm invoke up on {engine} ({fast} runs)"
                + (", and the peak RSS of ddb.seed in the same state folder" if with_rss else ""))
            warm, rss = measure_warm_up(root, fast, engine, with_rss)
            figures.append(Figure(f"invoke up on {engine}, warm", tuple(warm), "s", TARGETS["warm"],
                                  detail="everything up to date"))
            figures.append(Figure(f"invoke up on {engine}, warm ÷ cold", (median(warm) / median(cold[engine]),),
                                  "×", TARGETS["warm_share"], detail="medians of this run"))
            figures.extend(rss)
        for engine in engines:
            seed = sizes.seed if engine == "moto" else sizes.seed_dynamodb_local
            say(f"DynamoDB seeding of {_messages(seed)} on {engine} ({runs} runs, 3 ways, each on a fresh engine)")
            figures.extend(measure_seeding(root, runs, seed, engine))
        say("starting an embedded stack on moto for the Cognito sync")
        with embedded_stack(root, "moto") as stack:
            say(f"Cognito sync of {sizes.cognito_users:,} users ({runs} runs each way)")
            figures.extend(measure_cognito_sync(stack, runs, sizes.cognito_users))
        say(f"invoke --list ({fast} runs)")
        figures.append(Figure("invoke --list", tuple(measure_list(fast)), "s", TARGETS["list"],
                              detail="import cost of tasks.py"))
    return figures


def print_report(head: dict[str, Any], options: Options, figures: Sequence[Figure]) -> None:
    from .console import print_json, print_table

    if options.json:
        print_json(report_json(head, options, figures))
        return
    print_table(["measurement", "median", "runs", "target", "result", "detail"], figure_rows(figures),
                title=title_line(head, options))


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """0 when every measurement ran (missed targets show in the table), 1 when one failed, 130 on Ctrl-C."""
    from .errors import BootstrapError

    options = parse_args(argv)
    head = header()
    say(title_line(head, options))
    # A `kill` cleans up like Ctrl-C: the temp state folders' services are stopped on the way out.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        figures = run_benchmark(options)
    except KeyboardInterrupt:
        say("interrupted; everything the benchmark started was stopped")
        return 130
    except (BootstrapError, RuntimeError, subprocess.SubprocessError) as exc:
        say(f"benchmark failed: {exc}")
        return 1
    print_report(head, options, figures)
    return 0


if __name__ == "__main__":
    sys.exit(main())
