"""Faults: a service killed mid-seed, a port taken by a stranger, a deadline that expires. The next run repairs.

One environment (real embedded Postgres and a DynamoDB engine, driven through
`invoke` as separate processes) is shared by the module per engine; the
DynamoDB faults run on both engines (moto and DynamoDB Local), the others on
moto. Every test leaves the environment repaired,
which is what each test proves. Operating-system failures while starting
(permission denied, a disk full, a port taken between choosing and binding, a
system folder Postgres's user cannot reach, a missing useradd) are named
errors with a fix: the last section (the hints themselves: tests/test_errors.py; a port
taken before moto bound it: tests/test_readiness.py). Covered elsewhere, not repeated here: `invoke
up` itself killed midway (test_up_e2e), the state folder deleted under running
services and the preferred ports taken at the first start (test_lifecycle),
DynamoDB returning unprocessed items until the retries run out (tests/ddb/test_writer.py).
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from bootstrap.config import Endpoints, resolve_settings
from bootstrap.fixtures.parse import load_fixtures
from bootstrap.processes import find_owned_process
from bootstrap.services.postgres import POSTGRES_SYSTEM_USER, EmbeddedPostgres
from bootstrap.state import StateDir
from tests.conftest import engine_environment, session_cli
from tests.helpers import PROJECT_ROOT, Cli

TABLE = "cruddur-messages"
FIXTURES = load_fixtures(PROJECT_ROOT / "seeds")
FIXTURE_ITEMS = sum(len(c.messages) + 2 for c in FIXTURES.conversations)
SYNTHETIC = "40:50"  # ~2000 items: seconds of writing, long enough to be killed in the middle


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory, ddb_engine: str) -> Iterator[Cli]:
    root = tmp_path_factory.mktemp("faults")
    runner = session_cli(root / ".cruddur", tmp_path_factory.getbasetemp() / "cruddur-cache",  # the session's cache
                         COLUMNS="200", **engine_environment(ddb_engine))
    try:
        runner("up")
        yield runner
    finally:
        runner("down", check=False)


def _postgres(cli: Cli) -> EmbeddedPostgres:
    """The embedded Postgres of ``cli``'s environment (its data folder is in the system folder when root needs it)."""
    return EmbeddedPostgres(resolve_settings({}, cli.env, {}), StateDir(cli.state_dir))


def _postmaster_pid(cli: Cli) -> int:
    return int((_postgres(cli).data_dir / "postmaster.pid").read_text().splitlines()[0])


def _dynamodb_pid(cli: Cli) -> int:
    """The pid of what serves DynamoDB: the moto server, or DynamoDB Local."""
    [pid_file] = [path for name in ("moto", "dynamodb") if (path := cli.state_dir / "run" / f"{name}.pid").exists()]
    return int(pid_file.read_text().strip())


def _kill(pid: int) -> None:
    """kill -9, then wait until the process is reaped: a zombie's pid still looks alive to Postgres,
    which then takes the crashed server's socket lock file for a running one (see the xfail test below)."""
    import psutil

    os.kill(pid, signal.SIGKILL)
    _wait_for(lambda: not psutil.pid_exists(pid), f"process {pid} to be reaped")


