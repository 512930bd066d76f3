"""The test suite's own rule for missing parts (tests/conftest.py, ``skip_missing``): outside CI a test whose
part is missing skips, saying why; on CI, or with ``CRUDDUR_REQUIRE_ALL=1``, it fails, naming what is missing.

A tooling test, like test_architecture's: it mirrors no module of bootstrap/. The suite is run as CI runs
it, a pytest process of its own, on a tiny test that asks for DynamoDB Local the way the ``both_engines``
tests do (``engine_settings``), with Java taken away: a PATH without ``java`` and no JAVA_HOME, beside a
folder that holds a (dummy) DynamoDBLocal.jar so that Java is the one missing part on any machine.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import requires_all
from tests.helpers import PROJECT_ROOT, outside_environment

TINY_TEST = '''
from tests.conftest import engine_settings


def test_needs_dynamodb_local():
    engine_settings("dynamodb-local")
'''


@pytest.mark.parametrize(("environ", "expected"), [
    ({}, False), ({"CI": "true"}, True), ({"CI": "1"}, True), ({"CI": "false"}, False), ({"CI": "0"}, False),
    ({"CI": ""}, False), ({"CI": "FALSE"}, False), ({"CRUDDUR_REQUIRE_ALL": "1"}, True),
    ({"CRUDDUR_REQUIRE_ALL": "0"}, False), ({"CI": "false", "CRUDDUR_REQUIRE_ALL": "1"}, True),
])
def test_requires_all_on_ci_or_when_asked(environ: dict[str, str], expected: bool) -> None:
    assert requires_all(environ) is expected


def _run_tiny_test(tmp_path: Path, **environ: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_tiny.py").write_text(TINY_TEST)
    jar_dir = tmp_path / "dynamodb-local"
    jar_dir.mkdir()
    (jar_dir / "DynamoDBLocal.jar").write_bytes(b"")
    path = os.pathsep.join(folder for folder in os.environ["PATH"].split(os.pathsep)
                           if folder and not (Path(folder) / "java").exists())
    env = {k: v for k, v in outside_environment().items() if k not in ("CI", "JAVA_HOME")}
    env.update(PATH=path, PYTHONPATH=str(PROJECT_ROOT), CRUDDUR_DYNAMODB_LOCAL_PATH=str(jar_dir),
               CRUDDUR_CACHE_DIR=str(tmp_path / "empty-cache"), **environ)
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider", "-p", "no:xdist",
                           "--rootdir", str(tmp_path), str(tmp_path / "test_tiny.py")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("environ", [{"CI": "true"}, {"CRUDDUR_REQUIRE_ALL": "1"}])
def test_a_missing_part_fails_on_ci_naming_it(tmp_path: Path, environ: dict[str, str]) -> None:
    result = _run_tiny_test(tmp_path, **environ)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "1 failed" in result.stdout, result.stdout
    assert "missing on this machine: DynamoDB Local cannot run here: DynamoDB Local found, but no Java was found" \
           in result.stdout, result.stdout


@pytest.mark.parametrize("environ", [{}, {"CI": "false"}])
def test_a_missing_part_skips_outside_ci_saying_why(tmp_path: Path, environ: dict[str, str]) -> None:
    result = _run_tiny_test(tmp_path, **environ)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 skipped" in result.stdout, result.stdout
    assert "SKIPPED" in result.stdout and "no Java was found" in result.stdout, result.stdout
