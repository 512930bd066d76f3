"""The state folder (bootstrap/state.py): remembered choices in state.json, atomic writes, the ``up`` lock.

Real files in the test's own temp folder; the lock is held by a second process, as another ``invoke up`` would.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from bootstrap.errors import ServiceError
from bootstrap.state import StateDir, write_atomic
from tests.helpers import PROJECT_ROOT, outside_environment


def test_a_new_state_folder_remembers_nothing_until_a_value_is_set(tmp_path: Path) -> None:
    state = StateDir(tmp_path / ".cruddur")
    assert state.read() == {} and state.get("ports", "postgres", default=5432) == 5432
    assert not state.root.exists(), "reading creates nothing"
    state.update("ports", "postgres", value=5433)
    state.update("ports", "moto", value=8001)
    state.update("backend", value="embedded")
    assert state.read() == {"backend": "embedded", "ports": {"moto": 8001, "postgres": 5433}}
    assert state.get("ports", "postgres") == 5433 and state.get("backend", "more") is None
    assert all(folder.is_dir() for folder in (state.root, state.logs, state.run))
    assert (state.log_file("moto"), state.pid_file("moto"), state.data_dir("postgres")) == (
        state.root / "logs" / "moto.log", state.root / "run" / "moto.pid", state.root / "postgres")


def test_a_damaged_state_file_only_forgets_the_remembered_choices(tmp_path: Path) -> None:
    state = StateDir(tmp_path).ensure()
    state.state_file.write_bytes(b'{"ports": {"postgres": 54')
    assert state.read() == {}
    state.update("ports", "postgres", value=5433)
    assert state.read() == {"ports": {"postgres": 5433}}


def test_concurrent_updates_of_one_state_folder_keep_every_value(tmp_path: Path) -> None:
    """Each thread with a StateDir of its own, as up's steps build them, and a second process writing meanwhile."""
    writer = subprocess.Popen(
        [sys.executable, "-c",
         "import sys; from pathlib import Path; from bootstrap.state import StateDir\n"
         "for n in range(40): StateDir(Path(sys.argv[1])).update('other', f'key-{n}', value=n)",
         str(tmp_path)], cwd=PROJECT_ROOT)
    threads = [threading.Thread(target=StateDir(tmp_path).update, args=("ports", f"service-{n}"), kwargs={"value": n})
               for n in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert writer.wait(timeout=60) == 0
    state = StateDir(tmp_path)
    assert state.get("ports") == {f"service-{n}": n for n in range(40)}
    assert state.get("other") == {f"key-{n}": n for n in range(40)}


def test_an_atomic_write_replaces_the_file_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "new-folder" / "positions.json"
    write_atomic(target, "first\n")
    write_atomic(target, "second\n")
    assert target.read_text() == "second\n"
    assert [path.name for path in target.parent.iterdir()] == ["positions.json"]


def test_a_state_folder_that_cannot_be_created_is_a_named_error_with_a_fix() -> None:
    """/sys refuses new folders even to root: a real permission failure wherever the suite runs."""
    with pytest.raises(ServiceError) as caught:
        StateDir(Path("/sys/cruddur-cannot-exist")).update("backend", value="embedded")
    assert str(caught.value).startswith("creating the state folder /sys/cruddur-cannot-exist: ")
    assert "hint: permission denied" in str(caught.value)


_HOLD_THE_LOCK = """
import sys
from pathlib import Path
from bootstrap.state import StateDir

with StateDir(Path(sys.argv[1])).exclusive("up"):
    print("holding", flush=True)
    sys.stdin.read()  # until the test closes our stdin
"""


def test_the_lock_waits_for_another_process_and_says_so_first(tmp_path: Path) -> None:
    state = StateDir(tmp_path)
    waits: list[str] = []
    with state.exclusive("up", on_wait=lambda: waits.append("free")):
        pass
    holder = subprocess.Popen([sys.executable, "-c", _HOLD_THE_LOCK, str(tmp_path)], cwd=PROJECT_ROOT,
                              env=outside_environment(), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "holding\n"

        def release() -> None:
            waits.append("held")
            holder.stdin.close()  # only now can the other process let go: the lock was waited for

        with state.exclusive("up", on_wait=release):
            assert holder.wait(timeout=60) == 0
    finally:
        holder.kill()
        holder.wait()
    assert waits == ["held"]