def _item_count(endpoints: Endpoints) -> int:
    client, count, arguments = endpoints.client("dynamodb"), 0, {"TableName": TABLE, "Select": "COUNT"}
    while True:
        page = client.scan(**arguments)
        count += page["Count"]
        if "LastEvaluatedKey" not in page:
            return count
        arguments["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _wait_for(condition: Callable[[], bool], what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.05)


def _start(cli: Cli, *args: str, **extra_env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "invoke", *args], cwd=PROJECT_ROOT, env={**cli.env, **extra_env},
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _start_synthetic_seed(cli: Cli, endpoints: Endpoints) -> subprocess.Popen:
    """`invoke ddb.seed --synthetic`, returned once it is well into writing."""
    before = _item_count(endpoints)
    seed = _start(cli, "ddb.seed", "--synthetic", SYNTHETIC)
    _wait_for(lambda: seed.poll() is not None or _item_count(endpoints) > before + 100, "synthetic items")
    assert seed.poll() is None, seed.communicate()
    return seed


def _failed_clearly(process: subprocess.Popen, *fragments: str) -> None:
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 1, stderr
    assert "Traceback" not in stderr and all(fragment in stderr for fragment in fragments), stderr


def _assert_repaired(cli: Cli) -> Endpoints:
    """`invoke up` and `invoke verify` pass, and Postgres holds exactly the fixtures' rows."""
    import psycopg

    cli("up")
    cli("verify")
    endpoints = cli.endpoints()
    with psycopg.connect(endpoints.postgres_url) as conn:
        handles = {h for (h,) in conn.execute("select handle from public.users").fetchall()}
        activities = {u for (u,) in conn.execute("select uuid::text from public.activities").fetchall()}
    assert handles == {u.handle for u in FIXTURES.users}
    assert activities == {a.uuid for a in FIXTURES.activities}
    return endpoints


def _seeds_with_a_new_user(tmp_path: Path) -> Path:
    seeds = tmp_path / "seeds"
    shutil.copytree(PROJECT_ROOT / "seeds", seeds)
    with open(seeds / "users.yaml", "a", encoding="utf-8") as users:
        users.write("  - handle: late_user\n    display_name: Late User\n    email: late@example.test\n")
    with open(seeds / "activities.yaml", "a", encoding="utf-8") as activities:
        activities.write("  - handle: late_user\n    message: Written by a seed that never committed\n")
    return seeds


def test_postgres_killed_inside_the_seed_transaction_leaves_no_rows(cli: Cli, tmp_path: Path) -> None:
    """The seed is held mid-transaction (users inserted, activities waiting on a lock), then Postgres is killed."""
    import psycopg

    endpoints = cli.endpoints()
    holder = psycopg.connect(endpoints.postgres_url)
    # SHARE lets the seed lock its activity rows but not insert: it stops right after inserting the users.
    holder.execute("lock table public.activities in share mode")
    seed = _start(cli, "db.seed", CRUDDUR_SEEDS_DIR=str(_seeds_with_a_new_user(tmp_path)))
    with psycopg.connect(endpoints.postgres_url, autocommit=True) as watcher:
        _wait_for(lambda: watcher.execute(
            "select count(*) from pg_locks where not granted and relation = 'public.activities'::regclass"
        ).fetchone()[0] > 0, "the seed to wait for its insert into activities")
        _kill(_postmaster_pid(cli))

    _failed_clearly(seed, "db.seed failed; nothing was changed")
    holder.close()
    _assert_repaired(cli)


@pytest.mark.both_engines
def test_postgres_killed_while_dynamodb_is_seeded(cli: Cli) -> None:
    endpoints = cli.endpoints()
    seed = _start_synthetic_seed(cli, endpoints)
    _kill(_postmaster_pid(cli))

    _failed_clearly(seed, "cannot connect to Postgres at postgresql://postgres:***@")
    endpoints = _assert_repaired(cli)
    assert _item_count(endpoints) == FIXTURE_ITEMS  # the interrupted run's synthetic items were cleaned up


@pytest.mark.both_engines
def test_dynamodb_engine_killed_while_dynamodb_is_seeded(cli: Cli) -> None:
    """`up` restarts the engine. moto held its data in memory: `up` restores the last snapshot or reseeds.
    DynamoDB Local keeps the interrupted seed's items on disk: `up` removes them."""
    endpoints = cli.endpoints()
    seed = _start_synthetic_seed(cli, endpoints)
    killed = _dynamodb_pid(cli)
    _kill(killed)

    _failed_clearly(seed, f"seeding table {TABLE}")
    endpoints = _assert_repaired(cli)
    assert _dynamodb_pid(cli) != killed
    assert _item_count(endpoints) == FIXTURE_ITEMS
    cli("cognito.list-users")


def test_socket_lock_file_of_a_crashed_postgres_does_not_block_the_restart(cli: Cli) -> None:
    """After a crash the lock file names a dead pid, which the system may hand to any other process."""
    postmaster = _postmaster_pid(cli)
    digest = hashlib.sha256(str(cli.state_dir).encode()).hexdigest()[:12]  # services' short socket folder
    [lock_file] = [lock for folder in (cli.state_dir / "run", _postgres(cli).instance_dir / "run",
                                       Path(f"/tmp/cruddur-{digest}")) for lock in folder.glob(".s.PGSQL.*.lock")]
    _kill(postmaster)
    # Postgres ignores a lock file whose pid belongs to another user, so the stranger runs as Postgres does.
    user = POSTGRES_SYSTEM_USER if os.geteuid() == 0 else None
    stranger = subprocess.Popen(["sleep", "60"], user=user)
    lines = lock_file.read_text().splitlines()
    lock_file.write_text("\n".join([str(stranger.pid), *lines[1:]]) + "\n")
    try:
        cli("up")
    finally:
        stranger.kill()
        stranger.wait()
        lock_file.unlink(missing_ok=True)
        cli("up")


class Listener:
    """An unrelated program on a port: it accepts connections and never says a word."""

    def __init__(self, port: int = 0) -> None:
        self.socket = socket.socket()
        # Like a server would: the port's own recent connections (TIME_WAIT) do not keep it from binding.
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.socket.bind(("127.0.0.1", port))
        self.socket.listen(16)
        self.port = self.socket.getsockname()[1]
        self._accepted: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        try:
            while True:
                self._accepted.append(self.socket.accept()[0])
        except OSError:
            return

    @property
    def accepted(self) -> int:
        """How many connections it accepted: none, when nobody took it for one of our services."""
        return len(self._accepted)

    def close(self) -> None:
        for connection in self._accepted:
            connection.close()
        self.socket.close()


@pytest.mark.both_engines
def test_remembered_ports_taken_by_strangers_fall_back_to_free_ones(cli: Cli) -> None:
    before = cli.endpoints()
    cli("down")
    strangers = [Listener(int(before.postgres_url.rsplit(":", 1)[1].split("/")[0])),
                 Listener(int(before.aws_endpoint_url.rsplit(":", 1)[1]))]
    try:
        up = cli("up")
        after = cli.endpoints()
        assert after.postgres_url != before.postgres_url and after.aws_endpoint_url != before.aws_endpoint_url
        said = " ".join(up.stderr.split())
        for stranger in strangers:
            assert f"port {stranger.port} (from its last start) is taken by another program; using port" in said
            assert stranger.accepted == 0, "a stranger on a remembered port was asked"
        cli("verify")
    finally:
        for stranger in strangers:
            stranger.close()


def test_services_that_never_answer_fail_by_the_deadline_naming_each(cli: Cli, tmp_path: Path) -> None:
    """An external backend whose ports are held by silent listeners: a clear error, never a hang."""
    postgres, moto = Listener(), Listener()
    try:
        result = cli(
            "up", "--backend", "external", "--timeout", "1", check=False, timeout=120,
            CONNECTION_URL=f"postgresql://postgres:password@localhost:{postgres.port}/cruddur",
            AWS_ENDPOINT_URL=f"http://localhost:{moto.port}", CRUDDUR_STATE_DIR=str(tmp_path / ".cruddur"),
        )
    finally:
        postgres.close()
        moto.close()
    assert result.returncode == 1, result.stderr
    for name, endpoint in (("postgres", f"localhost:{postgres.port}"), ("dynamodb", f"localhost:{moto.port}"),
                           ("cognito", f"localhost:{moto.port}")):
        assert f"{name} at " in result.stderr and endpoint in result.stderr and "was not ready after 1s" in result.stderr


# `backend auto` where no Docker engine answers, whatever this machine has: the embedded backend, deterministically.
AUTO_WITHOUT_DOCKER = {"CRUDDUR_BACKEND": "", "DOCKER_HOST": "unix:///nonexistent/docker.sock"}


@pytest.mark.slow  # `invoke up` as a process, in a state folder of its own
def test_a_failed_external_start_is_not_remembered_so_plain_runs_are_not_stuck_on_it(tmp_path: Path) -> None:
    """`CRUDDUR_BACKEND=external invoke up` against services that are not there: then plain runs choose afresh."""
    fresh = session_cli(tmp_path / ".cruddur", tmp_path / "cache", CRUDDUR_DDB_ENGINE="moto", **AUTO_WITHOUT_DOCKER)
    postgres, moto = Listener(), Listener()
    try:
        failed = fresh("up", "--timeout", "1", check=False, timeout=120, CRUDDUR_BACKEND="external",
                       CONNECTION_URL=f"postgresql://postgres:password@localhost:{postgres.port}/cruddur",
                       AWS_ENDPOINT_URL=f"http://localhost:{moto.port}")
    finally:
        postgres.close()
        moto.close()
    assert failed.returncode == 1 and "was not ready after 1s" in failed.stderr, failed.stderr
    assert "backend" not in StateDir(fresh.state_dir).read(), "a start that failed chose for the next one"
    try:
        status = json.loads(fresh("status", "--json", check=False).stdout)
        assert (status["backend"], status["reason"]) == ("embedded", "auto: no Docker engine (unix:///nonexistent/"
                                                         "docker.sock does not exist); the embedded processes"), status
        assert "backend: embedded; auto: no Docker engine" in fresh("env", "--explain").stdout
        fresh("up")
        status = json.loads(fresh("status", "--json").stdout)
        assert status["backend"] == "embedded" and status["reason"].startswith("remembered from the start on "), status
    finally:
        fresh("down", check=False)


@pytest.mark.slow  # `invoke up` as a process, in a state folder of its own
def test_a_start_that_did_not_finish_is_not_remembered_but_its_running_processes_are_found(tmp_path: Path) -> None:
    """Not ready in time: the processes keep running (for `status` and their logs), found by their pid files."""
    fresh = session_cli(tmp_path / ".cruddur", tmp_path / "cache", CRUDDUR_DDB_ENGINE="moto", **AUTO_WITHOUT_DOCKER)
    try:
        failed = fresh("up", "--timeout", "0.01", check=False)
        assert failed.returncode == 1 and "was not ready after 0.01s" in failed.stderr, failed.stderr
        remembered = StateDir(fresh.state_dir).read()
        assert "backend" not in remembered and set(remembered["ports"]) == {"postgres", "moto"}, remembered  # they run
        status = json.loads(fresh("status", "--json", check=False).stdout)
        assert status["backend"] == "embedded" and all(row["running"] for row in status["services"]), status
        assert status["reason"].startswith("auto: its processes run since a start that did not finish"), status
        assert status["ddb_engine"] == "moto", status
    finally:
        fresh("down")
    assert not any(find_owned_process(fresh.state_dir, name) for name in ("postgres", "moto"))


def test_readiness_deadline_names_the_service_its_log_and_not_the_password(cli: Cli) -> None:
    """The running Postgres refuses the password given: ready never comes, the deadline does."""
    result = cli("up", "--timeout", "0.5", check=False, CRUDDUR_PG_PASSWORD="not-the-password-3f9a")
    assert result.returncode == 1, result.stderr
    assert "postgres at postgresql://postgres:***@localhost:" in result.stderr
    assert "was not ready after 0.5s" in result.stderr and "password authentication failed" in result.stderr
    assert f"log: {cli.state_dir / 'logs' / 'postgres.log'}" in result.stderr
    assert "not-the-password-3f9a" not in result.stdout + result.stderr
    # Only not ready: the services keep running for `status` and their logs to show why, and `down` finds them.
    status = json.loads(cli("status", "--json", check=False).stdout)
    assert status["backend"] == "embedded" and all(row["running"] for row in status["services"]), status


@pytest.mark.slow  # `invoke up` as a process
def test_postgres_that_cannot_start_names_its_log(tmp_path: Path) -> None:
    """A data folder that is not a Postgres cluster (an interrupted copy, say): pg_ctl fails fast and says where to look."""
    broken = session_cli(tmp_path / ".cruddur", tmp_path / "cache")
    data_dir = _postgres(broken).data_dir
    data_dir.mkdir(parents=True)
    (data_dir / "PG_VERSION").write_text("18\n")
    try:
        result = broken("up", "--timeout", "0.5", check=False)
        # Nothing of the failed start is remembered: no backend, and no port of a service that does not run.
        remembered = StateDir(broken.state_dir).read()
    finally:
        broken("down", check=False)
    assert result.returncode == 1, result.stderr
    assert "backend" not in remembered and not remembered.get("ports"), remembered
    assert "postgres: pg_ctl failed" in result.stderr
    assert f"log {broken.state_dir / 'logs' / 'postgres.log'}" in result.stderr and "Traceback" not in result.stderr


# --- operating-system failures while starting: named errors with a fix, never a traceback ---------------------


def _one_up(tmp_path: Path, **env: str) -> subprocess.CompletedProcess:
    """A failing `invoke up`; checks that it left nothing running (before a `down` that might not find it)."""
    runner = session_cli(Path(env.get("CRUDDUR_STATE_DIR", tmp_path / ".cruddur")), tmp_path / "cache",
                         **{"CRUDDUR_DDB_ENGINE": "moto", **env})
    try:
        result = runner("up", "--timeout", "5", check=False)
        left = [name for name in ("moto", "dynamodb", "cognito") if find_owned_process(runner.state_dir, name)]
        assert not left, f"the failed `up` left {left} running"
        return result
    finally:
        runner("down", check=False)


@pytest.mark.slow  # `invoke up` as a process
def test_a_state_folder_that_cannot_be_created_is_a_named_error(tmp_path: Path) -> None:
    """/sys refuses new folders even to root: a real permission failure wherever the suite runs."""
    result = _one_up(tmp_path, CRUDDUR_STATE_DIR="/sys/cruddur-cannot-exist")
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert "creating the state folder /sys/cruddur-cannot-exist" in result.stderr
    assert "hint: permission denied" in result.stderr and "run `invoke doctor`" in result.stderr


@pytest.mark.slow  # `invoke up` as a process
@pytest.mark.skipif(os.geteuid() != 0, reason="root only: the system folder is used by root only")
def test_a_system_folder_postgres_cannot_reach_is_a_named_error(tmp_path: Path) -> None:
    """The state folder and the system folder both under pytest's closed (0700) temp folder."""
    result = _one_up(tmp_path, CRUDDUR_SYSTEM_DIR=str(tmp_path / "system"))
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr
    assert f"the system folder {tmp_path / 'system'} (setting system_dir) is not reachable" in result.stderr
    assert "is closed to other users" in result.stderr and "run `invoke doctor`" in result.stderr
    assert not (tmp_path / "system").exists()


# --- every task, a fault at its boundary: one clear message, never a traceback ----------------------------------

SECRET = "pw-never-shown-7c1"
# Values for the tasks' required arguments: well-formed, so that the fault is what stops the task. A new task
# with a required argument of another name fails the walk below until its value is added here.
REQUIRED_VALUES = {"group": "5ae290ed-55d1-47a0-bc6d-fe2bc2700399", "handle": "andrewbrown", "from_": "andrewbrown",
                   "to": "bayko", "text": "hello", "file": "up.json",
                   "name": "mine"}


def _fault_scenarios(tmp_path: Path) -> dict[str, dict[str, str]]:
    """Each fault as the environment of a run: nothing in it answers, exists or is allowed."""
    from bootstrap.processes import free_port

    dead = free_port()  # nothing listens there: a connection is refused at once
    nowhere = "/proc/cruddur-nowhere"  # no folder can be made under /proc, not even by root
    services_dead = {"CRUDDUR_BACKEND": "external", "CRUDDUR_READY_TIMEOUT": "0.5",
                     "CONNECTION_URL": f"postgresql://postgres:{SECRET}@127.0.0.1:{dead}/cruddur",
                     "AWS_ENDPOINT_URL": f"http://127.0.0.1:{dead}", "CRUDDUR_CACHE_DIR": f"{nowhere}/cache"}
    (tmp_path / "empty").mkdir()
    return {
        "services that do not answer": services_dead,
        "an impossible state folder": {"CRUDDUR_BACKEND": "embedded", "CRUDDUR_STATE_DIR": f"{nowhere}/.cruddur",
                                       "CRUDDUR_CACHE_DIR": f"{nowhere}/cache"},
        "prod: no AWS credentials, a database that does not answer": {
            "CRUDDUR_TARGET": "prod", "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true",
            "PROD_CONNECTION_URL": f"postgresql://cruddurroot:{SECRET}@127.0.0.1:{dead}/cruddur",
            "AWS_COGNITO_USER_POOL_ID": "us-east-1_nowhere", "CRUDDUR_CACHE_DIR": f"{nowhere}/cache"},
        "missing programs": {**services_dead, "PATH": str(tmp_path / "empty"),
                             "CRUDDUR_CACHE_DIR": str(tmp_path / "cache")},
    }


def _run_in_process(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """``invoke ARGV`` as the ``invoke`` program runs it, in this process: (exit code, stdout, stderr).

    An exception that leaves invoke's Program is what would print a traceback: it fails the test here."""
    import copy

    from invoke import Program

    import tasks

    try:
        # A copy: parsing the flags takes each one's help out of its task (tests/test_tasks.py reads them).
        Program(namespace=copy.deepcopy(tasks.ns), name="invoke", binary="invoke").run(["invoke", *argv])
        code = 0
    except SystemExit as exit_:
        code = exit_.code if isinstance(exit_.code, int) else 1
    except BaseException as exc:  # noqa: BLE001 - reported with its traceback, which the user would have seen
        import traceback

        captured = capsys.readouterr()
        pytest.fail(f"`invoke {' '.join(argv)}` would print a traceback:\n{captured.err}\n"
                    f"{''.join(traceback.format_exception(exc))}")
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _exec_as_child(path: str, argv: list[str], env: dict[str, str]) -> None:
    """os.execve for the walk: psql replacing the test process would end the test, so it runs as a child
    and its exit is the task's (what the user sees is psql's own words either way)."""
    child = subprocess.run(argv, executable=path, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                           timeout=60)
    sys.stderr.write(child.stderr)
    raise SystemExit(child.returncode)


def _answers_in_json(argv: list[str], scenario: str, capsys: pytest.CaptureFixture[str]) -> None:
    """With --json, stdout is one JSON document also when the task fails: its own report (verify's checks,
    status, doctor) or the failure, with the error, its hint and the exit code."""
    code, out, err = _run_in_process(argv, capsys)
    where = f"`invoke {' '.join(argv)}` with {scenario} (exit {code})\n--- stdout\n{out}\n--- stderr\n{err}"
    assert "Traceback" not in out + err, where
    try:
        document = json.loads(out)
    except json.JSONDecodeError:
        pytest.fail(f"not one JSON document: {where}")
    if code != 0 and isinstance(document, dict) and "error" in document:
        assert document["ok"] is False and document["exit_code"] == code and document["error"], where
        # and the line on stderr, as without --json (after prod's line naming its region)
        assert [line for line in err.splitlines() if line.startswith("error: ")], where


def test_every_task_meets_every_fault_with_one_clear_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    """The tasks are read from tasks.py's collection, so a new task is walked too. Each runs in-process, as
    invoke's Program runs it, under each fault; it may succeed where the fault does not touch it, but each
    task must fail under at least one, and every failure is one `error:` line, never a traceback, never a
    bug's `unexpected error`, never the password. A task with --json is also run with it."""
    import tasks

    monkeypatch.setattr(os, "execve", _exec_as_child)
    failed_somewhere: dict[str, list[str]] = {}
    for scenario, env in _fault_scenarios(tmp_path).items():
        with monkeypatch.context() as patched:
            for name, value in env.items():
                patched.setenv(name, value)
            for task_name in sorted(tasks.ns.task_names):
                task = tasks.ns[task_name]
                missing = [name for name in task.positional if name not in REQUIRED_VALUES]
                assert not missing, f"{task_name}: add a value for {missing} to REQUIRED_VALUES"
                argv = [task_name, *(word for name in task.positional
                                     for word in (f"--{name.rstrip('_').replace('_', '-')}", REQUIRED_VALUES[name]))]
                if "json" in inspect.signature(task.body).parameters:
                    _answers_in_json(argv + ["--json"], scenario, capsys)
                code, out, err = _run_in_process(argv, capsys)
                where = f"`invoke {' '.join(argv)}` with {scenario} (exit {code})\n--- stdout\n{out}\n--- stderr\n{err}"
                assert "Traceback" not in out + err and "unexpected error" not in err, where
                if code == 0:
                    assert SECRET not in err, where  # stdout may have it: `invoke env` prints CONNECTION_URL
                    continue
                assert SECRET not in out + err, where
                failed_somewhere.setdefault(task_name, []).append(scenario)
                errors = [line for line in err.splitlines() if line.startswith(("error: ", "psql: error: "))]
                # doctor and status answer a failure with their own report (exit 1 and no error line).
                assert len(errors) == 1 or (not errors and task_name in ("doctor", "status") and out), where
    assert sorted(failed_somewhere) == sorted(tasks.ns.task_names), (
        f"no fault reached {sorted(set(tasks.ns.task_names) - set(failed_somewhere))}")


@pytest.mark.slow  # `invoke` as a process: the traceback is Python's own, printed as the process ends
def test_cruddur_debug_shows_the_traceback_and_keeps_the_exit_code(tmp_path: Path) -> None:
    runner = session_cli(tmp_path / ".cruddur", tmp_path / "cache")
    plain = runner("env", "--dotenv", "/proc/cruddur-nowhere/x.env", check=False)
    debug = runner("env", "--dotenv", "/proc/cruddur-nowhere/x.env", check=False, CRUDDUR_DEBUG="1")
    assert plain.returncode == debug.returncode == 2, plain.stderr + debug.stderr
    assert plain.stderr.splitlines() == [
        "error: --dotenv: the folder '/proc/cruddur-nowhere' does not exist; create it first or fix the path"]
    assert "Traceback (most recent call last)" in debug.stderr and "InputError" in debug.stderr
