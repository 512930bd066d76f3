"""Our errors (bootstrap/errors.py): exit codes, the hints that turn AWS and operating-system failures into fixes,
and the last-resort mapping of any exception to one line (``describe``, used by the task boundary in tasks.py).

The failures are real ones (the session's moto server, a port nobody listens on, a missing program) except
where a test says why it builds one.
"""

from __future__ import annotations

import subprocess

import pytest

from bootstrap.errors import (
    CLOSED_OUTPUT_EXIT, DOCTOR_HINT, INTERRUPTED, UNEXPECTED_EXIT, BootstrapError, ConfigError, DriftError, InputError,
    NotReadyError, PartWayError, RefusedError, ServiceError, VerifyError, aws_errors, describe, exit_status,
)
from tests.conftest import Stack


def test_each_error_has_its_exit_code_and_the_message_says_error() -> None:
    codes = {error: exit_status(error("what went wrong")) for error in (
        BootstrapError, ConfigError, InputError, RefusedError, ServiceError, NotReadyError, DriftError, VerifyError)}
    assert {error.__name__: code for error, (code, _) in codes.items()} == {
        "BootstrapError": 1, "ConfigError": 2, "InputError": 2, "RefusedError": 3, "ServiceError": 1,
        "NotReadyError": 1, "DriftError": 1, "VerifyError": 1}
    assert {message for _, message in codes.values()} == {"error: what went wrong"}


def test_ctrl_c_exits_130_and_a_bug_is_one_line_with_its_own_code_and_how_to_see_more() -> None:
    assert exit_status(KeyboardInterrupt()) == (130, INTERRUPTED)
    assert exit_status(ValueError("a bug\nover two lines")) == (
        UNEXPECTED_EXIT, "unexpected error: ValueError: a bug over two lines; hint: re-run with CRUDDUR_DEBUG=1 "
                         "for the traceback and report it")


def test_a_closed_output_exits_141_saying_so_and_not_sending_the_user_to_doctor() -> None:
    """A reader that went away (`| head`) is no fault of the machine: 141 as for SIGPIPE, one line on stderr."""
    code, line = exit_status(BrokenPipeError(32, "Broken pipe"))
    assert (code, CLOSED_OUTPUT_EXIT) == (141, 141)
    assert line.startswith("error: the output was closed before all of it was written") and DOCTOR_HINT not in line


def test_a_task_stopped_part_way_keeps_the_exit_code_of_what_stopped_it_and_says_what_it_put_back() -> None:
    put_back = "loading x was interrupted; it was put back; hint: `invoke state.load x` tries again"
    assert exit_status(PartWayError(put_back, 130)) == (130, put_back)  # Ctrl-C: no "error:", still 130
    failure = describe(PartWayError("loading x failed (AWS: boom); it was put back; hint: try again", 1))
    assert (failure.exit_code, failure.line(), failure.hint) == (
        1, "error: loading x failed (AWS: boom); it was put back; hint: try again", "try again")


def test_our_errors_keep_their_words_and_their_hint_is_told_apart() -> None:
    failure = describe(ServiceError("writing /x: Permission denied (/x); hint: make it writable"))
    assert failure.line() == "error: writing /x: Permission denied (/x); hint: make it writable"
    assert failure.to_json() == {"error": "writing /x: Permission denied (/x)", "hint": "make it writable",
                                 "exit_code": 1}
    assert describe(ServiceError(f"not ready\n{DOCTOR_HINT}")).to_json()["hint"] == DOCTOR_HINT


def _closed_port() -> int:
    """A port nothing listens on: connecting is refused at once."""
    from bootstrap.processes import free_port

    return free_port()


def test_an_aws_endpoint_that_does_not_answer_is_one_line_naming_it() -> None:
    import boto3
    from botocore.config import Config

    from bootstrap.config import LOCAL_AWS_ACCESS_KEY_ID, LOCAL_AWS_SECRET_ACCESS_KEY

    port = _closed_port()
    client = boto3.client("dynamodb", endpoint_url=f"http://127.0.0.1:{port}", region_name="us-east-1",
                          aws_access_key_id=LOCAL_AWS_ACCESS_KEY_ID, aws_secret_access_key=LOCAL_AWS_SECRET_ACCESS_KEY,
                          config=Config(retries={"total_max_attempts": 1}))
    with pytest.raises(Exception) as caught:
        client.list_tables()
    code, line = exit_status(caught.value)
    assert code == 1 and line.startswith(f'error: AWS endpoint not answering: Could not connect to the endpoint URL: '
                                         f'"http://127.0.0.1:{port}/"; hint: ') and "invoke status" in line


