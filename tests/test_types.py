"""The type checker as a test, like the layers contract (test_architecture): mypy with pyproject.toml's
[tool.mypy] configuration passes, and every type-ignore comment left in the project names its error code
and says why. A tooling test: it mirrors no module of bootstrap/."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from tests.helpers import PROJECT_ROOT

# `# type: ignore[code]  # why`: the code, then a comment saying why it cannot be typed better.
_IGNORE = re.compile(r"#\s*type:\s*ignore\b(?P<rest>.*)$")
_EXPLAINED = re.compile(r"^\[[a-z0-9-]+(,\s*[a-z0-9-]+)*\]\s+#\s*\S")


def test_mypy_passes_with_the_projects_configuration() -> None:
    mypy = Path(sys.executable).parent / "mypy"
    result = subprocess.run([str(mypy), "--no-incremental"], cwd=PROJECT_ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_type_ignore_names_its_code_and_says_why() -> None:
    paths = [PROJECT_ROOT / "tasks.py", *(path for folder in ("bootstrap", "benchmarks", "tests")
                                          for path in sorted((PROJECT_ROOT / folder).rglob("*.py")))]
    bare = []
    for path in paths:
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            found = _IGNORE.search(line)
            if found and not _EXPLAINED.match(found.group("rest")):
                bare.append(f"{path.relative_to(PROJECT_ROOT)}:{number}: {line.strip()}")
    assert bare == [], "write `# type: ignore[code]  # why`"


def test_the_rule_tells_an_explained_ignore_from_a_bare_one() -> None:
    marker = "type: " + "ignore"  # spelled apart, so that this file's own lines are not found bare

    def explained(line: str) -> bool:
        found = _IGNORE.search(line)
        return found is not None and _EXPLAINED.match(found.group("rest")) is not None

    assert explained(f"x = f()  # {marker}[arg-type]  # the stubs say int")
    assert explained(f"x = f()  # {marker}[misc, arg-type]  # why")
    assert not explained(f"x = f()  # {marker}")
    assert not explained(f"x = f()  # {marker}[arg-type]")
    assert not explained(f"x = f()  # {marker}  # why, but no code")
