"""Every bad argument to a kit helper fails at definition time, naming the argument and the fix."""

from __future__ import annotations

import re

import pytest

from eksflow import kit
from eksflow.kit import KitArgumentError

ROLE_ARN = "arn:aws:iam::123456789012:role/eksflow-dev-sagemaker-execution"
REGISTRY = "123456789012.dkr.ecr.eu-west-1.amazonaws.com"
DIGEST = "sha256:" + "a" * 64
IMAGE = f"{REGISTRY}/eksflow-local-train@{DIGEST}"  # an image pinned by digest
ETL_IMAGE = f"{REGISTRY}/eksflow-local-etl-step@{DIGEST}"  # in the local etl-step job's repository
TRAINING = dict(
    task_id="train",
    job_base_name="churn",
    image=IMAGE,
    execution_role_arn=ROLE_ARN,
    input_s3_uri="s3://b/in/",
    output_s3_uri="s3://b/out/",
)
ECS = dict(task_id="t", cluster="c", task_definition="td", subnets=["subnet-1"])
PROCESSING = dict(
    task_id="features",
    job_base_name="churn-features",
    image=IMAGE,
    execution_role_arn=ROLE_ARN,
    inputs={"events": "s3://b/curated/"},
    outputs={"features": "s3://b/features/"},
)
TRANSFORM = dict(
    task_id="score",
    job_base_name="churn-scores",
    model_name="eksflow-local-churn-model-1a2b3c4d5e",
    input_s3_uri="s3://b/to-score/",
    output_s3_uri="s3://b/scores/",
)

