"""External services: never started or stopped by us, only waited for, under one deadline."""

from __future__ import annotations

import re

import pytest

from bootstrap.errors import NotReadyError
from bootstrap.processes import free_port
from bootstrap.readiness import Deadline
from bootstrap.services.external import ExternalService


def test_external_backend_that_never_answers_fails_clearly(cli) -> None:
    port = free_port()
    result = cli(
        "up", "--backend", "external", "--timeout", "0.5", check=False,
        CONNECTION_URL=f"postgresql://postgres:sekret@localhost:{port}/cruddur",
        AWS_ENDPOINT_URL=f"http://localhost:{free_port()}",
    )
    assert result.returncode == 1
    assert "was not ready after 0.5s" in result.stderr and "sekret" not in result.stderr + result.stdout


def test_a_service_that_never_answers_fails_at_one_deadline_naming_each_probe() -> None:
    """DynamoDB and Cognito on one URL: both probes wait under the service's one deadline, and both are named."""
    url = f"http://localhost:{free_port()}"
    service = ExternalService("dynamodb", url, ("dynamodb", "cognito"), "env AWS_ENDPOINT_URL", "us-east-1")
    deadline = Deadline(0.5)
    with pytest.raises(NotReadyError) as caught:
        service.start(deadline)
    message = str(caught.value)
    assert deadline.expired()
    for role in ("dynamodb", "cognito"):
        assert f"{role} at {url} was not ready after 0.5s." in message
    assert len(re.findall(r"waited \d+\.\ds of 0\.5s\n", message)) == 2  # nothing was started before the checks
    assert "hint: served by an external service" in message and "env AWS_ENDPOINT_URL" in message
    service.stop(save=True)  # never ours to stop: nothing happens
