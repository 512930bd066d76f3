"""The layers of pyproject.toml's import-linter contract hold, every module of bootstrap/ is in one, and every
module has its mirrored test file."""

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


def test_every_module_has_its_mirrored_test_file() -> None:
    """bootstrap/<path>/<module>.py is tested in tests/<path>/test_<module>.py (a package's ``__init__`` needs none)."""
    missing = []
    for path in sorted((PROJECT_ROOT / "bootstrap").rglob("*.py")):
        if path.name == "__init__.py":
            continue
        relative = path.relative_to(PROJECT_ROOT / "bootstrap")
        test_file = PROJECT_ROOT / "tests" / relative.parent / f"test_{relative.name}"
        if not test_file.is_file():
            missing.append(f"bootstrap/{relative} -> {test_file.relative_to(PROJECT_ROOT)}")
    assert missing == []


def test_the_layers_contract_is_kept() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    result = subprocess.run([str(lint_imports), "--no-cache"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def _defined_in(init: Path) -> set[str]:
    """The names a package's ``__init__`` defines at its top level (what ``from . import name`` may take)."""
    import ast

    names: set[str] = set()
    for node in ast.parse(init.read_text(encoding="utf-8")).body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef, ast.AsyncFunctionDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {target.id for target in targets if isinstance(target, ast.Name)}
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(alias.asname or alias.name).split(".")[0] for alias in node.names}
    return names


def test_every_relative_import_names_something_that_exists() -> None:
    """import-linter passes over an import of a module that does not exist; a lazy one would fail only when run."""
    import ast

    def exists(parts: tuple[str, ...]) -> bool:
        target = PROJECT_ROOT.joinpath(*parts)
        return target.with_suffix(".py").exists() or (target / "__init__.py").exists()

    missing = []
    for path in (PROJECT_ROOT / "bootstrap").rglob("*.py"):
        package = path.relative_to(PROJECT_ROOT).parent.parts
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.ImportFrom) or not node.level:
                continue
            base = package[:len(package) - node.level + 1] + (tuple(node.module.split(".")) if node.module else ())
            if node.module is not None:
                found = exists(base)
            else:  # from . import name: a module of the package, or a name its __init__ defines
                init = PROJECT_ROOT.joinpath(*base, "__init__.py")
                found = all(exists(base + (alias.name,)) or alias.name in _defined_in(init) for alias in node.names)
            if not found:
                missing.append(f"{path.relative_to(PROJECT_ROOT)}:{node.lineno}: {'.'.join(base)}")
    assert missing == []
