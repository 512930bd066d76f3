"""Settings resolution: defaults < invoke.yaml < environment < flags, and the errors for bad values."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bootstrap.config import Endpoints, mask_url, postgres_url, resolve_settings, with_database
from bootstrap.errors import ConfigError
from tests.helpers import PROJECT_ROOT, outside_environment


def test_defaults_follow_the_contract() -> None:
    s = resolve_settings({}, {}, {})
    assert (s.target, s.backend, s.region, s.table_name) == ("local", "auto", "us-east-1", "cruddur-messages")
    assert (s.pg_user, s.pg_password, s.pg_database, s.pg_port, s.ddb_port) == ("postgres", "password", "cruddur", 5432, 8000)
    assert s.sources["region"] == "default"


def test_layers_override_in_order_and_remember_their_source() -> None:
    file_values = {"region": "eu-west-1", "table_name": "from-file", "ready_timeout": 5}
    environ = {"CRUDDUR_REGION": "eu-central-1", "CRUDDUR_TABLE_NAME": "from-env"}
    s = resolve_settings(file_values, environ, {"table_name": "from-flag", "region": None})
    assert s.region == "eu-central-1" and s.sources["region"] == "env CRUDDUR_REGION"
    assert s.table_name == "from-flag" and s.sources["table_name"] == "flag --table-name"
    named = resolve_settings({}, {}, {"table_name": "from-flag"}, flag_names={"table_name": "--table"})
    assert named.sources["table_name"] == "flag --table"
    assert s.ready_timeout == 5.0 and s.sources["ready_timeout"] == "invoke.yaml"


def test_connection_url_sets_the_postgres_fields() -> None:
    s = resolve_settings({}, {"CONNECTION_URL": "postgresql://app:s%40cret@db.example:6543/other"}, {})
    assert (s.pg_port, s.pg_user, s.pg_password, s.pg_database) == (6543, "app", "s@cret", "other")


def test_endpoint_url_sets_the_ddb_port() -> None:
    assert resolve_settings({}, {"AWS_ENDPOINT_URL": "http://localhost:8123"}, {}).ddb_port == 8123


@pytest.mark.parametrize(
    ("flags", "fragment"),
    [
        ({"target": "staging"}, "'staging' for target; choose one of: local, prod"),
        ({"backend": "podman"}, "'podman' for backend"),
        ({"ready_timeout": "soon"}, "'soon' for ready_timeout"),
        ({"pg_port": "70000"}, "'70000' for pg_port"),
        ({"table_name": "a#b"}, "DynamoDB rejects the table name 'a#b'"),
    ],
)
def test_bad_values_are_named(flags: dict, fragment: str) -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_settings({}, {}, flags)
    assert fragment in str(caught.value)
    assert caught.value.exit_code == 2


def test_unknown_file_key_is_reported() -> None:
    with pytest.raises(ConfigError, match="unknown setting 'cruddur.tabel_name'"):
        resolve_settings({"tabel_name": "x"}, {}, {})


def test_bad_connection_url_is_masked_in_the_error() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve_settings({}, {"CONNECTION_URL": "mysql://u:hunter2@h/db"}, {})
    assert "hunter2" not in str(caught.value)


def test_urls_are_masked_and_assembled_in_one_place() -> None:
    url = postgres_url("localhost", 5432, "postgres", "p@ss word", "cruddur")
    assert url == "postgresql://postgres:p%40ss%20word@localhost:5432/cruddur"
    assert mask_url(url) == "postgresql://postgres:***@localhost:5432/cruddur"
    assert mask_url("http://localhost:8000") == "http://localhost:8000"
    assert with_database(url, "postgres").endswith("@localhost:5432/postgres")


def test_any_text_has_every_url_and_libpq_password_in_it_masked() -> None:
    from bootstrap.config import mask_text, masked_failure

    text = ('connection to "postgresql://u:hunter2@h:5/db" failed (host=h password=hunter3 port=5); '
            "also http://key:hunter4@localhost:8000/ and http://localhost:8000")
    assert mask_text(text) == ('connection to "postgresql://u:***@h:5/db" failed (host=h password=*** port=5); '
                               "also http://key:***@localhost:8000/ and http://localhost:8000")
    failure = masked_failure(RuntimeError("cannot use postgresql://u:hunter2@h/db"))
    assert "hunter2" not in failure.line() + str(failure.to_json())


def test_endpoints_know_their_database() -> None:
    e = Endpoints("postgresql://u:p@h:1/cruddur", "http://localhost:8000", "us-east-1")
    assert e.database_name == "cruddur" and e.admin_postgres_url.endswith("/postgres") and e.is_local_aws


def test_invoke_yaml_comment_lists_every_setting() -> None:
    """The project's invoke.yaml names every key it may set, in the order of OPTIONS."""
    import re

    from bootstrap.config import OPTIONS, PROJECT_ROOT

    text = (PROJECT_ROOT / "invoke.yaml").read_text()
    comment = " ".join(line.lstrip("# ") for line in text.split("# Keys:", 1)[1].split("cruddur:", 1)[0].splitlines())
    assert re.findall(r"[a-z_]+", comment) == [option.name for option in OPTIONS]


