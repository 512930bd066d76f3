"""What the tests of bootstrap.ddb share: the fixtures, their users, a table per test on the session's engine."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timezone

import pytest

from bootstrap.config import Endpoints, resolve_settings
from bootstrap.ddb.placement import SyntheticSpec, choose_epoch, seed_span
from bootstrap.ddb.reads import scan_items
from bootstrap.ddb.schema import schema_load
from bootstrap.ddb.table import TableSpec, UserRef, table_spec
from bootstrap.fixtures.model import Fixtures
from bootstrap.fixtures.parse import load_fixtures

UTC = timezone.utc
NOW = datetime(2026, 11, 23, 17, 30, 45, tzinfo=UTC)


@pytest.fixture(scope="module")
def fixtures() -> Fixtures:
    return load_fixtures(resolve_settings({}, {}, {}).seeds_dir)


def fixture_users(fixtures: Fixtures) -> dict[str, UserRef]:
    return {u.handle: UserRef(u.uuid, u.handle, u.display_name) for u in fixtures.users}


@pytest.fixture
def spec(table_name: str) -> TableSpec:
    return replace(table_spec(resolve_settings({}, {}, {})), name=table_name)


@pytest.fixture
def table(endpoints: Endpoints, spec: TableSpec) -> TableSpec:
    schema_load(endpoints, spec)
    return spec


def epoch_for(fixtures: Fixtures, synthetic: SyntheticSpec | None = None) -> datetime:
    return choose_epoch(None, datetime.now(UTC), seed_span(fixtures.conversations, synthetic))


def all_keys(endpoints: Endpoints, table: str) -> set[tuple[str, str]]:
    return {(i["pk"], i["sk"]) for i in scan_items(endpoints, table)}
