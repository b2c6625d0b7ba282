"""DAGs for the fault suite (tests/test_resilience.py), built with the same kit helpers as the reference DAGs:
a training task that keeps its worker polling (so the worker can be lost mid-job), and AWS jobs that fail
(a training job ending Failed, an ECS task exiting 3), each with a downstream task that must not run."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, task

from eksflow.kit import default_args, ecs_overrides, ecs_run_task, released_image, role_kwargs, sagemaker_training
from eksflow.settings import load_settings

settings = load_settings()
# The emulator fails a training job with this hyperparameter (its EMULATED_FAILURE_HYPERPARAMETER; the emulator
# is developer tooling, not in the image these DAGs run in).
EMULATED_FAILURE_HYPERPARAMETER = "eksflow_emulated_failure"


def _training(**kwargs):
    """Training with the train job's released image (resolved by an upstream task, train_image)."""
    return sagemaker_training(
        job_base_name="resilience-train",
        image=released_image(task_id="train_image", job="train").output,
        execution_role_arn=settings.sagemaker_execution_role_arn,
        input_s3_uri=f"s3://{settings.buckets['data']}/curated/",
        output_s3_uri=f"s3://{settings.buckets['ml_artifacts']}/resilience/",
        **kwargs,
    )


def _after():
    @task(**role_kwargs("default"))
    def after() -> str:
        return "ran"

    return after()


common = {"schedule": None, "start_date": datetime(2026, 1, 1), "catchup": False, "tags": ["eksflow", "test"]}
one_retry = {**default_args(owner="sre"), "retries": 1}  # fail fast: the point is how they fail

with DAG(dag_id="resilience_polling_training", default_args=default_args(owner="sre"), **common):
    _training(task_id="train", deferrable=False, check_interval=1) >> _after()

with DAG(dag_id="resilience_failed_training", default_args=one_retry, **common):
    _training(task_id="train", hyperparameters={EMULATED_FAILURE_HYPERPARAMETER: "emulated: out of memory"}) >> _after()

with DAG(dag_id="resilience_failed_ecs_task", default_args=one_retry, **common):
    (
        ecs_run_task(
            task_id="transform",
            cluster=settings.ecs_cluster,
            task_definition=settings.ecs_task_definition,
            overrides=ecs_overrides(
                settings.ecs_container, command=["transform"], environment={"EMULATED_EXIT_CODE": "3"}
            ),
            subnets=settings.ecs_subnets,
            security_groups=settings.ecs_security_groups,
        )
        >> _after()
    )
