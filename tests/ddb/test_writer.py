"""bootstrap.ddb.writer: UnprocessedItems are resent, and a batch that never goes through fails clearly."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from bootstrap.config import Endpoints
from bootstrap.ddb.seed import seed_conversations
from bootstrap.ddb.writer import RetryPolicy
from bootstrap.errors import BootstrapError
from tests.ddb.conftest import all_keys, epoch_for, fixture_users

pytestmark = pytest.mark.both_engines

FAST_RETRY = RetryPolicy(attempts=3, first_wait=0.001, max_wait=0.005)


@dataclass(frozen=True)
class UnprocessedEndpoints(Endpoints):
    """Endpoints whose DynamoDB client holds back the last items of each BatchWriteItem.

    A stand-in is needed because moto never returns UnprocessedItems; only
    ``batch_write_item`` is wrapped, everything else goes to the real moto server.
    """

    refusals: int = 1  # how often the same items are held back before they go through
    held_back: int = 2

    def client(self, service_name: str) -> Any:
        return _HoldingBackClient(super().client(service_name), self.refusals, self.held_back)


class _HoldingBackClient:
    def __init__(self, client: Any, refusals: int, held_back: int) -> None:
        self._client, self._refusals, self._held_back = client, refusals, held_back
        self._refused: dict[str, int] = {}

    def batch_write_item(self, RequestItems: dict[str, list[Any]]) -> dict[str, Any]:
        ((table, requests),) = RequestItems.items()
        last = next(iter(requests[-1].values()))
        key = str(last.get("Item", last.get("Key")))
        self._refused[key] = self._refused.get(key, 0) + 1
        if self._refused[key] > self._refusals:
            return self._client.batch_write_item(RequestItems=RequestItems)
        written, held = requests[: -self._held_back], requests[-self._held_back:]
        if written:
            self._client.batch_write_item(RequestItems={table: written})
        return {"UnprocessedItems": {table: held}}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def wrapped(endpoints: Endpoints, refusals: int) -> Endpoints:
    return UnprocessedEndpoints(endpoints.postgres_url, endpoints.aws_endpoint_url, endpoints.region,
                                refusals=refusals)


def test_seed_retries_unprocessed_items(endpoints, table, fixtures):
    """Uses a wrapper client (see UnprocessedEndpoints): moto never returns UnprocessedItems."""
    flaky = wrapped(endpoints, refusals=2)
    result = seed_conversations(flaky, table, fixtures.conversations, fixture_users(fixtures),
                                       epoch_for(fixtures), retry=FAST_RETRY)
    expected = sum(len(c.messages) + 2 for c in fixtures.conversations)
    assert result.writes == len(all_keys(endpoints, table.name)) == expected


def test_seed_fails_clearly_when_items_stay_unprocessed(endpoints, table, fixtures):
    """Uses a wrapper client (see UnprocessedEndpoints): moto never returns UnprocessedItems."""
    stuck = wrapped(endpoints, refusals=10**6)
    with pytest.raises(BootstrapError, match=r"^2 items were not written .* after 3 attempts .*; 23 of 125"):
        seed_conversations(stuck, table, fixtures.conversations, fixture_users(fixtures),
                                  epoch_for(fixtures), retry=FAST_RETRY, workers=1)
