"""The runtime state folder (``.cruddur/`` by default) and its small JSON state file.

Everything the tool leaves behind between runs lives here: service data dirs,
pid files, logs, and ``state.json`` (chosen ports, backend, local pool id).
Writes are atomic (temp file + rename) so an interrupted run never leaves a
half-written state file, and read-modify-write holds a file lock (``run/state.lock``):
``up``'s steps run in threads, each may build its own ``StateDir`` for the same
folder, and another ``invoke`` may write the file at the same time.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

from .errors import os_errors


@dataclass(frozen=True)
class StateDir:
    root: Path

    @property
    def state_file(self) -> Path:
        return self.root / "state.json"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def run(self) -> Path:
        return self.root / "run"

    def log_file(self, service: str) -> Path:
        return self.logs / f"{service}.log"

    def pid_file(self, service: str) -> Path:
        return self.run / f"{service}.pid"

    def data_dir(self, service: str) -> Path:
        return self.root / service

    def ensure(self) -> "StateDir":
        with os_errors(f"creating the state folder {self.root}"):
            for folder in (self.root, self.logs, self.run):
                folder.mkdir(parents=True, exist_ok=True)
        return self

    def read(self) -> dict[str, Any]:
        with os_errors(f"reading {self.state_file}"):
            try:
                text = self.state_file.read_text()
            except FileNotFoundError:
                return {}
        try:
            return json.loads(text)
        except (json.JSONDecodeError, UnicodeDecodeError):
            # A damaged state file only loses remembered choices (ports, ids);
            # services are still found through their pid files.
            return {}

    def get(self, *path: str, default: Any = None) -> Any:
        node: Any = self.read()
        for key in path:
            if not isinstance(node, dict) or key not in node:
                return default
            node = node[key]
        return node

    def update(self, *path: str, value: Any) -> None:
        """Set ``state[path...] = value`` atomically, keeping what other writers set meanwhile.

        The lock is a file lock, not an object's: a lock per ``StateDir`` let two instances for one folder
        (the Cognito step's and the backend's, in two of ``up``'s threads) each write back what it had read,
        and the later write dropped the other's value (the pool id went missing after an ``up``).
        """
        with self.exclusive("state"):
            data = self.read()
            node = data
            for key in path[:-1]:
                node = node.setdefault(key, {})
            node[path[-1]] = value
            with os_errors(f"writing {self.state_file}"):
                write_atomic(self.state_file, json.dumps(data, indent=2, sort_keys=True) + "\n")

    @contextlib.contextmanager
    def exclusive(self, name: str = "up", on_wait: Callable[[], None] | None = None) -> Iterator[None]:
        """Hold the lock ``run/<name>.lock`` against other processes and threads alike (each call opens the file);
        calls ``on_wait`` first when another holds it."""
        self.ensure()
        with os_errors(f"opening the lock file {self.run / f'{name}.lock'}"):
            handle = open(self.run / f"{name}.lock", "a+")
        with handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                if on_wait is not None:
                    on_wait()
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so that readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
