"""The role model is the one home for names: consistent, unique, and dumpable for the chart/Terraform."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from eksflow.model import platform_model
from eksflow.platform import CONTROL_PLANE, NAMESPACE, POD_TEMPLATE_DIR, bucket_names, name_prefix
from eksflow.roles import DEFAULT_ROLE, ROLES, get_role, role_owning

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
IAM_ROLE_NAME = re.compile(r"^[\w+=,.@-]{1,64}$")


def test_required_roles_exist():
    assert {"default", "ecs-runner", "sagemaker-runner", "ec2-ops"} <= set(ROLES)
    assert DEFAULT_ROLE == "default"
    assert ROLES["default"].services == frozenset()


@pytest.mark.parametrize("role", ROLES.values(), ids=lambda r: r.name)
def test_role_derived_names_are_valid(role):
    assert DNS_LABEL.fullmatch(role.service_account) and len(role.service_account) <= 63
    assert IAM_ROLE_NAME.fullmatch(role.iam_role_name("prod"))
    assert role.pod_template_path == f"{POD_TEMPLATE_DIR}/{role.name}.yaml"
    assert re.fullmatch(r"aws_[a-z0-9_]+", role.conn_id)
    assert role.iam_role_name_pattern.format(env="dev") == role.iam_role_name("dev")
    assert role.resources.as_k8s()["limits"]["memory"]


def test_names_are_unique_across_roles_and_control_plane():
    accounts = [r.service_account for r in ROLES.values()] + [c.service_account for c in CONTROL_PLANE]
    iam = [r.iam_role_name("dev") for r in ROLES.values()] + [c.iam_role_name("dev") for c in CONTROL_PLANE]
    assert len(set(accounts)) == len(accounts)
    assert len(set(iam)) == len(iam)
    assert len({r.conn_id for r in ROLES.values()}) == len(ROLES)


def test_each_aws_service_used_by_the_kit_has_an_owner():
    for service in ("ecs", "sagemaker", "sagemaker-runtime", "ec2", "cloudwatch", "s3"):
        assert role_owning(service), service


def test_unknown_role_names_the_choices():
    with pytest.raises(ValueError, match=r"role 'admin' is unknown: use one of default, ec2-ops, ecs-runner"):
        get_role("admin")


def test_env_names_are_validated():
    assert name_prefix("dev") == "eksflow-dev"
    assert bucket_names("prod")["logs"] == "eksflow-prod-logs"
    with pytest.raises(ValueError, match="env 'Prod_1' is invalid"):
        name_prefix("Prod_1")


def test_secrets_and_sagemaker_names_are_per_environment():
    """Environments may share an account: the Secrets Manager backend's prefixes and the SageMaker name prefix are
    patterns with {env} (the chart and Terraform fill in their environment), never one name for all."""
    model = platform_model()
    assert model["secrets_backend_patterns"] == {
        "connections_prefix": "eksflow/{env}/connections",
        "variables_prefix": "eksflow/{env}/variables",
    }
    assert model["sagemaker_name_prefix_pattern"] == "eksflow-{env}-"
    assert "secrets_backend" not in model and "sagemaker_name_prefix" not in model
    dev = platform_model("dev")
    assert dev["secrets_backend"] == {
        "connections_prefix": "eksflow/dev/connections",
        "variables_prefix": "eksflow/dev/variables",
    }
    assert dev["sagemaker_name_prefix"] == f"{name_prefix('dev')}-" == "eksflow-dev-"


def test_cli_dumps_the_model_as_json_and_yaml():
    out = subprocess.run(
        [sys.executable, "-m", "eksflow.cli", "roles", "--env", "dev"], capture_output=True, text=True, check=True
    ).stdout
    dumped = json.loads(out)
    assert dumped == json.loads(json.dumps(platform_model("dev")))
    assert dumped["namespace"] == NAMESPACE
    assert dumped["task_roles"]["ecs-runner"]["service_account"] == "eksflow-task-ecs-runner"
    assert dumped["task_roles"]["ecs-runner"]["iam_role_name"] == "eksflow-dev-task-ecs-runner"
    assert dumped["control_plane"]["triggerer"]["iam_role_name"] == "eksflow-dev-triggerer"

    import yaml

    yaml_out = subprocess.run(
        [sys.executable, "-m", "eksflow.cli", "roles", "--format", "yaml"], capture_output=True, text=True, check=True
    ).stdout
    assert yaml.safe_load(yaml_out) == json.loads(json.dumps(platform_model()))


@pytest.mark.parametrize(
    ("env", "error"),
    [
        (
            "PROD",
            "env 'PROD' is invalid: use 2-16 lowercase letters, digits or '-', "
            "starting with a letter (e.g. 'dev', 'prod')",
        ),
        ("true", "env 'true' is reserved (the managed tag's legacy values): name the environment otherwise"),
    ],
    ids=["invalid", "reserved-legacy-tag-value"],
)
def test_cli_rejects_a_bad_env_with_one_clear_line(env, error):
    result = subprocess.run(
        [sys.executable, "-m", "eksflow.cli", "roles", "--env", env], capture_output=True, text=True, check=False
    )
    assert result.returncode == 2
    assert result.stderr.strip() == f"eksflow: error: {error}"