# --- the prod target's endpoints and credentials ---------------------------------------------


@pytest.mark.parametrize("endpoint", ["http://localhost:8000", "http://127.0.0.1:4566", "http://[::1]:8000",
                                      "https://moto.localhost", "http://0.0.0.0:8000"])
def test_every_loopback_endpoint_counts_as_local(endpoint: str) -> None:
    with pytest.raises(ConfigError, match="is a local endpoint, but the target is prod"):
        resolve_settings({}, {"AWS_ENDPOINT_URL": endpoint}, {"target": "prod"})


def test_a_remote_endpoint_with_prod_and_a_local_endpoint_locally_are_fine() -> None:
    resolve_settings({}, {"AWS_ENDPOINT_URL": "https://dynamodb.eu-west-1.amazonaws.com"}, {"target": "prod"},
                     aws_region=lambda: ("eu-west-1", "env AWS_REGION"))
    resolve_settings({}, {"AWS_ENDPOINT_URL": "http://localhost:8000"}, {"target": "local"})


# --- the prod target's region ------------------------------------------------------------------


def test_the_region_set_for_the_tool_wins_else_prod_takes_the_aws_chains_and_local_the_apps() -> None:
    chain = lambda: ("ca-central-1", "profile cruddur-prod in /home/u/.aws/config")  # noqa: E731
    prod = resolve_settings({}, {}, {"target": "prod"}, aws_region=chain)
    assert (prod.region, prod.sources["region"]) == ("ca-central-1", "profile cruddur-prod in /home/u/.aws/config")
    for file_values, environ, source in (({"region": "eu-west-3"}, {}, "invoke.yaml"),
                                         ({}, {"CRUDDUR_REGION": "eu-west-3"}, "env CRUDDUR_REGION")):
        chosen = resolve_settings(file_values, environ, {"target": "prod"}, aws_region=chain)
        assert (chosen.region, chosen.sources["region"]) == ("eu-west-3", source)
    local = resolve_settings({}, {"AWS_REGION": "eu-west-2"}, {}, aws_region=chain)  # boto3 and the app ignore it
    assert (local.region, local.sources["region"]) == ("us-east-1", "default")
    local = resolve_settings({}, {"AWS_DEFAULT_REGION": "eu-west-2"}, {}, aws_region=chain)  # the contract's variable
    assert (local.region, local.sources["region"]) == ("eu-west-2", "env AWS_DEFAULT_REGION")
    local = resolve_settings({"region": "eu-west-3"}, {"AWS_DEFAULT_REGION": "eu-west-2"}, {}, aws_region=chain)
    assert (local.region, local.sources["region"]) == ("eu-west-3", "invoke.yaml")


def test_prod_with_no_region_anywhere_refuses_saying_how_to_set_one_never_guessing() -> None:
    nowhere = lambda: (None, "not in AWS_REGION, AWS_DEFAULT_REGION, nor the profile default in ~/.aws/config")  # noqa: E731
    with pytest.raises(ConfigError, match=r"^the prod target needs an AWS region, and none is set \(not in AWS_REGION"
                                          r".*`export AWS_REGION=ca-central-1`.*CRUDDUR_REGION"):
        resolve_settings({}, {}, {"target": "prod"}, aws_region=nowhere)


