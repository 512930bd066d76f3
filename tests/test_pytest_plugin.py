"""The pytest plugin, as an app's test suite uses it: a test file of an imaginary app, run by pytest in a process
of its own (with and without xdist, in both orders), on an environment the plugin brings up itself."""

from __future__ import annotations

import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.helpers import PIP_CACHE, PROJECT_ROOT, project_copy

pytestmark = pytest.mark.slow

WRITES = '''
def test_writes_to_all_three_services(cruddur_env):
    import psycopg
    with psycopg.connect(cruddur_env.postgres_url) as conn:
        conn.execute("delete from activities")
        conn.execute("update users set display_name = 'changed'")
    session = cruddur_env.boto3_session()
    dynamodb = session.client("dynamodb", endpoint_url=cruddur_env.aws_endpoint_url)
    dynamodb.put_item(TableName=cruddur_env.table_name, Item={"pk": {"S": "MSG#test"}, "sk": {"S": "x"}})
    first = dynamodb.scan(TableName=cruddur_env.table_name, Limit=1)["Items"][0]
    dynamodb.delete_item(TableName=cruddur_env.table_name, Key={"pk": first["pk"], "sk": first["sk"]})
    cognito = session.client("cognito-idp", endpoint_url=cruddur_env.cognito_endpoint_url)
    cognito.admin_create_user(UserPoolId=cruddur_env.user_pool_id, Username="intruder", MessageAction="SUPPRESS")
'''

SEEDED = '''
def test_sees_the_seeded_state(cruddur_env):
    import psycopg
    with psycopg.connect(cruddur_env.postgres_url) as conn:
        assert conn.execute("select count(*) from activities").fetchone()[0] == 9
        assert conn.execute("select count(*) from users where display_name = 'changed'").fetchone()[0] == 0
        subs = dict(conn.execute("select handle, cognito_user_id from users").fetchall())
    session = cruddur_env.boto3_session()
    dynamodb = session.client("dynamodb", endpoint_url=cruddur_env.aws_endpoint_url)
    items = dynamodb.scan(TableName=cruddur_env.table_name, Select="COUNT", ConsistentRead=True)["Count"]
    assert items == 125
    cognito = session.client("cognito-idp", endpoint_url=cruddur_env.cognito_endpoint_url)
    users = cognito.list_users(UserPoolId=cruddur_env.user_pool_id)["Users"]
    found = {next(a["Value"] for a in u["Attributes"] if a["Name"] == "preferred_username"):
             next(a["Value"] for a in u["Attributes"] if a["Name"] == "sub") for u in users}
    assert found == subs
'''


def test_an_apps_tests_each_start_from_the_seeded_state_in_any_order_with_and_without_xdist(cli,
                                                                                           tmp_path: Path) -> None:
    app = tmp_path / "app"
    app.mkdir()
    (app / "test_writes_first.py").write_text(WRITES + SEEDED)
    (app / "test_seeded_first.py").write_text(SEEDED + WRITES)
    for workers in ("0", "2"):
        for file in ("test_writes_first.py", "test_seeded_first.py"):
            result = cli.run([sys.executable, "-m", "pytest", "-p", "bootstrap.pytest_plugin", "-p", "no:cacheprovider",
                              "--rootdir", str(app), f"--cruddur-dir={PROJECT_ROOT}", "-n", workers, "-q",
                              str(app / file)], timeout=300)
            assert "2 passed" in result.stdout, result.stdout


def test_the_plugin_is_the_projects_pytest11_entry_point() -> None:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    assert project["entry-points"]["pytest11"] == {"cruddur": "bootstrap.pytest_plugin"}


def test_installing_the_clone_into_an_apps_venv_brings_the_plugin_and_what_it_needs(cli, tmp_path: Path) -> None:
    """As an app's developer does: a venv of the app's own, the clone installed into it with pip. The installed
    project requires what requirements.txt lists. Installed as a wheel (the package without the clone's sql/ and
    seeds/) the plugin says how to install it, in one line; installed editable, pytest finds it through the entry
    point alone (no `-p`). The libraries themselves come from this venv (a .pth file): pip finds them there, which
    spares the test unpacking some sixty packages (about 45 s)."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "test_app.py").write_text(WRITES + SEEDED)
    subprocess.run([sys.executable, "-m", "venv", str(app / ".venv")], check=True, timeout=120)
    python = str(app / ".venv" / "bin" / "python")
    site = subprocess.run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], check=True,
                          capture_output=True, text=True).stdout.strip()
    (Path(site) / "libraries-of-the-test-venv.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    copy = project_copy(tmp_path / "clone")  # pip builds in the folder it installs: not in the project itself
    # The app's own pytest.ini names the clone, as the README shows. (A bare `--cruddur-dir PATH` is also taken by
    # pytest as a path to look for its configuration in, so the clone's pyproject.toml would put the clone on
    # sys.path, and its package would pass for the installed one.)
    (app / "pytest.ini").write_text(f"[pytest]\ncruddur_dir = {copy}\n")

    def pip_install(*what: str) -> None:
        subprocess.run([python, "-m", "pip", "install", "-q", "--cache-dir", str(PIP_CACHE), *what],
                       check=True, capture_output=True, timeout=600)

    def app_tests() -> subprocess.CompletedProcess[str]:
        # In the app's folder, as its developer runs it.
        # Without workers: the orders and xdist are the test above's; here it is how the plugin gets there.
        return subprocess.run([python, "-m", "pytest", "-p", "no:cacheprovider", "-n", "0", "-q", "test_app.py"],
                              cwd=app, env=cli.env, capture_output=True, text=True, timeout=300)

    pip_install(str(copy))
    required = subprocess.run([python, "-c", "import importlib.metadata as m; print(*m.requires('cruddur-bootstrap'), "
                               "sep='\\n')"], check=True, capture_output=True, text=True).stdout.split("\n")
    listed = [line.split("#")[0].strip() for line in (PROJECT_ROOT / "requirements.txt").read_text().splitlines()]
    assert {_name(r) for r in required if r} == {_name(r) for r in listed if r}
    refused = app_tests()
    assert refused.returncode != 0 and "Traceback" not in refused.stdout
    assert "schema.sql is missing): install the clone editable (`pip install -e path/to/cruddur-bootstrap`)" in (
        refused.stdout), refused.stdout
    pip_install("-e", str(copy))
    result = app_tests()
    assert "2 passed" in result.stdout, result.stdout + result.stderr



def _name(requirement: str) -> str:
    """A requirement's project name as pip compares them (``psycopg[binary]>=3.1`` is ``psycopg``)."""
    return canonicalize_name(Requirement(requirement).name)
