"""Which AWS answers are retried, and which deletes count as "already gone": codes alone mislead
(ValidationError is both bad input and "not propagated yet"), so the message decides there."""
from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from eucadb.cloud.client import is_transient
from eucadb.errors import CloudNotConfigured, CloudUnreachable
from eucadb.workflow.steps.base import is_absent


def answer(code: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "Operation")


@pytest.mark.parametrize("exc", [
    answer("Throttling", "Rate exceeded"),
    answer("ValidationError", "You must use a valid fully-formed launch template. Value (x) for parameter "
                              "iamInstanceProfile.name is invalid. Invalid IAM Instance Profile name"),
    answer("InvalidParameterValue", "Value (x) for parameter iamInstanceProfile.name is invalid. "
                                    "Invalid IAM Instance Profile name"),
    answer("ValidationError", "You must use a valid fully-formed launch template. The specified launch "
                              "template, with template ID lt-0123, does not exist."),
    answer("InvalidRequestException", "You can't create this secret because a secret with this name is "
                                      "already scheduled for deletion."),
    answer("DependencyViolation", "resource sg-1 has a dependent object"),
    CloudUnreachable("cloud at http://127.0.0.1:1 is unreachable"),
])
def test_retried(exc):
    assert is_transient(exc)


@pytest.mark.parametrize("exc", [
    answer("ValidationError", "Max bound, 1, must be greater than or equal to min bound, 2"),
    answer("ValidationError", "You must use a valid fully-formed launch template. The requested "
                              "configuration is currently not supported."),
    answer("InvalidParameterValue", "Value (m9.huge) for parameter instanceType is invalid."),
    answer("InvalidRequestException", "You provided a parameter value that is not valid."),
    answer("AccessDenied", "User is not authorized to perform iam:CreateRole"),
    CloudNotConfigured("no cloud is configured"),
    ValueError("a bug"),
])
def test_not_retried(exc):
    assert not is_transient(exc)


@pytest.mark.parametrize("exc, absent", [
    (answer("ValidationError", "AutoScalingGroup name not found - AutoScalingGroup 'x' not found"), True),
    (answer("ValidationError", "1 validation error detected: Value at 'roleName' failed to satisfy "
                               "constraint"), False),
    (answer("NoSuchEntity", "The role with name x cannot be found."), True),
    (answer("InvalidInstanceID.NotFound", "The instance ID 'i-1' does not exist"), True),
    (answer("AccessDenied", "not authorized"), False),
])
def test_absent(exc, absent):
    assert is_absent(exc) is absent
