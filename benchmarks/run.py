"""The whole benchmark run, its report and its exit code (``python -m benchmarks``).

Exit codes come from the project's one mapping, ``bootstrap.errors.exit_status``:
0 when every measurement ran (missed targets show in the table), 1 when one
failed (``BenchmarkFailed``, any error of ours or a library's failure it maps), 130
on Ctrl-C or ``kill``, 70 for a bug (``CRUDDUR_DEBUG=1`` shows its traceback).
"""

from __future__ import annotations

import signal
import tempfile
from pathlib import Path
from typing import Any, Sequence

from benchmarks.commands import compile_project, measure_cold_up, measure_list, measure_warm_up, say
from benchmarks.figures import (
    ENGINES, TARGETS, Figure, Options, figure_rows, header, median, messages, parse_args, report_json, sizes_for, title_line,
)
from benchmarks.floors import measure_floors
from benchmarks.inprocess import embedded_stack, measure_cognito_sync, measure_seeding
from benchmarks.states import measure_states, measure_transfer
from bootstrap.config import resolve_settings
from bootstrap.console import print_json, print_table
from bootstrap.services.dynamodb_local import availability
from bootstrap.errors import debugging, exit_status

# Sub-second figures (warm up, --list) take this many samples per run: they are
# cheap, and a VM's moments of contention move their medians the most.
FAST_SAMPLES_PER_RUN = 3


def run_benchmark(options: Options) -> list[Figure]:
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
        if not options.states:
            say("each user-facing time beside its floor, in this run")
            figures.extend(measure_floors(root, runs, fast, engines))
            if options.floors:
                return figures
        cold: dict[str, list[float]] = {}
        for engine in engines:
            say(f"cold invoke up on {engine} ({runs} runs)")
            cold[engine] = measure_cold_up(root, runs, engine)
            figures.append(Figure(f"invoke up on {engine}, cold", tuple(cold[engine]), "s", TARGETS["cold"],
                                  detail="no .cruddur/ → verified"))
        for engine in engines:
            say(f"named states on {engine}: state.load seeded ({runs * 3} runs) and the pytest plugin's reset")
            figures.extend(measure_states(root, runs, engine, median(cold[engine])))
        say(f"state.save, state.export and state.import of a table grown from {sizes.transfer_small} to "
            f"{sizes.transfer_large} on moto")
        figures.extend(measure_transfer(root, "moto", sizes.transfer_small, sizes.transfer_large))
        if options.states:
            return figures
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
            say(f"DynamoDB seeding of {messages(seed)} on {engine} ({runs} runs, 3 ways, each on a fresh engine)")
            figures.extend(measure_seeding(root, runs, seed, engine))
        say("starting an embedded stack on moto for the Cognito sync")
        with embedded_stack(root, "moto") as stack:
            say(f"Cognito sync of {sizes.cognito_users:,} users ({runs} runs each way)")
            figures.extend(measure_cognito_sync(stack, runs, sizes.cognito_users))
        say(f"invoke --list ({fast} runs)")
        figures.append(Figure("invoke --list", tuple(measure_list(root, fast)), "s", TARGETS["list"],
                              detail="import cost of tasks.py"))
    return figures


def print_report(head: dict[str, Any], options: Options, figures: Sequence[Figure]) -> None:
    if options.json:
        print_json(report_json(head, options, figures))
        return
    print_table(["measurement", "median", "runs", "target", "result", "detail"], figure_rows(figures),
                title=title_line(head, options))


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """The exit code of a run of ``argv`` (see the module docstring)."""
    options = parse_args(argv)
    head = header()
    say(title_line(head, options))
    # A `kill` cleans up like Ctrl-C: the temp state folders' services are stopped on the way out.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        figures = run_benchmark(options)
    except (Exception, KeyboardInterrupt) as exc:
        if debugging():
            raise
        code, message = exit_status(exc)
        say(message)
        return code
    print_report(head, options, figures)
    return 0
