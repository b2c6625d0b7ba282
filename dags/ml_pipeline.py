"""ML pipeline: train on the curated data, gate on a metric, deploy with blue/green, smoke-check."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param, task

from eksflow.assets import curated_events
from eksflow.kit import (
    default_args,
    notify_owners,
    released_image,
    role_kwargs,
    sagemaker_deploy_endpoint,
    sagemaker_register_model,
    sagemaker_smoke_check,
    sagemaker_training,
)
from eksflow.platform import sagemaker_name_prefix
from eksflow.settings import load_settings

settings = load_settings()
curated = curated_events(settings)
ENDPOINT = f"{sagemaker_name_prefix(settings.env)}churn"  # eksflow-<env>-churn: the environment's SageMaker names
ARTIFACTS = f"s3://{settings.buckets['ml_artifacts']}"

DOC = f"""
### ML pipeline
Scheduled on the `{curated.uri}` Asset (published by the batch data pipeline). The images are what the
`train` and `serve` job repositories released (their newest git-SHA tag in ECR, pinned by digest; the
**train_image** and **serve_image** tasks log which).

1. **train**: SageMaker training job on the curated data (deferred wait; a retry re-attaches);
2. **evaluation_gate**: continues only if `metric_name` >= `min_metric` (params); otherwise the
   deployment steps are skipped and the current endpoint keeps serving;
3. **register_model**: SageMaker model + endpoint config for this run;
4. **deploy_endpoint**: creates `{ENDPOINT}` (tagged as managed by `{settings.env}` and protected: housekeeping never
   deletes it) or moves it to the new config with a blue/green update;
5. **smoke_check**: one real invocation of the endpoint.

All AWS steps run as the `sagemaker-runner` role.
"""

with DAG(
    dag_id="ml_pipeline",
    description="SageMaker train -> gate -> model -> blue/green endpoint -> smoke check",
    schedule=[curated],
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(owner="ml-eng"),
    tags=["eksflow", "reference", "ml", "sagemaker"],
    doc_md=DOC,
    params={
        "metric_name": Param("validation:auc", type="string", minLength=1, description="Training metric to gate on"),
        "min_metric": Param(0.75, type="number", minimum=0, description="Deploy only at or above this value"),
    },
) as dag:
    train_image = released_image(task_id="train_image", job="train")
    serve_image = released_image(task_id="serve_image", job="serve")

    train = sagemaker_training(
        task_id="train",
        job_base_name="churn-train",
        image=train_image.output,
        execution_role_arn=settings.sagemaker_execution_role_arn,
        # The prefix with its '/' (Airflow normalizes the Asset URI without it).
        input_s3_uri=settings.curated_prefix_uri,
        output_s3_uri=f"{ARTIFACTS}/models/",
        instance_type="ml.m5.xlarge",
        hyperparameters={"objective": "binary:logistic", "num_round": "100"},
    )

    @task.short_circuit(**role_kwargs("default"))
    def evaluation_gate(training: dict, params=None) -> bool:
        metrics = {m["MetricName"]: float(m["Value"]) for m in training["Training"].get("FinalMetricDataList", [])}
        name, threshold = params["metric_name"], float(params["min_metric"])
        if name not in metrics:
            raise ValueError(f"training reported no metric {name!r}; it reported {sorted(metrics)}")
        print(f"{name} = {metrics[name]:.4f} (threshold {threshold})")
        return metrics[name] >= threshold

    register = sagemaker_register_model(
        task_id="register_model",
        endpoint_name=ENDPOINT,
        image=serve_image.output,
        model_data="{{ ti.xcom_pull(task_ids='train')['Training']['ModelArtifacts']['S3ModelArtifacts'] }}",
        execution_role_arn=settings.sagemaker_execution_role_arn,
        instance_type="ml.m5.large",
    )

    deploy = sagemaker_deploy_endpoint(
        task_id="deploy_endpoint",
        endpoint_name=ENDPOINT,
        managed=True,
        protected=True,
    )

    smoke = sagemaker_smoke_check(
        task_id="smoke_check",
        endpoint_name=ENDPOINT,
        payload="0.3,1.0,42.0,0",
        on_success_callback=notify_owners("success"),  # failures: default_args notifies every task's
    )

    evaluation_gate(train.output) >> register >> deploy >> smoke
