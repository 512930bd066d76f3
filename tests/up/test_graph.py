"""The graph runner: each node once its needs are done, concurrently; a failure stops only what needs it."""

from __future__ import annotations

import threading

import pytest

from bootstrap.up.graph import Graph, NeverMarked, Node, Outcome


def _recorder() -> tuple[list[str], object]:
    ended: list[str] = []
    return ended, lambda name, outcome: ended.append(name)


def test_a_node_runs_only_after_its_needs_and_independent_ones_overlap() -> None:
    slow_started, fast_done = threading.Event(), threading.Event()
    seen: list[str] = []

    def slow() -> None:
        slow_started.set()
        assert fast_done.wait(5), "the independent node did not run while this one ran"
        seen.append("slow")

    def fast() -> None:
        assert slow_started.wait(5)
        seen.append("fast")
        fast_done.set()

    nodes = [Node("slow", (), slow), Node("fast", (), fast), Node("after", ("slow", "fast"), lambda: seen.append("after"))]
    outcomes = Graph(nodes).run()
    assert seen == ["fast", "slow", "after"]
    assert all(outcome.ok for outcome in outcomes.values())


def test_an_event_marked_by_a_body_starts_what_needs_it_before_that_body_ends() -> None:
    graph: Graph
    order: list[str] = []
    released = threading.Event()

    def starter() -> None:
        graph.mark("ready")
        assert released.wait(5), "the node needing the event did not start while its marker still ran"
        order.append("starter")

    def user() -> None:
        order.append("user")
        released.set()

    graph = Graph([Node("starter", (), starter), Node("ready"), Node("user", ("ready",), user)])
    graph.run()
    assert order == ["user", "starter"]


def test_a_failure_stops_what_needs_it_and_the_rest_finishes() -> None:
    ran: list[str] = []

    def boom() -> None:
        raise RuntimeError("broken")

    nodes = [Node("a", (), boom), Node("b", ("a",), lambda: ran.append("b")), Node("c", ("b",), lambda: ran.append("c")),
             Node("d", (), lambda: ran.append("d"))]
    ended, on_end = _recorder()
    outcomes = Graph(nodes, on_end=on_end).run()  # type: ignore[arg-type]  # the recorder is a plain callable
    assert ran == ["d"]
    assert str(outcomes["a"].error) == "broken"
    assert outcomes["b"] == Outcome(blocked_by="a") and outcomes["c"] == Outcome(blocked_by="a")
    assert outcomes["d"].ok and sorted(ended) == ["a", "b", "c", "d"]


def test_an_event_nobody_marks_ends_failed_with_what_needs_it() -> None:
    outcomes = Graph([Node("never"), Node("x", ("never",), lambda: None), Node("y", (), lambda: None)]).run()
    assert isinstance(outcomes["never"].error, NeverMarked)
    assert outcomes["x"].blocked_by == "never" and outcomes["y"].ok


def test_an_event_marked_failed_stops_what_needs_it() -> None:
    graph: Graph

    def starter() -> None:
        graph.mark("ready", RuntimeError("did not start"))

    graph = Graph([Node("starter", (), starter), Node("ready"), Node("x", ("ready",), lambda: None)])
    outcomes = graph.run()
    assert outcomes["starter"].ok and outcomes["x"].blocked_by == "ready"


@pytest.mark.parametrize("nodes, message", [
    ([Node("a", ("missing",), lambda: None)], "needs of no node: missing"),
    ([Node("a", ("b",), lambda: None), Node("b", ("a",), lambda: None)], "cycle"),
])
def test_needs_must_name_nodes_and_never_loop(nodes: list[Node], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Graph(nodes)


def test_a_listener_that_fails_still_hears_every_end_and_its_first_error_is_raised_at_the_end() -> None:
    """As when stdout is a pipe closed early (BrokenPipeError while a row is printed): a body that waits for
    what the listener sets on a later end (up's Cognito step waits for ``ddb.seed``'s end) must not hang."""
    ran: list[str] = []
    heard: list[str] = []
    b_ended = threading.Event()

    def deaf(name: str, outcome: Outcome) -> None:
        heard.append(name)
        if name == "b":
            b_ended.set()
        raise BrokenPipeError(f"stdout closed at {name}")

    graph = Graph([Node("a", (), lambda: ran.append("a")), Node("b", ("a",), lambda: ran.append("b")),
                   Node("c", (), lambda: (b_ended.wait(10), ran.append("c")))], on_end=deaf)
    with pytest.raises(BrokenPipeError, match="stdout closed at"):
        graph.run()
    assert sorted(ran) == ["a", "b", "c"] and sorted(heard) == ["a", "b", "c"]
    assert b_ended.is_set()
