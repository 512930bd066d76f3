"""The benchmark's pure parts (benchmarks/figures.py): arguments, medians, targets, table rows and JSON.

Nothing is timed here; ``python -m benchmarks --quick`` is the benchmark's own quick run.
"""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timezone

import pytest

from benchmarks import figures as bench
from benchmarks.commands import BenchmarkFailed
from benchmarks.figures import Figure, Options, Target
from bootstrap.errors import INTERRUPTED, exit_status
from tests.helpers import PROJECT_ROOT, outside_environment


def test_defaults_are_three_runs_at_full_size() -> None:
    options = bench.parse_args([])
    assert options == Options(runs=3, quick=False, json=False)
    assert bench.sizes_for(options) == bench.FULL


def test_quick_means_one_run_of_less_data_unless_runs_given() -> None:
    assert bench.parse_args(["--quick"]) == Options(runs=1, quick=True, json=False)
    assert bench.parse_args(["--quick", "--runs", "2", "--json"]) == Options(runs=2, quick=True, json=True)
    assert bench.sizes_for(bench.parse_args(["--quick"])) == bench.QUICK


def test_floors_and_states_each_choose_a_part_of_the_run() -> None:
    assert bench.parse_args(["--states"]) == Options(runs=3, quick=False, json=False, states=True)
    assert bench.parse_args(["--floors"]).floors and not bench.parse_args(["--floors"]).states


