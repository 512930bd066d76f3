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


def _help_text(name: str) -> str:
    """What `invoke TASK --help` prints, and its exit code 0 (in-process: 30 tasks, one process would take 10 s)."""
    import contextlib
    import io

    from invoke import Program

    out = io.StringIO()
    with contextlib.redirect_stdout(out), pytest.raises(SystemExit) as exited:
        Program(namespace=tasks.ns, binary="invoke").run(["invoke", name, "--help"])
    assert exited.value.code in (0, None), (name, out.getvalue())
    return out.getvalue()


def _flags(help_text: str) -> list[tuple[str, ...]]:
    """Each option line's flag names with their value placeholder: ('-t STRING', '--target=STRING')."""
    import re

    return [tuple(part.strip() for part in match.group(1).split(", "))
            for match in re.finditer(r"^  (-[^ ].*?)(?:  +\S.*)?$", help_text.split("Options:", 1)[-1], re.M)]


@pytest.mark.parametrize("name", sorted(TASKS))
def test_help_works_for_every_task_and_short_flags_mean_one_thing(name: str) -> None:
    flags = _flags(_help_text(name))
    assert flags or not TASKS[name].help, name
    for names in flags:
        short = [flag.split(" ")[0] for flag in names if not flag.startswith("--")]
        long = next(flag for flag in names if flag.startswith("--")).split("=")[0].lstrip("-").replace("-", "_")
        if short:
            assert short == [f"-{tasks.SHORT_FLAGS[long]}"], (name, names)
        if long == "target":
            assert short == ["-t"], (name, names)


@pytest.mark.parametrize("name", sorted(TASKS))
def test_every_option_that_takes_a_value_shows_it(name: str) -> None:
    """A flag without a placeholder reads as on/off: only the booleans may have none."""
    task = TASKS[name]
    for argument in task.get_arguments():
        if argument.kind is not bool:
            assert argument.kind in (str, int), (name, argument.names, argument.kind)


def test_required_values_are_options_the_task_checks() -> None:
    from bootstrap.errors import InputError

    with pytest.raises(InputError, match=r"^--group is required: the message group's UUID \(see invoke "
                                         r"ddb.list-conversations\)$"):
        TASKS["ddb.create-message"].body.__wrapped__(None)  # the body itself, before _friendly's exit
    with pytest.raises(InputError, match=r"^--from is required"):
        TASKS["ddb.create-group"].body.__wrapped__(None)


def test_every_flag_of_every_task_is_in_the_readme() -> None:
    """Each task's row of the README's task table names every flag `invoke TASK --help` lists."""
    import re

    from tests.helpers import PROJECT_ROOT

    readme = (PROJECT_ROOT / "README.md").read_text()
    rows = [line for line in readme.split("## Tasks", 1)[1].splitlines() if line.startswith("| `")]
    missing = {}
    for name in TASKS:
        own = [row for row in rows if re.search(rf"`{re.escape(name)}`", row.split(" | ")[0])]
        assert own, f"no row of the README's task table names {name}"
        for names in _flags(_help_text(name)):
            flag = next(f for f in names if f.startswith("--")).split("=")[0]
            if not any(re.search(rf"`{re.escape(flag)}[` ]", row) for row in own):
                missing.setdefault(name, []).append(flag)
    assert not missing
