"""Fixtures of the ``bootstrap.pg`` tests: a schema.sql edited per test, a seeded database, a prod context.

Each test gets its own database (the session's ``endpoints`` fixture). The prod
target is this test's database named by PROD_CONNECTION_URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import pytest

from bootstrap.config import Endpoints
from bootstrap.pg import schema
from bootstrap.pg.connection import connect
from bootstrap.pg.schema import load_schema
from bootstrap.pg.seed import seed

from .helpers import ORIGINAL, SEEDS, Edit


@pytest.fixture
def edit_schema(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Edit:
    """Make sql/schema.sql read as the original with ``replacements`` made and ``append`` added.

    Monkeypatched because the file is a module constant, not a setting; the one input these tests change.
    """

    def edit(replacements: Sequence[tuple[str, str]] = (), append: str = "") -> None:
        text = ORIGINAL
        for old, new in replacements:
            assert old in text, old
            text = text.replace(old, new)
        path = tmp_path / "schema.sql"
        path.write_text(text + append, encoding="utf-8")
        monkeypatch.setattr(schema, "SCHEMA_FILE", path)

    return edit


@pytest.fixture
def seeded(endpoints: Endpoints) -> Endpoints:
    """The project's schema and fixtures, plus one user and two activities the app created."""
    load_schema(endpoints)
    seed(endpoints, SEEDS)
    with connect(endpoints.postgres_url) as conn:
        conn.execute("insert into users (handle, display_name, email) values ('from_app', null, 'app@example.test')")
        # Longer than any fixture's message, so that narrowing the column below fits the fixtures only.
        conn.execute("insert into activities (user_uuid, message)"
                     " select uuid, 'written in the app ' || repeat('x', 200)"
                     " from users where handle in ('from_app', %s)", (SEEDS.users[0].handle,))
    return endpoints


@pytest.fixture
def prod_context(endpoints: Endpoints, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An invoke Context whose settings resolve to the prod target, with this test's database as 'prod'."""
    from invoke import Config, Context

    monkeypatch.setenv("PROD_CONNECTION_URL", endpoints.postgres_url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")  # a prod target needs a region
    return Context(Config(overrides={"cruddur": {}}))
