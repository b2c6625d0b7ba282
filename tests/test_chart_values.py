"""`eksflow chart-values`: Terraform outputs → the chart's values layer, and clear errors for bad input.
(The layer made from a real apply is rendered with helm in test_terraform_apply.py.)"""

from __future__ import annotations

import json
import subprocess
import sys

import yaml

from eksflow.platform import CONTROL_PLANE
from eksflow.roles import ROLES
from tests.support.terraform_outputs import ARN
from tests.support.terraform_outputs import terraform_outputs as _outputs


def _run(outputs) -> subprocess.CompletedProcess:
    text = outputs if isinstance(outputs, str) else json.dumps(outputs)
    command = [sys.executable, "-m", "eksflow.cli", "chart-values"]
    return subprocess.run(command, input=text, capture_output=True, text=True, timeout=60, check=False)


def test_outputs_become_the_values_layer():
    result = _run(_outputs())
    assert result.returncode == 0, result.stderr
    values = yaml.safe_load(result.stdout)
    assert values["region"] == "eu-central-1"
    assert values["dagSettings"] == {
        "env": "prod",
        "awsAccountId": "210987654321",
        "ecsSubnets": ["subnet-0c1b2c3d4e5f60718", "subnet-0c1b2c3d4e5f60719"],
        "ecsSecurityGroups": ["sg-0c1b2c3d4e5f60720"],
    }
    assert values["image"] == {"repository": "210987654321.dkr.ecr.eu-central-1.amazonaws.com/eksflow/airflow"}
    assert values["workers"]["roles"]["ecs-runner"] == {"iamRoleArn": ARN + "eksflow-prod-task-ecs-runner"}
    assert set(values["controlPlane"]) == {c.name for c in CONTROL_PLANE}
    assert values["airflow"] == {"remoteLogging": {"bucket": "eksflow-prod-logs"}}
    assert "db_secret" not in result.stdout, "the DB secret is the deploy's business, not a chart value"


def test_missing_outputs_are_named():
    outputs = _outputs()
    del outputs["log_bucket"], outputs["region"], outputs["ecs_task_security_group_ids"]
    result = _run(outputs)
    assert result.returncode == 2
    lacking = "region, log_bucket, ecs_task_security_group_ids"
    assert f"terraform outputs lack {lacking}: run `terraform apply`" in result.stderr


def test_an_environment_without_ecs_task_subnets_is_refused_naming_the_output():
    result = _run(_outputs(ecs_task_subnet_ids=[]))
    assert result.returncode == 2
    assert "terraform output ecs_task_subnet_ids is empty: ECS tasks need subnets and a security group" in result.stderr


def test_roles_that_differ_from_the_role_model_are_refused():
    tasks = {name: ARN + name for name in ROLES if name != "ec2-ops"} | {"gpu-runner": ARN + "gpu"}
    result = _run(_outputs(task_role_arns=tasks))
    assert result.returncode == 2
    assert "task_role_arns does not match the role model (missing ['ec2-ops'], unknown ['gpu-runner'])" in result.stderr


def test_input_that_is_not_terraform_json_is_refused():
    result = _run("Error: No outputs found")
    assert result.returncode == 2
    assert "input is not `terraform output -json` JSON" in result.stderr
