"""The threaded BatchWriteItem writer: Put/DeleteRequests in batches of 25, resent while DynamoDB holds any back.

Used by the seed (writing and pruning) and by loading a saved state (writing
and pruning tables). Assumes the low-level boto3 client, which is thread-safe, so the
writer threads share it. UnprocessedItems are resent with exponential backoff
by a tenacity ``Retrying`` (``RetryPolicy`` says how often and how long);
tenacity is imported inside the function that uses it.
"""

from __future__ import annotations

import logging
import queue
import threading
from dataclasses import dataclass
from typing import Any, Iterable, Iterator

from ..console import progress
from ..errors import BootstrapError

log = logging.getLogger(__name__)

BATCH_SIZE = 25  # BatchWriteItem's limit
WRITER_THREADS = 4
# Reads and writes of more items than this show progress (done of total, rate, time left).
PROGRESS_THRESHOLD = 300


@dataclass(frozen=True)
class RetryPolicy:
    """How often a batch's UnprocessedItems are sent again, with exponential backoff between tries."""

    attempts: int = 8
    first_wait: float = 0.05
    max_wait: float = 2.0


DEFAULT_RETRY = RetryPolicy()


class _Unwritten(Exception):
    def __init__(self, count: int) -> None:
        super().__init__(f"{count} items unprocessed")
        self.count = count


def write_requests(client: Any, table: str, requests: Iterable[dict[str, Any]], total: int | None,
                   workers: int = WRITER_THREADS, retry: RetryPolicy = DEFAULT_RETRY,
                   description: str | None = None) -> int:
    """Send Put/DeleteRequests in batches of 25 from ``workers`` threads; the number written.

    More than ``PROGRESS_THRESHOLD`` requests show progress, as ``description`` (default: writing the table).

    ``requests`` is consumed lazily through a bounded queue, so memory stays
    flat however many there are. The first failure stops the producer; it is
    raised once every thread has finished.
    """
    batches: queue.Queue[list[dict[str, Any]] | None] = queue.Queue(maxsize=workers * 2)
    failed = threading.Event()
    errors: list[BaseException] = []
    counter = _Counter()

    with progress(total, description or f"writing {table}", PROGRESS_THRESHOLD) as advance:

        def work() -> None:
            while (batch := batches.get()) is not None:
                if failed.is_set():
                    continue  # keep draining so the producer never blocks on a full queue
                try:
                    _write_batch(client, table, batch, retry)
                except BaseException as exc:  # handed to the main thread, which re-raises it
                    if isinstance(exc, _Unwritten):
                        counter.add(len(batch) - exc.count)
                    errors.append(exc)
                    failed.set()
                    continue
                counter.add(len(batch))
                advance(len(batch))

        threads = [threading.Thread(target=work, name=f"ddb-writer-{n}", daemon=True) for n in range(workers)]
        for thread in threads:
            thread.start()
        try:
            for batch in _batched(requests, BATCH_SIZE):
                if failed.is_set():
                    break
                batches.put(batch)
        finally:
            for _ in threads:
                batches.put(None)
            for thread in threads:
                thread.join()
    if errors:
        first = errors[0]
        if isinstance(first, _Unwritten):
            unwritten = sum(e.count for e in errors if isinstance(e, _Unwritten))
            raise BootstrapError(
                f"{unwritten} items were not written to {table}: DynamoDB kept returning them as unprocessed "
                f"after {retry.attempts} attempts (throttling?); {counter.value} of {total or 'the'} items were "
                "written. Raise the table's capacity or wait, then run the same command again."
            )
        raise first
    return counter.value


class _Counter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self, count: int) -> None:
        with self._lock:
            self.value += count


def _batched(requests: Iterable[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    for request in requests:
        batch.append(request)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def _write_batch(client: Any, table: str, batch: list[dict[str, Any]], retry: RetryPolicy) -> None:
    """Write one batch, resending its UnprocessedItems with backoff; _Unwritten when they never go through."""
    from tenacity import RetryError, Retrying, retry_if_result, stop_after_attempt, wait_exponential

    pending = batch

    def attempt() -> list[dict[str, Any]]:
        nonlocal pending
        response = client.batch_write_item(RequestItems={table: pending})
        pending = response.get("UnprocessedItems", {}).get(table, [])
        if pending:
            log.debug("%s: %d of %d items unprocessed; retrying", table, len(pending), len(batch))
        return pending

    retrying = Retrying(stop=stop_after_attempt(retry.attempts),
                        wait=wait_exponential(multiplier=retry.first_wait, max=retry.max_wait),
                        retry=retry_if_result(bool))
    try:
        retrying(attempt)
    except RetryError:
        raise _Unwritten(len(pending)) from None