CASES = [
    (
        "unknown role",
        lambda: kit.role_kwargs("admin"),
        ValueError,
        "role 'admin' is unknown: use one of default, ec2-ops, ecs-runner, sagemaker-runner",
    ),
    ("unknown role via role_task", lambda: kit.role_task("root"), ValueError, "role 'root' is unknown"),
    (
        "bad SageMaker instance type",
        lambda: kit.sagemaker_training(**{**TRAINING, "instance_type": "m5.xlarge"}),
        KitArgumentError,
        "sagemaker_training(): argument 'instance_type' is not a SageMaker instance type: 'm5.xlarge'; "
        "use the form ml.<family>.<size>, e.g. 'ml.m5.xlarge'",
    ),
    (
        "bad EC2 instance type",
        lambda: kit.find_managed_instances(task_id="f", instance_types=["m5.large", "huge"]),
        KitArgumentError,
        "find_managed_instances(): argument 'instance_types[1]' is not an EC2 instance type: 'huge'",
    ),
    (
        "training input without the prefix's slash",
        lambda: kit.sagemaker_training(**{**TRAINING, "input_s3_uri": "s3://b/curated"}),
        KitArgumentError,
        "sagemaker_training(): argument 'input_s3_uri' is not an s3:// prefix ending in '/': 's3://b/curated'; "
        "pass e.g. 's3://bucket/curated/'",
    ),
    (
        "empty training image",
        lambda: kit.sagemaker_training(**{**TRAINING, "image": "  "}),
        KitArgumentError,
        "sagemaker_training(): argument 'image' must be an image pinned by digest, got '  '; pin it by digest",
    ),
    (
        "empty serving image",
        lambda: kit.sagemaker_register_model(
            task_id="r", endpoint_name="eksflow-local-x", image="", model_data="s3://m", execution_role_arn=ROLE_ARN
        ),
        KitArgumentError,
        "sagemaker_register_model(): argument 'image' must be an image pinned by digest, got ''",
    ),
    (
        "negative instance count",
        lambda: kit.sagemaker_training(**{**TRAINING, "instance_count": -1}),
        KitArgumentError,
        "sagemaker_training(): argument 'instance_count' must be an integer >= 1, got -1",
    ),
    (
        "zero runtime",
        lambda: kit.sagemaker_training(**{**TRAINING, "max_runtime_seconds": 0}),
        KitArgumentError,
        "argument 'max_runtime_seconds' must be an integer >= 1, got 0",
    ),
    (
        "bool is not a count",
        lambda: kit.sagemaker_training(**{**TRAINING, "volume_size_gb": True}),
        KitArgumentError,
        "argument 'volume_size_gb' must be an integer >= 1, got True",
    ),
    (
        "execution role not an ARN",
        lambda: kit.sagemaker_training(**{**TRAINING, "execution_role_arn": "my-role"}),
        KitArgumentError,
        "argument 'execution_role_arn' must be a full IAM role ARN, got 'my-role'",
    ),
    (
        "endpoint outside the IAM prefix",
        lambda: kit.sagemaker_deploy_endpoint(task_id="d", endpoint_name="churn"),
        KitArgumentError,
        "sagemaker_deploy_endpoint(): argument 'endpoint_name' must start with the environment's prefix "
        "'eksflow-local-' (env 'local', from the env= argument or else EKSFLOW_ENV; IAM scopes the environment's "
        "roles to it), got 'churn'; rename it to 'eksflow-local-churn' — build it with "
        "eksflow.platform.sagemaker_name_prefix(load_settings().env)",
    ),
    (
        "endpoint of the prefix every environment used to share",
        lambda: kit.sagemaker_deploy_endpoint(task_id="d", endpoint_name="eksflow-churn", env="dev"),
        KitArgumentError,
        "argument 'endpoint_name' must start with the environment's prefix 'eksflow-dev-' (env 'dev', from the env= "
        "argument or else EKSFLOW_ENV; IAM scopes the environment's roles to it), got 'eksflow-churn'; rename it to "
        "'eksflow-dev-churn'",
    ),
    (
        "endpoint name too long for SageMaker",
        lambda: kit.sagemaker_deploy_endpoint(task_id="d", endpoint_name="eksflow-dev-" + "x" * 60, env="dev"),
        KitArgumentError,
        "argument 'endpoint_name' is 72 characters, SageMaker allows 63",
    ),
    (
        "another environment's endpoint",
        lambda: kit.sagemaker_deploy_endpoint(task_id="d", endpoint_name="eksflow-prod-churn", env="dev"),
        KitArgumentError,
        "argument 'endpoint_name' must start with the environment's prefix 'eksflow-dev-'",
    ),
    (
        "model for another environment's endpoint",
        lambda: kit.sagemaker_register_model(
            task_id="r", endpoint_name="eksflow-prod-x", image=IMAGE, model_data="s3://m", execution_role_arn=ROLE_ARN
        ),
        KitArgumentError,
        "sagemaker_register_model(): argument 'endpoint_name' must start with the environment's prefix "
        "'eksflow-local-'",
    ),
    (
        "smoke check of another environment's endpoint",
        lambda: kit.sagemaker_smoke_check(task_id="s", endpoint_name="eksflow-prod-x", payload="1", env="dev"),
        KitArgumentError,
        "sagemaker_smoke_check(): argument 'endpoint_name' must start with the environment's prefix 'eksflow-dev-'",
    ),
    (
        "training for a bad environment name",
        lambda: kit.sagemaker_training(**TRAINING, env="Prod"),
        KitArgumentError,
        "sagemaker_training(): argument 'env' is invalid (env 'Prod' is invalid",
    ),
    (
        "negative bake time",
        lambda: kit.sagemaker_deploy_endpoint(task_id="d", endpoint_name="eksflow-local-x", bake_seconds=-5),
        KitArgumentError,
        "argument 'bake_seconds' must be an integer >= 0, got -5",
    ),
    (
        "endpoint tags as a string",
        lambda: kit.sagemaker_deploy_endpoint(task_id="d", endpoint_name="eksflow-local-x", protected="yes"),
        KitArgumentError,
        "sagemaker_deploy_endpoint(): argument 'protected' must be True or False, got 'yes'; e.g. protected=True",
    ),
    (
        "housekeeping for a bad environment name",
        lambda: kit.find_managed_instances(task_id="f", env="Prod"),
        KitArgumentError,
        "find_managed_instances(): argument 'env' is invalid (env 'Prod' is invalid: use 2-16 lowercase letters",
    ),
    (
        "endpoint tags for a bad environment name",
        lambda: kit.sagemaker_deploy_endpoint(task_id="d", endpoint_name="eksflow-local-x", managed=True, env=""),
        KitArgumentError,
        "sagemaker_deploy_endpoint(): argument 'env' is invalid",
    ),
    (
        "empty smoke payload",
        lambda: kit.sagemaker_smoke_check(task_id="s", endpoint_name="eksflow-local-x", payload=""),
        KitArgumentError,
        "sagemaker_smoke_check(): argument 'payload' must be a non-empty string",
    ),
    (
        "processing without inputs",
        lambda: kit.sagemaker_processing(**{**PROCESSING, "inputs": {}}),
        KitArgumentError,
        "sagemaker_processing(): argument 'inputs' must be a non-empty mapping of names to s3:// prefixes, got {}; "
        "e.g. {'events': 's3://bucket/curated/events/'}",
    ),
    (
        "processing input that is no S3 URI",
        lambda: kit.sagemaker_processing(**{**PROCESSING, "inputs": {"events": "/data/events"}}),
        KitArgumentError,
        "sagemaker_processing(): argument 'inputs' is not an s3:// URI: '/data/events'; "
        "pass e.g. 's3://bucket/curated/events/'",
    ),
    (
        "processing output with a name SageMaker refuses",
        lambda: kit.sagemaker_processing(**{**PROCESSING, "outputs": {"my features": "s3://b/f/"}}),
        KitArgumentError,
        "sagemaker_processing(): argument 'outputs' has the name 'my features': names are letters, digits, '_' "
        "and '-' (at most 64)",
    ),
    (
        "processing entrypoint as a string",
        lambda: kit.sagemaker_processing(**PROCESSING, entrypoint="python3 run.py"),
        KitArgumentError,
        "sagemaker_processing(): argument 'entrypoint' must be a list of strings, got 'python3 run.py'; "
        "e.g. entrypoint=['python3', 'run.py']",
    ),
    (
        "processing environment variable with a bad name",
        lambda: kit.sagemaker_processing(**PROCESSING, environment={"1MODE": "x"}),
        KitArgumentError,
        "sagemaker_processing(): argument 'environment' has the variable name '1MODE'; use letters, digits and '_'",
    ),
    (
        "processing execution role not an ARN",
        lambda: kit.sagemaker_processing(**{**PROCESSING, "execution_role_arn": "role"}),
        KitArgumentError,
        "sagemaker_processing(): argument 'execution_role_arn' must be a full IAM role ARN, got 'role'",
    ),
    (
        "processing on an EC2 instance type",
        lambda: kit.sagemaker_processing(**PROCESSING, instance_type="m5.xlarge"),
        KitArgumentError,
        "sagemaker_processing(): argument 'instance_type' is not a SageMaker instance type: 'm5.xlarge'",
    ),
    (
        "processing for a bad environment name",
        lambda: kit.sagemaker_processing(**PROCESSING, env="Prod"),
        KitArgumentError,
        "sagemaker_processing(): argument 'env' is invalid (env 'Prod' is invalid",
    ),
    (
        "batch transform with another environment's model",
        lambda: kit.sagemaker_batch_transform(**{**TRANSFORM, "model_name": "eksflow-prod-churn-model"}),
        KitArgumentError,
        "sagemaker_batch_transform(): argument 'model_name' must be a model of env 'local' (from the env= argument "
        "or else EKSFLOW_ENV), named with its prefix 'eksflow-local-' and at most 63 characters (IAM lets the "
        "environment's runner transform with its own models only), got 'eksflow-prod-churn-model'; pass the "
        "'model' that sagemaker_register_model returns, e.g. model_name=register.output['model']",
    ),
    (
        "batch transform without a model",
        lambda: kit.sagemaker_batch_transform(**{**TRANSFORM, "model_name": ""}),
        KitArgumentError,
        "sagemaker_batch_transform(): argument 'model_name' must be a non-empty string, got ''",
    ),
    (
        "batch transform output that is no S3 URI",
        lambda: kit.sagemaker_batch_transform(**{**TRANSFORM, "output_s3_uri": "scores/"}),
        KitArgumentError,
        "sagemaker_batch_transform(): argument 'output_s3_uri' is not an s3:// URI: 'scores/'; "
        "pass e.g. 's3://bucket/scores/'",
    ),
    (
        "batch transform with an unknown split type",
        lambda: kit.sagemaker_batch_transform(**TRANSFORM, split_type="lines"),
        KitArgumentError,
        "sagemaker_batch_transform(): argument 'split_type' is 'lines'; use one of None, Line, RecordIO, TFRecord",
    ),
    (
        "batch transform with a negative payload size",
        lambda: kit.sagemaker_batch_transform(**TRANSFORM, max_payload_mb=-1),
        KitArgumentError,
        "sagemaker_batch_transform(): argument 'max_payload_mb' must be an integer >= 0, got -1",
    ),
    (
        "batch transform for a bad environment name",
        lambda: kit.sagemaker_batch_transform(**TRANSFORM, env="Prod"),
        KitArgumentError,
        "sagemaker_batch_transform(): argument 'env' is invalid (env 'Prod' is invalid",
    ),
    (
        "empty cluster",
        lambda: kit.ecs_run_task(**{**ECS, "cluster": ""}),
        KitArgumentError,
        "ecs_run_task(): argument 'cluster' must be a non-empty string, got ''",
    ),
    (
        "neither a job nor a task definition",
        lambda: kit.ecs_run_task(**{**ECS, "task_definition": None}),
        KitArgumentError,
        "ecs_run_task(): argument 'job' and 'task_definition' are both missing; pass job='etl-step' (runs what the "
        "job released) or task_definition=",
    ),
    (
        "empty task definition",
        lambda: kit.ecs_run_task(**{**ECS, "task_definition": ""}),
        KitArgumentError,
        "ecs_run_task(): argument 'task_definition' must be a non-empty string, got ''",
    ),
    (
        "task definition that is no family, revision or revision ARN",
        lambda: kit.ecs_run_task(**{**ECS, "task_definition": "etl step:latest"}),
        KitArgumentError,
        "ecs_run_task(): argument 'task_definition' is not a family, '<family>:<revision>' or a task-definition "
        "revision ARN: 'etl step:latest'",
    ),
    (
        "job and task definition both",
        lambda: kit.ecs_run_task(**ECS, job="etl-step"),
        KitArgumentError,
        "ecs_run_task(): argument 'task_definition' was given together with 'job'; pass only job= (it names the "
        "family)",
    ),
    (
        "unknown job",
        lambda: kit.ecs_run_task(**{**ECS, "task_definition": None}, job="etl"),
        KitArgumentError,
        "ecs_run_task(): argument 'job' is invalid (job 'etl' is unknown: use one of etl-step, serve, train)",
    ),
    (
        "a SageMaker job run on ECS",
        lambda: kit.ecs_run_task(**{**ECS, "task_definition": None}, job="train"),
        KitArgumentError,
        "ecs_run_task(): argument 'job' 'train' runs on sagemaker, not ECS; pass an ecs job, e.g. job='etl-step'",
    ),
    (
        "ECS image by tag",
        lambda: kit.ecs_run_task(**ECS, image=f"{REGISTRY}/eksflow-local-etl-step:latest"),
        KitArgumentError,
        "ecs_run_task(): argument 'image' names the image by its tag 'latest', not by digest: "
        f"'{REGISTRY}/eksflow-local-etl-step:latest'; pin it by digest, '<registry>/<repository>@sha256:<64 hex>'",
    ),
    (
        "ECS image without a tag (latest)",
        lambda: kit.ecs_run_task(**ECS, image=f"{REGISTRY}/eksflow-local-etl-step"),
        KitArgumentError,
        "ecs_run_task(): argument 'image' names the image by its tag 'latest', not by digest",
    ),
    (
        "ECS image outside the job repositories",
        lambda: kit.ecs_run_task(**ECS, image=f"{REGISTRY}/someone-elses@{DIGEST}"),
        KitArgumentError,
        "ecs_run_task(): argument 'image' is not in ECR repository 'eksflow-local-etl-step' (env 'local'): "
        f"'{REGISTRY}/someone-elses@{DIGEST}'; run only what a job repository released",
    ),
    (
        "ECS image of a SageMaker job's repository",
        lambda: kit.ecs_run_task(**ECS, image=IMAGE),
        KitArgumentError,
        "ecs_run_task(): argument 'image' is not in ECR repository 'eksflow-local-etl-step' (env 'local')",
    ),
    (
        "ECS image of another environment's job repository",
        lambda: kit.ecs_run_task(**ECS, image=ETL_IMAGE, env="dev"),
        KitArgumentError,
        "ecs_run_task(): argument 'image' is not in ECR repository 'eksflow-dev-etl-step' (env 'dev')",
    ),
    (
        "ECS image with a revision instead of the family",
        lambda: kit.ecs_run_task(**{**ECS, "task_definition": "eksflow-local-etl-step:3"}, image=ETL_IMAGE),
        KitArgumentError,
        "ecs_run_task(): argument 'task_definition' is a revision ('eksflow-local-etl-step:3') but 'image' asks for "
        "the revision with that image; pass the family alone",
    ),
    (
        "training image by tag",
        lambda: kit.sagemaker_training(**{**TRAINING, "image": f"{REGISTRY}/eksflow-local-train:latest"}),
        KitArgumentError,
        "sagemaker_training(): argument 'image' names the image by its tag 'latest', not by digest",
    ),
    (
        "serving image by tag",
        lambda: kit.sagemaker_register_model(
            task_id="r",
            endpoint_name="eksflow-local-x",
            image="serve:1.0",
            model_data="s3://m",
            execution_role_arn=ROLE_ARN,
        ),
        KitArgumentError,
        "sagemaker_register_model(): argument 'image' names the image by its tag '1.0', not by digest: 'serve:1.0'; "
        "pin it by digest, '<registry>/<repository>@sha256:<64 hex>': the image `eksflow job release` printed, or "
        "the job's released image at run time, released_image(task_id=..., job='<job>').output",
    ),
    (
        "processing image with a short digest",
        lambda: kit.sagemaker_processing(**{**PROCESSING, "image": f"{REGISTRY}/features@sha256:abc"}),
        KitArgumentError,
        "sagemaker_processing(): argument 'image' is not '<registry>/<repository>@sha256:<64 hex>'",
    ),
    (
        "released image of an unknown job",
        lambda: kit.released_image(task_id="i", job="trian"),
        KitArgumentError,
        "released_image(): argument 'job' is invalid (job 'trian' is unknown: use one of etl-step, serve, train)",
    ),
    (
        "released image of an ecs job",
        lambda: kit.released_image(task_id="i", job="etl-step"),
        KitArgumentError,
        "released_image(): argument 'job' 'etl-step' runs on ecs: its release is a task-definition revision, not an "
        "image to pass on; run what it released with ecs_run_task(job='etl-step', ...)",
    ),
    (
        "unknown launch type",
        lambda: kit.ecs_run_task(**{**ECS, "launch_type": "LAMBDA"}),
        KitArgumentError,
        "ecs_run_task(): argument 'launch_type' is 'LAMBDA'; use one of FARGATE, EC2",
    ),
    (
        "Fargate without subnets",
        lambda: kit.ecs_run_task(**{**ECS, "subnets": []}),
        KitArgumentError,
        "argument 'subnets' is empty but launch_type is FARGATE (awsvpc needs subnets); pass private subnet ids",
    ),
    (
        "subnets as a string",
        lambda: kit.ecs_run_task(**{**ECS, "subnets": "subnet-1"}),
        KitArgumentError,
        "argument 'subnets' must be a list of subnet ids, not a string",
    ),
    (
        "zero fan-out limit",
        lambda: kit.ecs_run_task(**{**ECS, "max_active_tis_per_dag": 0}),
        KitArgumentError,
        "argument 'max_active_tis_per_dag' must be an integer >= 1, got 0",
    ),
    (
        "no pool",
        lambda: kit.ecs_run_task(**{**ECS, "pool": None}),
        KitArgumentError,
        "argument 'pool' must be a non-empty string, got None",
    ),
    (
        "both overrides and map_overrides",
        lambda: kit.ecs_run_task(**ECS, overrides={}, map_overrides=[{}]),
        KitArgumentError,
        "argument 'map_overrides' was given together with 'overrides'; pass only one of them",
    ),
    (
        "map_overrides not an XComArg",
        lambda: kit.ecs_run_task(**ECS, map_overrides=[{}]),
        KitArgumentError,
        "argument 'map_overrides' must be an XComArg (the output of a task), got list",
    ),
    (
        "command as a string",
        lambda: kit.ecs_overrides("etl", command="run --all"),
        KitArgumentError,
        "ecs_overrides(): argument 'command' must be a list of strings",
    ),
    (
        "negative container memory",
        lambda: kit.ecs_overrides("etl", memory=-512),
        KitArgumentError,
        "ecs_overrides(): argument 'memory' must be an integer >= 1, got -512",
    ),
    (
        "empty container name",
        lambda: kit.ecs_overrides(""),
        KitArgumentError,
        "ecs_overrides(): argument 'container' must be a non-empty string",
    ),
    (
        "CPU threshold out of range",
        lambda: kit.find_managed_instances(task_id="f", cpu_threshold=150),
        KitArgumentError,
        "find_managed_instances(): argument 'cpu_threshold' must be a percentage between 0 and 100, got 150",
    ),
    (
        "negative look-back",
        lambda: kit.find_idle_endpoints(task_id="f", lookback_hours=-1),
        KitArgumentError,
        "find_idle_endpoints(): argument 'lookback_hours' must be an integer >= 1, got -1",
    ),
    (
        "dry-run switch that is not a boolean",
        lambda: kit.terminate_managed_instances(task_id="t", instance_ids=["i-1"], dry_run="ture"),
        KitArgumentError,
        "terminate_managed_instances(): argument 'dry_run' must be True or False (or a template), got 'ture'",
    ),
    (
        "dry-run switch as a number",
        lambda: kit.delete_idle_endpoints(task_id="d", endpoint_names=["eksflow-x"], dry_run=0),
        KitArgumentError,
        "delete_idle_endpoints(): argument 'dry_run' must be True or False (or a template), got 0",
    ),
    (
        "empty report bucket",
        lambda: kit.write_s3_report(task_id="w", bucket="", key="k", data="x"),
        KitArgumentError,
        "write_s3_report(): argument 'bucket' must be a non-empty string",
    ),
    (
        "DAG without owner",
        lambda: kit.default_args(owner=""),
        KitArgumentError,
        "default_args(): argument 'owner' must be a team name, got ''",
    ),
    (
        "DAG default that no operator takes (a typo would be dropped by Airflow)",
        lambda: kit.default_args(owner="data-eng", retires=0),
        KitArgumentError,
        "default_args(): argument 'retires' is not a DAG-wide task default",
    ),
    (
        "DAG default that would move every task to another role's pod",
        lambda: kit.default_args(owner="data-eng", executor_config={"pod_template_file": "/x.yaml"}),
        KitArgumentError,
        "default_args(): argument 'executor_config' is not a DAG-wide task default",
    ),
]


