"""The warm starter: a warm `invoke up` runs in a forked copy of a process that has everything imported."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from bootstrap import warmstart
from bootstrap.config import resolve_settings
from bootstrap.errors import ConfigError, ServiceError, exit_status
from bootstrap.state import StateDir
from tests.conftest import PROJECT_ROOT


# --- pure ------------------------------------------------------------------------------


def test_each_state_folder_has_its_own_abstract_socket(tmp_path: Path) -> None:
    first, second = warmstart.socket_address(tmp_path / "a"), warmstart.socket_address(tmp_path / "b")
    assert first.startswith(b"\0") and second.startswith(b"\0") and first != second
    assert warmstart.socket_address(tmp_path / "a") == first


def test_the_fingerprint_changes_with_any_source_file(tmp_path: Path) -> None:
    (tmp_path / "bootstrap").mkdir()
    source = tmp_path / "bootstrap" / "up.py"
    source.write_text("x = 1\n")
    (tmp_path / "tasks.py").write_text("")
    before = warmstart.code_fingerprint(tmp_path)
    assert warmstart.code_fingerprint(tmp_path) == before
    os.utime(source, ns=(source.stat().st_atime_ns, source.stat().st_mtime_ns + 1))
    assert warmstart.code_fingerprint(tmp_path) != before


def test_python_and_python3_of_one_venv_get_one_fingerprint() -> None:
    """`invoke` runs as python3, `python -m invoke` as python: both must be served by one starter."""
    names = [name for name in ("python", "python3") if (Path(sys.executable).parent / name).exists()]
    if len(names) < 2:
        pytest.skip(f"this environment has only {names} next to {sys.executable}")
    code = "from bootstrap.warmstart import code_fingerprint; print(code_fingerprint())"
    prints = {subprocess.run([str(Path(sys.executable).parent / name), "-c", code], cwd=PROJECT_ROOT,
                             capture_output=True, text=True, check=True).stdout for name in names}
    assert len(prints) == 1


def test_our_errors_and_ctrl_c_map_to_exit_codes_and_other_errors_do_not() -> None:
    assert exit_status(ConfigError("bad port")) == (2, "error: bad port")
    assert exit_status(ServiceError("down")) == (1, "error: down")
    assert exit_status(KeyboardInterrupt())[0] == 130
    assert exit_status(RuntimeError("a bug")) is None


# --- as a user runs it ---------------------------------------------------------------------


def _starter_pid(cli, timeout: float = 30.0) -> int:
    """The pid of the cli's starter once it listens (it imports for a second or so after `up`)."""
    pid_file = cli.state_dir / "run" / "warmstart.pid"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid_file.exists() and pid_file.read_text().strip():
            return int(pid_file.read_text())
        time.sleep(0.1)
    raise AssertionError(f"no warm starter after {timeout}s; log:\n{_log(cli)}")


def _log(cli) -> str:
    path = cli.state_dir / "logs" / "warmstart.log"
    return path.read_text() if path.exists() else ""


def _runs_served(cli) -> int:
    return _log(cli).count(": run in pid ")


def _gone(pid: int, timeout: float = 15.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.1)
    return False


def test_up_leaves_a_starter_that_runs_the_next_up_and_down_stops_it(cli) -> None:
    cli("up")
    pid = _starter_pid(cli)

    report = json.loads(cli("up", "--json").stdout)
    assert all(step["action"] == "unchanged" for step in report["steps"]), report
    assert _runs_served(cli) == 1
    assert json.loads(cli("status", "--json").stdout)["warm_start_pid"] == pid

    assert "warmstart" in cli("down").stderr
    assert _gone(pid)
    assert json.loads(cli("status", "--json", check=False).stdout)["warm_start_pid"] is None


def test_a_warm_run_fails_exactly_like_an_in_process_one(cli, tmp_path: Path) -> None:
    cli("up")
    _starter_pid(cli)
    seeds = tmp_path / "seeds"
    shutil.copytree(PROJECT_ROOT / "seeds", seeds)
    (seeds / "users.yaml").write_text("users:\n  - handle: [oops\n")

    warm = cli("up", check=False, CRUDDUR_SEEDS_DIR=str(seeds))
    cold = cli("up", check=False, CRUDDUR_SEEDS_DIR=str(seeds), CRUDDUR_WARM_START="0")
    assert _runs_served(cli) == 1
    assert warm.returncode == cold.returncode == 2
    assert f"{seeds / 'users.yaml'}:3:1" in warm.stderr
    assert (warm.stdout, warm.stderr) == (cold.stdout, cold.stderr)


def test_ctrl_c_reaches_the_warm_run(cli) -> None:
    cli("up")
    _starter_pid(cli)
    # Holding the `up` lock keeps the warm run waiting, so that Ctrl-C arrives mid-run.
    with StateDir(cli.state_dir).exclusive("up"):
        process = subprocess.Popen([sys.executable, "-m", "invoke", "up"], cwd=PROJECT_ROOT, env=cli.env,
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while _runs_served(cli) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130, stderr
    assert "interrupted; run the same command again" in stderr


def test_a_starter_refuses_other_code_and_exits(cli) -> None:
    """The caller is this test process (a handover of its streams); the starter must refuse it."""
    cli("up")
    pid = _starter_pid(cli)
    settings = resolve_settings({}, cli.env, {})
    request = {"file_values": {}, "flags": {}, "flag_names": {}, "options": {}}

    assert warmstart.delegate(settings, request, fingerprint="from another checkout") is None
    assert _gone(pid)
    assert "refused a run: the sources or packages changed" in _log(cli)
    cli("up")  # in-process, and it starts a fresh starter
    assert _starter_pid(cli) != pid


def test_a_killed_starter_costs_one_slow_run(cli) -> None:
    cli("up")
    pid = _starter_pid(cli)
    os.kill(pid, signal.SIGKILL)
    assert _gone(pid)
    cli("up")
    assert _runs_served(cli) == 0


def test_warm_start_can_be_turned_off(cli) -> None:
    cli.env["CRUDDUR_WARM_START"] = "0"
    cli("up")
    cli("up")
    time.sleep(1)
    assert not (cli.state_dir / "run" / "warmstart.pid").exists()
    assert "warm starter: not running" in cli("status").stderr


def test_a_bad_warm_start_value_names_the_variable(cli) -> None:
    result = cli("up", check=False, CRUDDUR_WARM_START="maybe")
    assert result.returncode == 2
    assert "CRUDDUR_WARM_START" in result.stderr and "'maybe'" in result.stderr


@pytest.mark.parametrize("value", ["0", "false", "off", "no"])
def test_warm_start_values_that_turn_it_off(value: str) -> None:
    assert resolve_settings({}, {"CRUDDUR_WARM_START": value}, {}).warm_start is False
