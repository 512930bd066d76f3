"""Where Postgres's files go when we are root: the pure judgements, and reading a folder chain's modes."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from bootstrap.services.postgres_user import SYSTEM_USER, closed_parent, instance_dir, open_to_others, place_data


def test_a_chain_is_open_only_when_every_folder_lets_others_traverse() -> None:
    assert open_to_others([0o40755, 0o40711, 0o41777])
    assert not open_to_others([0o40755, 0o40700, 0o40755])
    assert not open_to_others([0o40750])  # reachable through a group only counts as closed


def test_as_another_user_the_data_stays_in_the_state_folder() -> None:
    assert not place_data(False, relocated_exists=False, in_state_exists=False, closed=Path("/home/me")).relocated


def test_as_root_a_new_cluster_moves_only_when_a_parent_is_closed() -> None:
    moved = place_data(True, relocated_exists=False, in_state_exists=False, closed=Path("/root"))
    assert moved.relocated and "/root is closed" in moved.reason and SYSTEM_USER in moved.reason
    assert not place_data(True, relocated_exists=False, in_state_exists=False, closed=None).relocated


def test_as_root_an_existing_cluster_stays_where_it_is() -> None:
    assert place_data(True, relocated_exists=True, in_state_exists=False, closed=None).relocated
    assert not place_data(True, relocated_exists=False, in_state_exists=True, closed=Path("/root")).relocated


def test_each_state_folder_has_its_own_instance_folder() -> None:
    first = instance_dir(Path("/var/lib/cruddur-bootstrap"), Path("/root/a/.cruddur"))
    assert first.parent == Path("/var/lib/cruddur-bootstrap")
    assert first != instance_dir(Path("/var/lib/cruddur-bootstrap"), Path("/root/b/.cruddur"))


def test_closed_parent_names_the_outermost_closed_folder() -> None:
    # A folder of our own in /tmp (open), since pytest's temp folders are themselves closed (0700).
    root = Path(tempfile.mkdtemp(prefix="cruddur-modes-", dir="/tmp"))
    try:
        root.chmod(0o755)
        outer, inner = root / "outer", root / "outer" / "inner"
        inner.mkdir(parents=True)
        outer.chmod(0o700)
        inner.chmod(0o700)
        assert closed_parent(inner / "not-yet" / ".cruddur") == outer
        outer.chmod(0o711)
        assert closed_parent(inner / "not-yet" / ".cruddur") == inner
        inner.chmod(0o755)
        assert closed_parent(inner / "not-yet" / ".cruddur") is None
    finally:
        shutil.rmtree(root)