@pytest.mark.parametrize(("case", "call", "error", "message"), CASES, ids=[c[0] for c in CASES])
def test_bad_argument_fails_with_a_message_naming_it(case, call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()


def test_kit_errors_name_the_argument_programmatically():
    with pytest.raises(KitArgumentError) as caught:
        kit.sagemaker_training(**{**TRAINING, "instance_count": 0})
    assert (caught.value.helper, caught.value.argument) == ("sagemaker_training", "instance_count")


def test_templated_values_are_checked_at_run_time_not_parse_time():
    op = kit.sagemaker_training(**{**TRAINING, "instance_type": "{{ params.instance_type }}"})
    assert op.config["ResourceConfig"]["InstanceType"] == "{{ params.instance_type }}"


def test_a_batch_transform_takes_its_model_from_the_register_steps_output_or_a_template():
    from datetime import datetime

    from airflow.sdk import DAG

    with DAG("scoring", schedule=None, start_date=datetime(2026, 1, 1)):
        register = kit.sagemaker_register_model(
            task_id="register_model",
            endpoint_name="eksflow-local-churn",
            image=IMAGE,
            model_data="s3://m/model.tar.gz",
            execution_role_arn=ROLE_ARN,
        )
        score = kit.sagemaker_batch_transform(**{**TRANSFORM, "model_name": register.output["model"]})
        templated = kit.sagemaker_batch_transform(
            **{**TRANSFORM, "task_id": "t2", "model_name": "{{ ti.xcom_pull('register_model')['model'] }}"}
        )
    assert score.upstream_task_ids == {"register_model"}
    assert templated.config["ModelName"].startswith("{{")


def test_images_given_as_templates_or_task_outputs_are_taken_and_checked_once_rendered():
    from datetime import datetime

    from airflow.sdk import DAG

    with DAG("images", schedule=None, start_date=datetime(2026, 1, 1)):
        released = kit.released_image(task_id="train_image", job="train")
        train = kit.sagemaker_training(**{**TRAINING, "image": released.output})
        processing = kit.sagemaker_processing(**{**PROCESSING, "image": "{{ params.image }}"})
        ecs = kit.ecs_run_task(**{**ECS, "task_definition": None}, job="etl-step", image="{{ params.image }}")
    assert train.upstream_task_ids == {"train_image"}
    assert processing.config["AppSpecification"]["ImageUri"] == "{{ params.image }}"
    assert (ecs.image, ecs.task_definition, ecs.job) == ("{{ params.image }}", "eksflow-local-etl-step", "etl-step")
    assert "image" in type(ecs).template_fields
