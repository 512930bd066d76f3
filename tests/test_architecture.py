"""The layers of pyproject.toml's import-linter contract hold, and every module of bootstrap/ is in one."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.helpers import PROJECT_ROOT


def _layers() -> list[str]:
    config = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())
    [contract] = config["tool"]["importlinter"]["contracts"]
    return contract["layers"]


def test_every_module_is_in_a_layer() -> None:
    named = {name for layer in _layers() for name in re.split(r"\s*[:|]\s*", layer)}
    modules = {f"bootstrap.{path.stem}" for path in (PROJECT_ROOT / "bootstrap").glob("*.py") if path.stem != "__init__"}
    assert modules - named == set(), "a new module: give it its layer in pyproject.toml"
    assert named - modules == set(), "a module named in the layers is gone"


def test_the_layers_contract_is_kept() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
