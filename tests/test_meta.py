"""The keys of ``bootstrap_meta`` (bootstrap/meta.py): each one unique, and the only keys the code writes.

Read from the source (what the code would write, on every path), not from one
run: a key written under a literal or a name of another module would let
``up``'s planning and a step disagree about what was recorded. What a real
seed records is checked against these keys in tests/up/test_run.py.
"""

from __future__ import annotations

import ast
from pathlib import Path

from bootstrap import meta
from tests.helpers import PROJECT_ROOT

KEYS = {name: value for name, value in vars(meta).items() if name.isupper() and isinstance(value, str)}


def _modules() -> dict[Path, ast.Module]:
    return {path: ast.parse(path.read_text(encoding="utf-8"))
            for path in sorted((PROJECT_ROOT / "bootstrap").rglob("*.py")) if path.name != "meta.py"}


def _is_meta_write(call: ast.Call) -> bool:
    """pg.bookkeeping's ``write_meta(url, values)``, or ``bookkeeping.write(conn, values)`` inside a transaction."""
    func = call.func
    if isinstance(func, ast.Name):
        return func.id == "write_meta"
    return (isinstance(func, ast.Attribute) and func.attr == "write"
            and isinstance(func.value, ast.Name) and func.value.id == "bookkeeping")


def _returned_dicts(modules: dict[Path, ast.Module], method: str) -> list[ast.Dict]:
    """The dict literals that functions named ``method`` return (what ``**record.meta_values()`` spreads)."""
    return [node.value for tree in modules.values() for function in ast.walk(tree)
            if isinstance(function, ast.FunctionDef) and function.name == method
            for node in ast.walk(function) if isinstance(node, ast.Return) and isinstance(node.value, ast.Dict)]


def _written_keys(modules: dict[Path, ast.Module], values: ast.expr, where: str) -> list[tuple[str, str]]:
    """(where, key expression) for every key ``values`` writes; a call is followed to the dicts it returns."""
    if isinstance(values, ast.Call) and isinstance(values.func, ast.Attribute):
        dicts = _returned_dicts(modules, values.func.attr)
        assert dicts, f"{where}: the values come from {values.func.attr}(), which returns no dict literal"
        return [key for found in dicts for key in _written_keys(modules, found, where)]
    assert isinstance(values, ast.Dict), f"{where}: bootstrap_meta written from {ast.unparse(values)}"
    keys = []
    for key, value in zip(values.keys, values.values):
        keys.extend(_written_keys(modules, value, where) if key is None else [(where, ast.unparse(key))])
    return keys


def test_every_key_is_unique() -> None:
    assert len(set(KEYS.values())) == len(KEYS) and len(KEYS) >= 9
    assert all(value and value == value.strip() for value in KEYS.values())


def test_every_key_the_code_writes_is_one_of_meta_s() -> None:
    modules = _modules()
    written = []
    for path, tree in modules.items():
        for call in (node for node in ast.walk(tree) if isinstance(node, ast.Call) and _is_meta_write(node)):
            written += _written_keys(modules, call.args[1], f"{path.relative_to(PROJECT_ROOT)}:{call.lineno}")
    assert {key for _, key in written} <= set(KEYS), [entry for entry in written if entry[1] not in KEYS]
    # Every key is written somewhere: a key nothing writes would be read as "never done" forever.
    assert {key for _, key in written} == set(KEYS)


def test_no_module_spells_a_key_itself() -> None:
    spelled = [f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}: {node.value!r}"
               for path, tree in _modules().items() for node in ast.walk(tree)
               if isinstance(node, ast.Constant) and node.value in KEYS.values()]
    assert spelled == []
