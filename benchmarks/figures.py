"""The benchmark's pure parts: options, sizes, figures against their targets, ratios and the report's rows.

Nothing here measures or prints; ``tests/test_bench.py`` tests it with plain values.
The peak-RSS wrapper lives here too: a tiny parent process whose own children are
all that ``getrusage(RUSAGE_CHILDREN)`` counts.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from typing import Any, Sequence

import benchmarks

DESCRIPTION = (benchmarks.__doc__ or "").splitlines()[0]
ENGINES = ("moto", "dynamodb-local")

# A child's peak RSS, read by a tiny parent process so nothing else is counted.
RSS_WRAPPER = (
    "import resource, subprocess, sys\n"
    "code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE).returncode\n"
    "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, code)\n"
)


# --- options and sizes --------------------------------------------------------------


@dataclass(frozen=True)
class Options:
    runs: int = 3
    quick: bool = False
    json: bool = False
    floors: bool = False
    states: bool = False
    transfer: str | None = None  # the larger table of the export/import figures, instead of the size's


@dataclass(frozen=True)
class Sizes:
    """How much work each measurement does: full size, or small for ``--quick``."""

    seed: str  # GROUPS:MESSAGES of the seeding comparison on moto
    seed_dynamodb_local: str  # the same on DynamoDB Local, whose disk-bound writes are far slower here
    cognito_users: int
    rss_small: str
    rss_large: str
    # state.export / state.import of a table grown from the first to the second (GROUPS:MESSAGES; 98 messages
    # and 2 group items a group: 10,000 and 200,000 items)
    transfer_small: str = "100:98"
    transfer_large: str = "2000:98"


FULL = Sizes(seed="100:100", seed_dynamodb_local="20:100", cognito_users=1000, rss_small="100:100",
             rss_large="2000:100")
QUICK = Sizes(seed="10:100", seed_dynamodb_local="5:100", cognito_users=100, rss_small="10:100",
              rss_large="200:100", transfer_small="10:98", transfer_large="200:98")


def parse_args(argv: Sequence[str] | None = None) -> Options:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=DESCRIPTION)
    parser.add_argument("--runs", type=int, default=None,
                        help="runs per timed figure, three times as many for the sub-second ones; each figure "
                             "is their median (default 3, 1 with --quick)")
    parser.add_argument("--quick", action="store_true",
                        help="a fast smoke run: one run each and a tenth of the data (targets are for full size)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON instead of a table")
    parser.add_argument("--floors", action="store_true",
                        help="only each user-facing time beside its floor (cold up beside DynamoDB Local alone, "
                             "warm up beside a process asking each service one question, ddb.seed from the shell "
                             "beside the raw ceiling, ephemeral beside on disk)")
    parser.add_argument("--states", action="store_true",
                        help="only the named states' figures: state.load seeded beside a cold up, the pytest plugin's "
                             "reset beside dropping and reseeding, and state.export / state.import of a growing "
                             "table (peak RSS, the import against the raw ceiling)")
    parser.add_argument("--transfer", metavar="GROUPS:MESSAGES", default=None,
                        help="the larger table that state.export and state.import move, as ddb.seed --synthetic "
                             "takes it (default 2000:98, 200,000 items; 200:98 with --quick)")
    args = parser.parse_args(argv)
    if args.transfer is not None:
        try:
            groups, per_group = (int(part) for part in args.transfer.split(":"))
        except ValueError:
            groups = per_group = 0
        if groups < 1 or per_group < 1:
            parser.error(f"--transfer {args.transfer!r}: give GROUPS:MESSAGES, two positive whole numbers")
    runs = args.runs if args.runs is not None else (1 if args.quick else 3)
    if runs < 1:
        parser.error("--runs must be at least 1")
    if args.floors and args.states:
        parser.error("--floors and --states each choose a part of the run: give one")
    return Options(runs=runs, quick=args.quick, json=args.json, floors=args.floors, states=args.states,
                   transfer=args.transfer)


def sizes_for(options: Options) -> Sizes:
    sizes = QUICK if options.quick else FULL
    return replace(sizes, transfer_large=options.transfer) if options.transfer else sizes


def median(values: Sequence[float]) -> float:
    if not values:
        raise ValueError("median of no values")
    return float(statistics.median(values))


# --- figures and targets ------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """``value <= limit`` (``at_most``) or ``value >= limit``."""

    limit: float
    unit: str
    at_most: bool = True

    def __str__(self) -> str:
        return f"{'≤' if self.at_most else '≥'} {_number(self.limit, self.unit)}"

    def met(self, value: float) -> bool:
        return value <= self.limit if self.at_most else value >= self.limit


@dataclass(frozen=True)
class Figure:
    """One line of the report: a measurement's samples (value: their median) against its target, if it has one."""

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
    "transfer_ceiling": Target(0.85, "×", at_most=False),
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
        Figure(f"peak RSS ddb.seed --synthetic {small}", (small_kib / 1024,), "MB", detail=messages(small)),
        Figure(f"peak RSS ddb.seed --synthetic {large}", (large_kib / 1024,), "MB", detail=messages(large)),
        Figure("peak RSS growth", (growth,), "×", TARGETS["rss_ratio"], detail=f"{large} ÷ {small}"),
    ]


def transfer_figures(engine: str, task: str, small: str, small_kib: int, large: str, large_kib: int,
                     items: int, seconds: float | None = None, ceiling_seconds: float | None = None) -> list[Figure]:
    """Peak RSS of ``task`` on a table of ``small`` and of ``large`` items, their ratio, and, given the times,
    its rate of the larger against the engine's raw batch-write ceiling on the same items."""
    figures = [
        Figure(f"peak RSS {task} on {engine}, {items_of(small):,} items", (small_kib / 1024,), "MB"),
        Figure(f"peak RSS {task} on {engine}, {items_of(large):,} items", (large_kib / 1024,), "MB"),
        Figure(f"peak RSS growth of {task} on {engine}", (ratio(large_kib, small_kib),), "×", TARGETS["rss_ratio"],
               detail=f"{items_of(large):,} ÷ {items_of(small):,} items"),
    ]
    if seconds is not None and ceiling_seconds is not None:
        figures += [
            Figure(f"{task} on {engine}", (items / seconds,), "items/s", detail=f"{items:,} items, the task end to end"),
            Figure(f"{task} on {engine} ÷ raw ceiling", (ratio(ceiling_seconds, seconds),), "×",
                   TARGETS["transfer_ceiling"], detail="bare BatchWriteItem of the same items, this run"),
        ]
    return figures


def items_of(synthetic: str) -> int:
    """The items ``ddb.seed --synthetic GROUPS:MESSAGES`` writes: each group's messages and its two group items."""
    groups, per_group = (int(part) for part in synthetic.split(":"))
    return groups * (per_group + 2)


def messages(synthetic: str) -> str:
    """``GROUPS:MESSAGES`` (a ``--synthetic`` value) as the number of messages it writes."""
    groups, per_group = (int(part) for part in synthetic.split(":"))
    return f"{groups * per_group:,} messages"


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