@pytest.fixture
def aws_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An AWS config file with a named profile in ca-central-1 and a default profile without a region."""
    config = tmp_path / "aws-config"
    config.write_text("[default]\noutput = json\n\n[profile cruddur-prod]\nregion = ca-central-1\n")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    return config


def test_the_aws_chain_reads_the_profile_named_by_aws_profile_as_boto3_does(
    aws_config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import boto3

    from bootstrap.config import aws_chain_region

    monkeypatch.setenv("AWS_PROFILE", "cruddur-prod")
    assert aws_chain_region() == ("ca-central-1", f"profile cruddur-prod in {aws_config}")
    assert boto3.Session().region_name == "ca-central-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-2")
    assert aws_chain_region() == ("eu-west-2", "env AWS_DEFAULT_REGION") and boto3.Session().region_name == "eu-west-2"
    monkeypatch.setenv("AWS_REGION", "ap-south-1")  # what the AWS CLI v2 and the other SDKs read first
    assert aws_chain_region() == ("ap-south-1", "env AWS_REGION")


def test_the_aws_chain_without_a_region_says_where_it_looked(aws_config: Path) -> None:
    import boto3

    from bootstrap.config import aws_chain_region

    assert aws_chain_region() == (None, f"not in AWS_REGION, AWS_DEFAULT_REGION, nor the profile default in {aws_config}")
    assert boto3.Session().region_name is None


def test_a_profile_that_is_not_there_is_named(aws_config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from bootstrap.config import aws_chain_region

    monkeypatch.setenv("AWS_PROFILE", "cruddur-typo")
    with pytest.raises(ConfigError, match=f"^env AWS_PROFILE: the profile 'cruddur-typo' is not in {aws_config}"):
        aws_chain_region()


# Runs in a fresh process, as a task does: botocore's session caches the credentials it found.
_SIGNING_KEYS = """
import sys
from bootstrap.config import Endpoints

class Sent(Exception):
    pass

def key_of(client):
    def stop(request, **kwargs):
        raise Sent(request.headers["Authorization"].decode().split("Credential=")[1].split("/")[0])
    client.meta.events.register("before-send", stop)
    try:
        client.list_tables()
    except Sent as sent:
        return str(sent)

prod = Endpoints("postgresql://u@db.invalid/cruddur", None, "us-east-1")
local = Endpoints("postgresql://u@db.invalid/cruddur", "http://localhost:1", "us-east-1")
print(key_of(prod.client("dynamodb")), key_of(local.client("dynamodb")))
"""


def test_prod_clients_use_the_normal_credential_chain_never_the_local_dummy_keys(tmp_path: Path) -> None:
    """The request is signed, then stopped by a before-send hook: nothing leaves the machine."""
    env = {**outside_environment(), "AWS_EC2_METADATA_DISABLED": "true",
           "AWS_SHARED_CREDENTIALS_FILE": str(tmp_path / "no-aws-credentials"),
           "AWS_CONFIG_FILE": str(tmp_path / "no-aws-config"),
           "AWS_ACCESS_KEY_ID": "AKIAPRODCHAINTEST", "AWS_SECRET_ACCESS_KEY": "prod-chain-secret"}
    result = subprocess.run([sys.executable, "-c", _SIGNING_KEYS], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    from bootstrap.config import LOCAL_AWS_ACCESS_KEY_ID

    assert result.stdout.split() == ["AKIAPRODCHAINTEST", LOCAL_AWS_ACCESS_KEY_ID]


def test_ephemeral_is_a_switch_from_the_environment_or_the_flag() -> None:
    assert resolve_settings({}, {}).ephemeral is False
    assert resolve_settings({}, {"CRUDDUR_EPHEMERAL": "1"}).ephemeral is True
    assert resolve_settings({}, {"CRUDDUR_EPHEMERAL": "no"}).ephemeral is False
    assert resolve_settings({}, {}, {"ephemeral": True}).ephemeral is True
    with pytest.raises(ConfigError, match="CRUDDUR_EPHEMERAL: invalid value 'maybe' for ephemeral"):
        resolve_settings({}, {"CRUDDUR_EPHEMERAL": "maybe"})
