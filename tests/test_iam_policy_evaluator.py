"""tests/support/iam_policy.py reads Conditions as IAM does (AWS's documented semantics), so the static policy tests
that rely on it prove what they say."""

from __future__ import annotations

import pytest

from tests.support.iam_policy import allows, request_tags, resource_tags

ARN = "arn:aws:ec2:eu-west-1:123456789012:instance/i-1"


def policy(condition: dict | None = None, *, action="ec2:StopInstances", resource="arn:aws:ec2:*:*:instance/*"):
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return {"Version": "2012-10-17", "Statement": [statement]}


@pytest.mark.parametrize(
    ("condition", "context", "expected"),
    [
        ({"StringEquals": {"aws:ResourceTag/k": "dev"}}, resource_tags({"k": "dev"}), True),
        ({"StringEquals": {"aws:ResourceTag/k": "dev"}}, resource_tags({"k": "Dev"}), False),
        ({"StringEquals": {"aws:ResourceTag/k": "dev"}}, {}, False),  # a missing key never equals
        ({"StringNotEquals": {"aws:ResourceTag/p": "true"}}, {}, True),  # ... and is never equal to
        ({"StringNotEquals": {"aws:ResourceTag/p": "true"}}, resource_tags({"p": "true"}), False),
        ({"StringNotEqualsIgnoreCase": {"aws:ResourceTag/p": "true"}}, resource_tags({"p": "TRUE"}), False),
        ({"StringNotEqualsIgnoreCase": {"aws:ResourceTag/p": "true"}}, resource_tags({"p": "false"}), True),
        ({"StringEqualsIfExists": {"aws:RequestTag/k": "dev"}}, {}, True),
        ({"StringEqualsIfExists": {"aws:RequestTag/k": "dev"}}, request_tags({"k": "prod"}), False),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}, request_tags({"a": "1"}), True),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a", "b"]}}, request_tags({"a": "1", "c": "2"}), False),
        ({"ForAllValues:StringEquals": {"aws:TagKeys": ["a"]}}, {}, True),  # vacuously: no keys in the request
        ({"ForAnyValue:StringEquals": {"aws:TagKeys": ["a"]}}, {}, False),
        ({"Null": {"aws:ResourceTag/k": "true"}}, {}, True),
        ({"StringLike": {"s3:prefix": "logs/*"}}, {"s3:prefix": "logs/x"}, True),
        # Every operator and every key must hold.
        (
            {"StringEquals": {"aws:ResourceTag/k": "dev"}, "StringNotEquals": {"aws:ResourceTag/p": "true"}},
            resource_tags({"k": "dev", "p": "true"}),
            False,
        ),
    ],
)
def test_conditions(condition, context, expected):
    assert allows(policy(condition), "ec2:StopInstances", ARN, context) is expected


def test_actions_resources_and_explicit_deny():
    allow = policy(action="ec2:*")
    assert allows(allow, "ec2:TerminateInstances", ARN)
    assert allows(allow, "EC2:terminateinstances", ARN)  # action names ignore case
    assert not allows(allow, "s3:GetObject", ARN)
    assert not allows(policy(resource="arn:aws:ec2:*:*:instance/i-2"), "ec2:StopInstances", ARN)
    deny = {"Effect": "Deny", "Action": "ec2:StopInstances", "Resource": "*"}
    assert not allows([allow, {"Statement": [deny]}], "ec2:StopInstances", ARN)


def test_an_operator_it_cannot_read_is_an_error_not_an_answer():
    with pytest.raises(ValueError, match="NumericLessThan"):
        allows(
            policy({"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}),
            "ec2:StopInstances",
            ARN,
            {"aws:MultiFactorAuthAge": "1"},
        )
