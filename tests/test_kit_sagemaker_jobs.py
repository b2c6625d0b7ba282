"""The kit's processing and batch transform jobs: wiring, and idempotency against the emulator over HTTP.

As in test_kit_operators.py, ``execute`` gets a minimal context (only ``ti`` with the task instance key): that stub
stands in for Airflow's runtime, which the end-to-end tests exercise for real.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from airflow.providers.common.compat.sdk import AirflowException, TaskDeferred

from eksflow import kit
from eksflow.connections import local_connections
from eksflow.kit.defaults import RETRIES, WAITER_DELAY_SECONDS
from eksflow.roles import ROLES, role_for_pod_template
from eksflow_dev.emulator.control import control
from eksflow_dev.emulator.sagemaker import EMULATED_FAILURE_ENVIRONMENT

ROLE_ARN = "arn:aws:iam::123456789012:role/eksflow-local-sagemaker-execution"
MODEL = "eksflow-local-churn-model-1a2b3c4d5e"


def context(run_id="manual__1", task_id="job"):
    return {"ti": SimpleNamespace(dag_id="scoring", run_id=run_id, task_id=task_id, map_index=-1)}


def processing(**kwargs):
    return kit.sagemaker_processing(
        task_id="job",
        job_base_name="churn-features",
        image=f"123456789012.dkr.ecr.eu-west-1.amazonaws.com/eksflow-local-features@sha256:{'3' * 64}",
        execution_role_arn=ROLE_ARN,
        inputs={"events": "s3://eksflow-local-data/curated/"},
        outputs={"features": "s3://eksflow-local-data/features/"},
        **{"check_interval": 1, **kwargs},
    )


def transform(**kwargs):
    return kit.sagemaker_batch_transform(
        task_id="job",
        job_base_name="churn-scores",
        model_name=MODEL,
        input_s3_uri="s3://eksflow-local-data/to-score/",
        output_s3_uri="s3://eksflow-local-data/scores/",
        **{"check_interval": 1, **kwargs},
    )


JOBS = {"Processing": processing, "Transform": transform}


@pytest.mark.parametrize("kind", JOBS)
def test_the_helpers_run_under_the_sagemaker_runner_deferred_with_the_platforms_retries(kind):
    operator = JOBS[kind]()
    role = ROLES["sagemaker-runner"]
    assert operator.aws_conn_id == role.conn_id
    assert role_for_pod_template(operator.executor_config["pod_template_file"]).name == "sagemaker-runner"
    assert operator.deferrable and operator.retries == RETRIES
    assert JOBS[kind](check_interval=WAITER_DELAY_SECONDS).check_interval == WAITER_DELAY_SECONDS


def test_the_processing_config_maps_inputs_and_outputs_to_the_containers_paths():
    config = processing(environment={"MODE": "full"}, entrypoint=["python3", "features.py"]).config
    assert config["ProcessingInputs"] == [
        {
            "InputName": "events",
            "S3Input": {
                "S3Uri": "s3://eksflow-local-data/curated/",
                "LocalPath": "/opt/ml/processing/input/events",
                "S3DataType": "S3Prefix",
                "S3InputMode": "File",
            },
        }
    ]
    (output,) = config["ProcessingOutputConfig"]["Outputs"]
    assert output["S3Output"]["LocalPath"] == "/opt/ml/processing/output/features"
    assert config["AppSpecification"]["ContainerEntrypoint"] == ["python3", "features.py"]
    assert config["Environment"] == {"MODE": "full"}
    assert "Tags" not in config  # tagging would need sagemaker:AddTags, which the runner has on endpoints only


@pytest.fixture()
def sagemaker(monkeypatch, fresh_emulator):
    for key, value in local_connections(fresh_emulator.url, "eu-west-1").items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    fresh_emulator.client("sagemaker").create_model(
        ModelName=MODEL,
        ExecutionRoleArn=ROLE_ARN,
        PrimaryContainer={"Image": "serve:1", "ModelDataUrl": "s3://eksflow-local-ml-artifacts/models/model.tar.gz"},
    )
    return fresh_emulator


def job_names(emulator, kind: str) -> list[str]:
    client = emulator.client("sagemaker")
    listing = getattr(client, f"list_{kind.lower()}_jobs")()[f"{kind}JobSummaries"]
    return sorted(job[f"{kind}JobName"] for job in listing)


@pytest.mark.parametrize("kind", JOBS)
def test_a_retry_reuses_the_completed_job_of_the_earlier_try(sagemaker, kind):
    first = JOBS[kind](deferrable=False).execute(context())
    name = first[kind][f"{kind}JobName"]
    assert name.startswith(f"eksflow-local-churn-{'features' if kind == 'Processing' else 'scores'}-")
    second = JOBS[kind](deferrable=False).execute(context())  # a retry of the same task instance
    assert second[kind][f"{kind}JobName"] == name
    assert job_names(sagemaker, kind) == [name]
    JOBS[kind](deferrable=False).execute(context(run_id="manual__2"))  # another DAG run runs anew
    assert len(job_names(sagemaker, kind)) == 2


@pytest.mark.parametrize("kind", JOBS)
def test_a_retry_while_the_first_trys_job_runs_defers_on_that_job_and_starts_none(sagemaker, kind):
    control(sagemaker.url, "job-seconds", "600")  # still InProgress when the retry comes
    try:
        with pytest.raises(TaskDeferred) as first:  # the worker pod would exit here
            JOBS[kind]().execute(context())
        with pytest.raises(TaskDeferred) as retry:  # the pod was lost; Airflow retries the same task instance
            JOBS[kind]().execute(context())
    finally:
        control(sagemaker.url, "job-seconds", "0")
    (name,) = job_names(sagemaker, kind)
    for deferred in (first, retry):
        trigger = deferred.value.trigger
        assert (trigger.job_name, trigger.job_type) == (name, kind)
        assert deferred.value.method_name == "execute_complete"
    # The waiter polls for the job's whole time budget, not the provider's default of 60 polls.
    operator = JOBS[kind]()
    assert retry.value.trigger.attempts >= operator.max_ingestion_time / operator.check_interval


@pytest.mark.parametrize("kind", JOBS)
def test_after_a_failed_job_a_retry_starts_generation_2_and_the_failure_names_the_reason(sagemaker, kind):
    failing = JOBS[kind](deferrable=False, environment={EMULATED_FAILURE_ENVIRONMENT: "bad input row 7"})
    with pytest.raises(AirflowException, match="bad input row 7"):
        failing.execute(context())
    (failed,) = job_names(sagemaker, kind)
    result = JOBS[kind](deferrable=False).execute(context())
    assert result[kind][f"{kind}JobName"] == f"{failed}-g2"
    assert job_names(sagemaker, kind) == [failed, f"{failed}-g2"]


@pytest.mark.parametrize("kind", JOBS)
def test_a_stopped_job_fails_the_task_and_its_retry_starts_the_next_generation(sagemaker, kind):
    control(sagemaker.url, "job-seconds", "600")
    try:
        with pytest.raises(TaskDeferred):
            JOBS[kind]().execute(context())
        (name,) = job_names(sagemaker, kind)
        client = sagemaker.client("sagemaker")
        getattr(client, f"stop_{kind.lower()}_job")(**{f"{kind}JobName": name})
        operator = JOBS[kind]()
        with pytest.raises(AirflowException, match=f"{kind} job {name} ended Stopped"):
            operator.execute_complete(context(), {"status": "success", "job_name": name})
    finally:
        control(sagemaker.url, "job-seconds", "0")
    assert JOBS[kind](deferrable=False).execute(context())[kind][f"{kind}JobName"] == f"{name}-g2"


def test_a_templated_config_gets_its_numbers_back_before_the_create(sagemaker):
    operator = transform(deferrable=False)
    operator.config["TransformResources"]["InstanceCount"] = "2"  # what Jinja renders a number to
    result = operator.execute(context())
    assert result["Transform"]["TransformResources"]["InstanceCount"] == 2
