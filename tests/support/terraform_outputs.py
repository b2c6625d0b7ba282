"""`terraform output -json` of an applied environment (prod's example account), for the commands that read it."""

from __future__ import annotations

from eksflow.platform import CONTROL_PLANE
from eksflow.roles import ROLES

ARN = "arn:aws:iam::210987654321:role/"


def terraform_outputs(**overrides) -> dict:
    outputs = {
        "env": "prod",
        "region": "eu-central-1",
        "ecr_repository_url": "210987654321.dkr.ecr.eu-central-1.amazonaws.com/eksflow/airflow",
        "task_role_arns": {name: ARN + role.iam_role_name("prod") for name, role in ROLES.items()},
        "control_plane_role_arns": {c.name: ARN + c.name for c in CONTROL_PLANE},
        "log_bucket": "eksflow-prod-logs",
        "vpc_cidr": "10.20.0.0/16",
        "ecs_task_subnet_ids": ["subnet-0c1b2c3d4e5f60718", "subnet-0c1b2c3d4e5f60719"],
        "ecs_task_security_group_ids": ["sg-0c1b2c3d4e5f60720"],
        "db_secret_arn": "arn:aws:secretsmanager:eu-central-1:210987654321:secret:rds!db-1",
        **overrides,
    }
    return {name: {"sensitive": False, "type": "string", "value": value} for name, value in outputs.items()}
