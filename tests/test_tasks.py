"""tasks.py, the table of contents: every task is documented and declared the same way."""

from __future__ import annotations

import inspect

import pytest

import tasks
from bootstrap.config import OPTION_BY_NAME


def _all_tasks() -> dict[str, object]:
    found = {}
    collections = [("", tasks.ns)]
    while collections:
        prefix, collection = collections.pop()
        found.update({prefix + name: task for name, task in collection.tasks.items()})
        collections += [(f"{prefix}{name}.", sub) for name, sub in collection.collections.items()]
    return found


TASKS = _all_tasks()


def test_the_collections_hold_every_task_the_original_scripts_had() -> None:
    expected = {"db.setup", "db.schema-load", "db.update-cognito-user-ids", "ddb.schema-load", "ddb.seed", "ddb.scan",
                "ddb.get-conversation", "cognito.list-users", "up", "down", "status", "env", "verify"}
    assert expected <= set(TASKS)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_task_has_a_one_line_summary_and_help_for_each_flag(name: str) -> None:
    task = TASKS[name]
    assert (task.__doc__ or "").strip(), f"{name} has no docstring"
    flags = [p for p in inspect.signature(task.body).parameters if p != "c"]
    assert sorted(task.help) == sorted(flags), f"{name}: help for {sorted(task.help)}, flags {sorted(flags)}"


def test_a_flag_that_sets_a_setting_shows_the_settings_own_help() -> None:
    flag_to_setting = {tasks.FLAG_NAMES.get(name, name).lstrip("-").replace("-", "_"): name for name in OPTION_BY_NAME}
    checked = 0
    for name, task in TASKS.items():
        for flag, text in task.help.items():
            setting = flag_to_setting.get(flag)
            if setting is not None:
                assert text == OPTION_BY_NAME[setting].help, f"{name} --{flag}"
                checked += 1
    assert checked >= 20  # target/backend on most tasks, plus timeout, ddb_engine, batch size, starting position
