"""What a step reports (bootstrap/steps.py): the values ``--json`` prints for each step."""

from __future__ import annotations

import json

from bootstrap.steps import Action, StepResult


def test_a_result_as_json_names_its_action_and_rounds_its_duration_to_milliseconds() -> None:
    result = StepResult("db.seed", Action.UPDATED, "5 users, 9 activities", writes=14, duration=1.23456)
    assert result.to_json() == {"step": "db.seed", "action": "updated", "detail": "5 users, 9 activities",
                                "writes": 14, "duration": 1.235}
    assert json.loads(json.dumps(result.to_json())) == result.to_json()


def test_a_result_defaults_to_no_detail_no_writes_and_no_time() -> None:
    assert StepResult("services", Action.UNCHANGED).to_json() == {
        "step": "services", "action": "unchanged", "detail": "", "writes": 0, "duration": 0.0}


def test_every_action_prints_as_its_word() -> None:
    assert [action.value for action in Action] == ["created", "updated", "unchanged", "skipped", "removed",
                                                   "failed", "would run", "started", "passed"]
    assert {StepResult("x", action).to_json()["action"] for action in Action} == {action.value for action in Action}