@pytest.mark.parametrize("argv", [["--runs", "0"], ["--runs", "x"], ["--nope"], ["--floors", "--states"]])
def test_bad_arguments_exit_2(argv: list[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.parse_args(argv)
    assert exc.value.code == 2


def test_median() -> None:
    assert bench.median([3.0, 1.0, 2.0]) == 2.0
    assert bench.median([1.0, 4.0]) == 2.5
    with pytest.raises(ValueError):
        bench.median([])


def test_targets_pass_and_miss_both_ways() -> None:
    at_most, at_least = Target(4.0, "s"), Target(8.0, "×", at_most=False)
    assert at_most.met(4.0) and not at_most.met(4.01)
    assert at_least.met(8.0) and not at_least.met(7.9)
    assert str(at_most) == "≤ 4.00 s" and str(at_least) == "≥ 8.00×"


def test_a_figure_is_the_median_of_its_samples_against_its_target() -> None:
    figure = Figure("invoke up, warm", (0.9, 0.5, 0.7), "s", Target(0.8, "s"))
    assert figure.value == 0.7 and figure.passed is True
    assert Figure("x", (1.0,), "s").passed is None


def test_seeding_ratios_are_the_median_of_each_runs_ratio() -> None:
    """A slow moment that hits one run's ways cancels out in that run's ratios."""
    figures = bench.seeding_figures("moto", "10,000 messages", [1.0, 2.0, 1.0], [10.0, 22.0, 8.0], [0.9, 1.6, 1.0],
                                    items=1000)
    ours, baseline, ceiling, speed_up, share = figures
    assert ours.value == 1000.0 and baseline.value == 100.0 and ceiling.value == 1000.0
    assert speed_up.samples == (10.0, 11.0, 8.0)
    assert speed_up.value == 10.0 and speed_up.passed is True
    assert share.samples == (0.9, 0.8, 1.0) and share.value == 0.9 and share.passed is True


def test_only_moto_has_a_speed_up_target_and_both_engines_a_ceiling_target() -> None:
    *_, speed_up, share = bench.seeding_figures("dynamodb-local", "1,000 messages", [2.0], [20.0], [1.0], items=1000)
    assert speed_up.target is None and speed_up.value == 10.0
    assert share.passed is False  # 50% of the ceiling


def test_sync_ratio_and_target() -> None:
    ours, baseline, speed_up = bench.sync_figures(1000, [1.5, 1.2, 2.0], [12.0, 15.0, 18.0])
    assert ours.passed is False
    assert speed_up.value == pytest.approx(9.0)  # the runs' ratios are 8, 12.5 and 9
    assert speed_up.target is None


def test_rss_growth_within_ten_percent() -> None:
    small, large, growth = bench.rss_figures("100:100", 100 * 1024, "2000:100", 105 * 1024)
    assert (small.value, large.value) == (100.0, 105.0)
    assert small.detail == "10,000 messages" and large.detail == "200,000 messages"
    assert growth.value == pytest.approx(1.05) and growth.passed is True
    assert bench.rss_figures("1:1", 100, "2:1", 200)[2].passed is False


def test_table_rows_show_median_target_and_result() -> None:
    rows = bench.figure_rows([
        Figure("invoke up, cold", (5.0, 3.0, 3.5), "s", Target(4.0, "s"), "no .cruddur/"),
        Figure("ddb seed: ours", (1234.4,), "items/s"),
        Figure("invoke --list", (0.5,), "s", Target(0.3, "s")),
    ])
    assert rows == [
        ["invoke up, cold", "3.50 s", "3", "≤ 4.00 s", "pass", "no .cruddur/"],
        ["ddb seed: ours", "1,234 items/s", "1", "", "", ""],
        ["invoke --list", "0.50 s", "1", "≤ 0.30 s", "MISS", ""],
    ]


def test_json_report_carries_header_samples_and_results() -> None:
    head = bench.header(datetime(2026, 3, 1, 12, 0, tzinfo=timezone.utc))
    assert head["cpu_count"] and head["python"].count(".") == 2 and head["date"]
    figures = [Figure("a", (1.0, 3.0), "s", Target(1.0, "s")), Figure("b", (2.0,), "MB")]
    report = bench.report_json(head, Options(runs=2), figures)
    assert report["all_passed"] is False and report["runs"] == 2
    assert report["figures"][0] == {"name": "a", "value": 2.0, "unit": "s", "runs": 2, "samples": [1.0, 3.0],
                                    "target": "≤ 1.00 s", "passed": False, "detail": ""}
    title = bench.title_line({**head, "cpu_count": 2, "python": "3.11.7"}, Options(runs=2))
    assert "2 CPUs, Python 3.11.7" in title and "median of 2 runs" in title


def test_rss_wrapper_reports_a_childs_peak_and_exit_code() -> None:
    """Runs the real wrapper around a tiny Python child (not invoke), then parses what it printed."""
    command = bench.rss_command(sys.executable, ["--version"])
    assert command[:2] == [sys.executable, "-c"] and command[-3:] == ["-m", "invoke", "--version"]
    child = [sys.executable, "-c", "import sys; sys.exit(3)"]
    result = subprocess.run([sys.executable, "-c", bench.RSS_WRAPPER, *child], capture_output=True, text=True,
                            check=True)
    kib, code = bench.parse_rss_output(result.stdout)
    assert kib > 1000 and code == 3


def test_a_failed_measurement_exits_1_through_the_projects_one_mapping() -> None:
    assert exit_status(BenchmarkFailed("invoke up exited 1")) == (1, "error: invoke up exited 1")
    assert exit_status(KeyboardInterrupt()) == (130, INTERRUPTED)


def test_the_command_the_readme_names_runs_from_the_project_folder() -> None:
    """``python -m benchmarks`` as a new user types it: its help, and a bad argument refused with exit 2."""
    command = [sys.executable, "-m", "benchmarks"]
    shown = subprocess.run([*command, "--help"], cwd=PROJECT_ROOT, env=outside_environment(), capture_output=True,
                           text=True, timeout=60)
    assert shown.returncode == 0, shown.stderr
    assert "usage: python -m benchmarks" in shown.stdout and "--quick" in shown.stdout
    refused = subprocess.run([*command, "--runs", "0"], cwd=PROJECT_ROOT, env=outside_environment(),
                             capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "--runs must be at least 1" in refused.stderr


def test_the_transfer_size_is_a_parameter_with_the_issues_default() -> None:
    assert (bench.FULL.transfer_small, bench.FULL.transfer_large) == ("100:98", "2000:98")
    assert bench.items_of("100:98") == 10_000 and bench.items_of("2000:98") == 200_000
    options = bench.parse_args(["--transfer", "500:98"])
    assert options.transfer == "500:98" and bench.sizes_for(options).transfer_large == "500:98"
    assert bench.sizes_for(options).transfer_small == bench.FULL.transfer_small


@pytest.mark.parametrize("value", ["x", "0:98", "5", "5:-1"])
def test_a_bad_transfer_size_exits_2(value: str) -> None:
    with pytest.raises(SystemExit) as exc:
        bench.parse_args(["--transfer", value])
    assert exc.value.code == 2


def test_transfer_figures_compare_peak_rss_and_the_import_with_the_ceiling() -> None:
    small, large, growth = bench.transfer_figures("moto", "state.export", "100:98", 100 * 1024, "2000:98",
                                                  104 * 1024, 200_000)
    assert (small.value, large.value) == (100.0, 104.0) and growth.passed is True
    assert large.name == "peak RSS state.export on moto, 200,000 items"
    *_, rate, share = bench.transfer_figures("moto", "state.import", "100:98", 100, "2000:98", 120, 200_000,
                                             seconds=100.0, ceiling_seconds=80.0)
    assert rate.value == pytest.approx(2000.0) and share.value == pytest.approx(0.8) and share.passed is False
