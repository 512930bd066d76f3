"""Our errors (bootstrap/errors.py): exit codes, and the hints that turn AWS and operating-system failures into fixes.

The AWS failures are real ones, from the session's moto server.
"""

from __future__ import annotations

import pytest

from bootstrap.errors import (
    INTERRUPTED, BootstrapError, ConfigError, DriftError, InputError, NotReadyError, RefusedError, ServiceError,
    VerifyError, aws_errors, exit_status,
)
from tests.conftest import Stack


def test_each_error_has_its_exit_code_and_the_message_says_error() -> None:
    codes = {error: exit_status(error("what went wrong")) for error in (
        BootstrapError, ConfigError, InputError, RefusedError, ServiceError, NotReadyError, DriftError, VerifyError)}
    assert {error.__name__: code for error, (code, _) in codes.items()} == {
        "BootstrapError": 1, "ConfigError": 2, "InputError": 2, "RefusedError": 3, "ServiceError": 1,
        "NotReadyError": 1, "DriftError": 1, "VerifyError": 1}
    assert {message for _, message in codes.values()} == {"error: what went wrong"}


def test_ctrl_c_exits_130_and_a_bug_is_left_to_show_its_traceback() -> None:
    assert exit_status(KeyboardInterrupt()) == (130, INTERRUPTED)
    assert exit_status(ValueError("a bug")) is None


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
