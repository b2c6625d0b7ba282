"""A DAG for the IAM suite on the local cluster (tests/test_local_cluster_iam.py): a task pod of the ecs-runner role
calls an action of another role's job; with IAM enforced it must be denied, by the policy Terraform gave the role."""

from __future__ import annotations

from datetime import datetime

from airflow.providers.amazon.aws.hooks.base_aws import AwsBaseHook
from airflow.sdk import DAG

from eksflow.kit import default_args, role_task
from eksflow.roles import ROLES

with DAG(
    dag_id="iam_probe_outside_the_role",
    default_args={**default_args(owner="sre"), "retries": 0},
    schedule=None,
    start_date=datetime(2026, 1, 1),
    catchup=False,
    tags=["eksflow", "test"],
):

    @role_task("ecs-runner")
    def ecs_runner_lists_training_jobs() -> int:
        sagemaker = AwsBaseHook(aws_conn_id=ROLES["ecs-runner"].conn_id, client_type="sagemaker").get_conn()
        return len(sagemaker.list_training_jobs()["TrainingJobSummaries"])

    ecs_runner_lists_training_jobs()
