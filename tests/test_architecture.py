"""The layers of pyproject.toml's import-linter contract hold, and every module of bootstrap/ is in one."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.conftest import PROJECT_ROOT


def _layers() -> list[str]:
    config = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    [contract] = config["tool"]["importlinter"]["contracts"]
    return contract["layers"]


def _modules() -> set[str]:
    """Every module of bootstrap/ by dotted name; a package by its own name (its ``__init__``)."""
    modules = set()
    for path in (PROJECT_ROOT / "bootstrap").rglob("*.py"):
        parts = path.relative_to(PROJECT_ROOT).with_suffix("").parts
        modules.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return modules - {"bootstrap"}


def test_every_module_is_in_a_layer() -> None:
    """A module is in a layer itself or through a package named there; a package whose modules are named
    one by one (bootstrap.ddb) needs no layer of its own."""
    named = {name for layer in _layers() for name in re.split(r"\s*[:|]\s*", layer)}
    modules = _modules()

    def placed(module: str) -> bool:
        parts = module.split(".")
        return (any(".".join(parts[:end]) in named for end in range(2, len(parts) + 1))
                or any(name.startswith(module + ".") for name in named))

    assert {module for module in modules if not placed(module)} == set(), \
        "a new module: give it its layer in pyproject.toml"
    assert named - modules == set(), "a module named in the layers is gone"


def test_the_layers_contract_is_kept() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
