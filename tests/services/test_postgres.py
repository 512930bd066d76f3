"""Embedded Postgres as a service: its failure hints, and pg_ctl's start and the probe under ONE deadline."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from bootstrap.errors import NotReadyError
from bootstrap.readiness import Deadline
from bootstrap.services.postgres import EmbeddedPostgres, failure_hint
from bootstrap.state import StateDir
from tests.conftest import make_settings


def test_postgres_log_lines_of_os_failures_get_a_fix() -> None:
    taken = 'LOG:  could not bind IPv4 address "127.0.0.1": Address already in use'
    assert "port 5432 was taken by another program" in failure_hint(taken, 5432, Path("/d"))
    assert "no space left" in failure_hint("PANIC: could not write: No space left on device", 5432, Path("/d"))
    assert failure_hint("FATAL: database files are incompatible with server", 5432, Path("/d")) is None


def test_a_postgres_that_never_becomes_ready_fails_at_one_ready_timeout(tmp_path: Path) -> None:
    """Its data folder was made with another password: pg_ctl starts it, the probe is refused until the deadline.

    pg_ctl's wait and the probe's share the deadline: the error counts the start in what was waited.
    """
    settings = make_settings(tmp_path / ".cruddur")
    state = StateDir(settings.state_dir)
    made = EmbeddedPostgres(settings, state)
    made.start(Deadline(60))
    made.stop()
    refused = EmbeddedPostgres(replace(settings, pg_password="not-the-password-5c1e"), state)
    try:
        with pytest.raises(NotReadyError) as caught:
            refused.start(Deadline(3))
        assert refused.is_running()  # started by pg_ctl; only never ready
    finally:
        refused.stop()
    message = str(caught.value)
    assert "postgres at postgresql://postgres:***@localhost:" in message and "was not ready after 3s." in message
    assert re.search(r"\n  waited \d+\.\ds of 3s \(\d+\.\ds of it starting the service, before this check\)\n", message)
    assert "password authentication failed" in message and "not-the-password-5c1e" not in message
