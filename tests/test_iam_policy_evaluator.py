"""The one IAM Condition evaluator (src/eksflow_dev/emulator/conditions.py) reads Conditions as IAM does (AWS's
documented semantics), so the emulator's enforcement and the static policy tests (tests/support/iam_policy.py) that
rely on it prove what they say."""

from __future__ import annotations

import logging

import pytest

from eksflow_dev.emulator.conditions import UnsupportedCondition, conditions_apply, request_tags, resource_tags
from tests.support.iam_policy import allows

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
        ({"StringLike": {"s3:prefix": "logs/*"}}, {"s3:prefix": "elsewhere/logs/x"}, False),
        ({"StringLike": {"s3:prefix": "logs/*"}}, {}, False),  # a listing without prefix
        ({"StringNotLike": {"s3:prefix": "logs/*"}}, {}, True),
        ({"StringEquals": {"aws:ResourceTag/k": ["prod", "dev"]}}, resource_tags({"k": "dev"}), True),
        ({"StringEquals": {"AWS:resourcetag/K": "dev"}}, resource_tags({"k": "dev"}), True),  # key names ignore case
        ({"StringEquals": {"aws:ResourceTag/k": "d*"}}, resource_tags({"k": "dev"}), False),  # no wildcards
        ({"StringEqualsIgnoreCase": {"aws:ResourceTag/k": "DEV"}}, resource_tags({"k": "dev"}), True),
        ({"Bool": {"aws:SecureTransport": "false"}}, {"aws:SecureTransport": "true"}, False),
        ({"Bool": {"aws:SecureTransport": True}}, {"aws:SecureTransport": "true"}, True),  # JSON true
        ({"Null": {"aws:ResourceTag/k": "false"}}, resource_tags({"k": "dev"}), True),
        ({"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["a"]}}, request_tags({"a": "1", "b": "2"}), True),
        ({"ForAllValues:StringNotEquals": {"aws:TagKeys": ["a"]}}, request_tags({"a": "1", "b": "2"}), False),
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


CLUSTER = "arn:aws:ecs:eu-west-1:123456789012:cluster/eksflow-dev-batch"


@pytest.mark.parametrize(
    ("operator", "pattern", "allowed"),
    [
        ("ArnEquals", CLUSTER, True),
        ("ArnEquals", "arn:aws:ecs:eu-west-1:123456789012:cluster/eksflow-prod-batch", False),
        ("ArnEquals", "arn:aws:ecs:*:*:cluster/eksflow-dev-*", True),  # ArnEquals takes wildcards like ArnLike
        ("ArnLike", "arn:aws:ecs:*:123456789012:cluster/*", True),
        ("ArnLike", "arn:aws:*:cluster/eksflow-dev-batch", False),  # a wildcard never spans the colons
        ("ArnLike", "ARN:AWS:ECS:*:*:cluster/*", False),  # case-sensitive
        ("ArnNotEquals", CLUSTER, False),
        ("ArnNotLike", "arn:aws:ecs:*:*:cluster/other-*", True),
    ],
)
def test_arn_operators_match_each_part_of_the_arn(operator, pattern, allowed):
    condition = {operator: {"ecs:cluster": pattern}}
    assert allows(policy(condition), "ec2:StopInstances", ARN, {"ecs:cluster": CLUSTER}) is allowed


@pytest.mark.parametrize(
    "condition",
    [
        {"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}},
        {"ForEveryValue:StringEquals": {"aws:TagKeys": "a"}},
        {"StringEquals": {"aws:ResourceTag/owner": "${aws:username}"}},  # policy variables
        {"StringEquals": {"aws:TagKeys": "a"}},  # several values, no set operator
    ],
)
def test_the_emulator_fails_closed_on_what_it_cannot_read(condition, caplog):
    """An Allow the evaluator cannot read does not apply, such a Deny does — and it says so in the log."""
    context = {"aws:MultiFactorAuthAge": "1", **request_tags({"a": "1", "b": "2"}), **resource_tags({"owner": "x"})}
    with pytest.raises(UnsupportedCondition):
        allows(policy(condition), "ec2:StopInstances", ARN, context)
    with caplog.at_level(logging.WARNING, logger="eksflow_dev.emulator.conditions"):
        assert not conditions_apply({"Effect": "Allow", "Condition": condition}, context)
        assert conditions_apply({"Effect": "Deny", "Sid": "NoMfa", "Condition": condition}, context)
    assert "fail closed" in caplog.text and "NoMfa" in caplog.text
    # A Deny still needs the conditions it can read: one that fails keeps it from applying.
    failing = {**condition, "StringNotEquals": {"aws:ResourceTag/owner": "x"}}
    assert not conditions_apply({"Effect": "Deny", "Condition": failing}, context)


def test_an_operator_it_cannot_read_is_an_error_not_an_answer():
    with pytest.raises(ValueError, match="NumericLessThan"):
        allows(
            policy({"NumericLessThan": {"aws:MultiFactorAuthAge": "3600"}}),
            "ec2:StopInstances",
            ARN,
            {"aws:MultiFactorAuthAge": "1"},
        )


@pytest.mark.parametrize(
    "condition",
    [
        {"StringNotEquals": {"aws:PrincipalTag/team": "ml"}},
        {"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}},
        {"StringEquals": {"aws:RequestedRegion": "us-east-1"}},
    ],
)
def test_the_emulator_fails_closed_on_a_key_it_does_not_compute(condition, caplog):
    """Absent here is not absent on AWS: such a key would let an Allow apply (negated, IfExists) or keep a Deny from
    applying where AWS decides otherwise."""
    with caplog.at_level(logging.WARNING, logger="eksflow_dev.emulator.conditions"):
        assert not conditions_apply({"Effect": "Allow", "Condition": condition}, {})
        assert conditions_apply({"Effect": "Deny", "Condition": condition}, {})
    assert "does not compute the condition key" in caplog.text


def test_if_exists_holds_for_an_absent_key_under_a_set_operator_too():
    condition = {"ForAnyValue:StringEqualsIfExists": {"aws:TagKeys": ["a"]}}
    assert conditions_apply({"Effect": "Allow", "Condition": condition}, {})
