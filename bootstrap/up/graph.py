"""Work as a graph: each node runs, in a thread of its own, as soon as every node it needs is done.

A node is either work (a ``body``) or an event that some body marks (``Graph.mark``: a service became
ready). A node that fails stops every node that needs it, directly or not, and everything else still
runs to its end; ``run`` returns every node's ``Outcome``. Knows nothing of what the nodes mean:
``up.run`` builds ``up``'s graph from its services, what it observes and its steps.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Callable, Iterable, Sequence


@dataclass(frozen=True)
class Node:
    name: str
    needs: tuple[str, ...] = ()
    body: Callable[[], None] | None = None  # None: an event, marked by a body


@dataclass(frozen=True)
class Outcome:
    """How a node ended: done, failed with ``error``, or stopped because ``blocked_by`` (a failed node) failed."""

    error: BaseException | None = None
    blocked_by: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.blocked_by is None


class NeverMarked(Exception):
    """An event that no body marked before every body had ended."""


class Graph:
    """Run the nodes' bodies as their needs are met; ``on_end`` hears each node end, one at a time."""

    def __init__(self, nodes: Sequence[Node], on_end: Callable[[str, Outcome], None] | None = None) -> None:
        self.nodes = {node.name: node for node in nodes}
        unknown = sorted({need for node in nodes for need in node.needs} - set(self.nodes))
        if unknown:
            raise ValueError(f"needs of no node: {', '.join(unknown)}")
        _check_acyclic(self.nodes)
        self._on_end = on_end
        self._lock = threading.RLock()
        self._outcomes: dict[str, Outcome] = {}
        self._started: set[str] = set()
        self._running = 0
        self._all_ended = threading.Event()
        self._pool: ThreadPoolExecutor | None = None
        self._heard: BaseException | None = None  # the first failure of on_end, raised by run at the end

    def mark(self, name: str, error: BaseException | None = None) -> None:
        """An event happened (or, with ``error``, will not); marking it again changes nothing."""
        with self._lock:
            if name not in self._outcomes:
                self._end(name, Outcome(error))
                if self._pool is not None:
                    self._start_ready()

    def run(self) -> dict[str, Outcome]:
        workers = max(1, sum(node.body is not None for node in self.nodes.values()))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="up") as pool:
            with self._lock:
                self._pool = pool
                self._start_ready()
                self._settle()
            self._all_ended.wait()
        if self._heard is not None:
            raise self._heard
        return dict(self._outcomes)

    # --- under the lock ---

    def _start_ready(self) -> None:
        assert self._pool is not None
        for node in self.nodes.values():
            if (node.body is None or node.name in self._started
                    or not all(self._outcomes.get(need, Outcome(blocked_by="")).ok for need in node.needs)):
                continue
            self._started.add(node.name)
            self._running += 1
            self._pool.submit(self._work, node)

    def _work(self, node: Node) -> None:
        assert node.body is not None
        try:
            node.body()
            outcome = Outcome()
        except BaseException as exc:  # noqa: BLE001 -- every failure is the node's outcome, reported by run's caller
            outcome = Outcome(exc)
        with self._lock:
            self._running -= 1
            self._end(node.name, outcome)
            self._start_ready()
            self._settle()

    def _end(self, name: str, outcome: Outcome) -> None:
        self._outcomes[name] = outcome
        if self._on_end is not None:
            # A listener that failed (a closed stdout) still hears every later end: it may keep state that bodies
            # wait on (up's "DynamoDB seeded" event), and a body waiting for an end nobody heard never ends.
            try:
                self._on_end(name, outcome)
            except BaseException as exc:  # noqa: BLE001 -- the graph still ends; run raises the first one
                if self._heard is None:
                    self._heard = exc
        if not outcome.ok:
            root = outcome.blocked_by or name
            for other in self._dependents(name):
                if other not in self._outcomes and other not in self._started:
                    self._end(other, Outcome(blocked_by=root))
        if len(self._outcomes) == len(self.nodes):
            self._all_ended.set()

    def _settle(self) -> None:
        """Once no body runs, events nobody marked never will be: end them, and what needs them."""
        if self._running:
            return
        for node in self.nodes.values():
            if node.body is None and node.name not in self._outcomes:
                self._end(node.name, Outcome(NeverMarked(f"{node.name} never happened")))
        self._start_ready()
        if not self._running and len(self._outcomes) == len(self.nodes):  # type: ignore[redundant-expr]  # _start_ready may have started nodes
            self._all_ended.set()

    def _dependents(self, name: str) -> Iterable[str]:
        return [node.name for node in self.nodes.values() if name in node.needs]


def _check_acyclic(nodes: dict[str, Node]) -> None:
    done: set[str] = set()

    def visit(name: str, path: tuple[str, ...]) -> None:
        if name in path:
            raise ValueError(f"the needs form a cycle: {' -> '.join((*path, name))}")
        if name in done:
            return
        for need in nodes[name].needs:
            visit(need, (*path, name))
        done.add(name)

    for name in nodes:
        visit(name, ())