def test_missing_and_refused_aws_credentials_are_settings_to_fix(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    """Missing: no credentials anywhere (the isolated environment's files do not exist). Refused: a real
    ClientError of the session's moto server (an unknown user pool) stands for AWS's own answer's shape;
    the codes AWS uses for refused credentials are exit 2 with the credentials hint."""
    import boto3
    from botocore.exceptions import ClientError

    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")  # no instance metadata lookup: fast, the same anywhere
    with pytest.raises(Exception) as missing:
        boto3.client("sts", region_name="us-east-1").get_caller_identity()
    code, line = exit_status(missing.value)
    assert code == 2 and line.startswith("error: AWS: Unable to locate credentials; hint: check the credentials")

    with pytest.raises(ClientError) as refused:
        stack.endpoints.client("cognito-idp").list_users(UserPoolId="us-east-1_nowhere")
    assert exit_status(refused.value)[1].startswith("error: AWS ListUsers: ResourceNotFoundException: ")
    refused.value.response["Error"]["Code"] = "UnrecognizedClientException"
    assert exit_status(refused.value)[0] == 2 and "hint: check the credentials" in exit_status(refused.value)[1]


def test_postgres_that_does_not_answer_is_one_line_without_the_password() -> None:
    import psycopg

    from bootstrap.config import masked_failure

    url = f"postgresql://postgres:secret-9f2@127.0.0.1:{_closed_port()}/cruddur"
    with pytest.raises(psycopg.OperationalError) as caught:
        psycopg.connect(url, connect_timeout=2)
    failure = masked_failure(caught.value)
    assert failure.exit_code == 1 and failure.line().startswith("error: Postgres: connection failed")
    assert "invoke status" in failure.line() and "\n" not in failure.line()
    # A library that quotes the URL it was given: masked on the way out.
    assert "secret-9f2" not in masked_failure(psycopg.OperationalError(f"cannot use {url}")).line()


def test_docker_and_requests_failures_say_the_engine_is_not_answering() -> None:
    import docker.errors
    import requests

    with pytest.raises(requests.exceptions.ConnectionError) as caught:
        requests.get(f"http://127.0.0.1:{_closed_port()}/version", timeout=2)
    for exc in (caught.value, docker.errors.DockerException("Error while fetching server API version")):
        code, line = exit_status(exc)
        assert code == 1 and line.startswith("error: Docker engine: ") and "`docker info`" in line, line


def test_processes_of_another_user_and_processes_gone_are_named() -> None:
    """psutil's errors as psutil raises them for another user's process or one that ended (built here:
    a process of another user cannot be had where the suite runs as root)."""
    import psutil

    code, line = exit_status(psutil.AccessDenied(4242, "postgres"))
    assert (code, line.split("; hint: ")[0]) == (1, "error: permission denied on process 4242 (postgres)")
    assert "another user" in line
    assert exit_status(psutil.NoSuchProcess(4242))[1].startswith("error: process 4242 ended while")


def test_operating_system_failures_name_the_path_and_a_fix() -> None:
    with pytest.raises(OSError) as caught:
        open("/proc/nope/x.env", "w")
    assert exit_status(caught.value) == (
        1, "error: No such file or directory (/proc/nope/x.env); hint: /proc/nope/x.env does not exist: check the "
           "path (and the flag or setting that gives it), or create it")
    with pytest.raises(OSError) as missing:
        subprocess.run(["cruddur-no-such-program"])
    assert "cruddur-no-such-program is not installed" in exit_status(missing.value)[1]
    failed = subprocess.CalledProcessError(3, ["npm", "install"])
    assert exit_status(failed) == (1, "error: `npm install` exited with status 3; hint: " + DOCTOR_HINT)


def test_a_retry_that_gave_up_is_told_by_its_last_failure() -> None:
    from tenacity import Retrying, stop_after_attempt

    with pytest.raises(Exception) as caught:
        for attempt in Retrying(stop=stop_after_attempt(2)):
            with attempt:
                raise OSError(28, "No space left on device", "/srv/x")
    assert exit_status(caught.value)[1].startswith("error: No space left on device (/srv/x); hint: no space left")


def test_a_missing_aws_resource_is_a_config_error_with_the_hint_given(stack: Stack) -> None:
    client = stack.endpoints.client("dynamodb")
    with pytest.raises(ConfigError) as missing:
        with aws_errors("describing table nowhere", not_found_hint="run `invoke ddb.schema-load`"):
            client.describe_table(TableName="nowhere")
    assert str(missing.value).startswith("describing table nowhere: ")
    assert str(missing.value).endswith("; run `invoke ddb.schema-load`")


def test_other_aws_failures_are_service_errors_naming_the_aws_code(stack: Stack) -> None:
    client = stack.endpoints.client("dynamodb")
    with pytest.raises(ServiceError, match=r"^describing table nowhere: ResourceNotFoundException: "):
        with aws_errors("describing table nowhere"):  # no hint given: not the user's to fix with a setting
            client.describe_table(TableName="nowhere")


def test_os_failure_hints_name_the_path_and_a_fix() -> None:
    import errno

    from bootstrap.errors import os_failure_hint

    assert "permission denied on /srv/x" in os_failure_hint(errno.EACCES, "/srv/x")
    assert "no space left on the disk holding /srv/x" in os_failure_hint(errno.ENOSPC, "/srv/x")
    assert "read-only" in os_failure_hint(errno.EROFS, "/srv/x")
    assert "chooses a free port" in os_failure_hint(errno.EADDRINUSE, None)
    assert "invoke doctor" in os_failure_hint(errno.EIO, "/srv/x")


def test_os_errors_say_what_was_being_done_where_and_how_to_fix_it() -> None:
    import errno

    from bootstrap.errors import ServiceError, os_errors

    with pytest.raises(ServiceError) as caught:
        with os_errors("postgres: starting"):
            raise OSError(errno.ENOSPC, "No space left on device", "/srv/state/postgres")
    assert str(caught.value).startswith("postgres: starting: No space left on device (/srv/state/postgres); hint: ")
