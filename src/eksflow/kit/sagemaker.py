"""SageMaker steps under the ``sagemaker-runner`` role: training -> model + endpoint config -> endpoint
create or blue/green update -> smoke check.

Every resource gets a stable name derived from the task instance key, starting with the environment's prefix
``eksflow-<env>-`` (see :mod:`eksflow.kit.naming`; the environment is each step's ``env``, by default
``EKSFLOW_ENV``: IAM lets an environment's roles reach only its own names), and every operator first looks for what
an earlier try of the same task already created:
- training: an InProgress job is re-attached (deferred wait), a Completed one is reused, and only after a
  Failed/Stopped job does a retry start a new generation (``-g2``, ...);
- model / endpoint config: reused when present (they are immutable);
- endpoint: left alone when it already runs (or is moving to) the target config, else created or updated.
"""

from __future__ import annotations

import datetime
import math
from collections.abc import Mapping
from typing import Any

from airflow.providers.amazon.aws.hooks.sagemaker import SageMakerHook
from airflow.providers.amazon.aws.operators.base_aws import AwsBaseOperator
from airflow.providers.amazon.aws.operators.sagemaker import (
    SageMakerEndpointOperator,
    SageMakerModelOperator,
    SageMakerTrainingOperator,
)
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.providers.amazon.aws.utils.mixins import aws_template_fields
from airflow.providers.common.compat.sdk import AirflowException
from botocore.exceptions import ClientError

from eksflow.kit.defaults import WAITER_DELAY_SECONDS, aws_operator_kwargs, deferrable, side_client
from eksflow.kit.errors import (
    KitArgumentError,
    check_rendered_image,
    is_deferred_value,
    require_env,
    require_ml_instance_type,
    require_non_empty_str,
    require_pinned_image,
    require_positive_int,
)
from eksflow.kit.naming import SAGEMAKER_NAME_MAX, name_from_context, retry_name, stable_job_name
from eksflow.platform import PROJECT, endpoint_tags, sagemaker_name_prefix

ROLE = "sagemaker-runner"
MAX_GENERATIONS = 10


def _not_found(error: ClientError) -> bool:
    code = error.response.get("Error", {}).get("Code", "")
    message = error.response.get("Error", {}).get("Message", "")
    return code in {"ValidationException", "ResourceNotFound"} and (
        "not" in message.lower() or "could not find" in message.lower() or code == "ResourceNotFound"
    )


def _describe_or_none(describe, name: str) -> dict | None:
    try:
        return describe(name)
    except ClientError as error:
        if _not_found(error):
            return None
        raise


def _polls_for(budget_seconds: int | None, interval_seconds: int, default: int) -> int:
    """Polls at `interval_seconds` that cover `budget_seconds` (no budget: `default`)."""
    return math.ceil(budget_seconds / max(interval_seconds, 1)) + 1 if budget_seconds else default


class ReattachingTrainingOperator(SageMakerTrainingOperator):
    """SageMakerTrainingOperator whose retries re-attach to the job an earlier try started; the job is named for
    ``env`` (by default ``EKSFLOW_ENV``)."""

    extra_aws_services = ("s3",)  # the provider checks the input prefix exists

    template_fields = (*SageMakerTrainingOperator.template_fields, "job_base_name")

    def __init__(self, *, job_base_name: str, env: str | None = None, **kwargs: Any):
        kwargs.setdefault("print_log", False)
        super().__init__(check_if_job_exists=False, **kwargs)
        if kwargs.get("max_attempts") is None:  # a deferred wait polls for the job's whole time budget (the
            # provider's default, 60 polls, ended a long training's wait after 30 minutes at a 30 s interval)
            self.max_attempts = _polls_for(self.max_ingestion_time, self.check_interval, self.max_attempts)
        self.job_base_name = job_base_name
        self.env = require_env("sagemaker_training", env)

    def execute(self, context):
        check_rendered_image("sagemaker_training", "image", self.config["AlgorithmSpecification"]["TrainingImage"])
        base = name_from_context(self.job_base_name, context, env=self.env)
        for generation in range(1, MAX_GENERATIONS + 1):
            name = retry_name(base, generation)
            described = _describe_or_none(self.hook.describe_training_job, name)
            if described is None:
                self.log.info("Starting training job %s", name)
                self.config["TrainingJobName"] = name
                return super().execute(context)
            status = described["TrainingJobStatus"]
            if status in self.hook.non_terminal_states:
                self.log.info("Re-attaching to training job %s (%s) started by an earlier try", name, status)
                self.config["TrainingJobName"] = name
                return self._wait(name)
            if status == "Completed":
                self.log.info("Training job %s already completed; reusing its result", name)
                return self.serialize_result(name)
            self.log.warning(
                "Training job %s ended %s (%s); starting the next generation",
                name,
                status,
                described.get("FailureReason", "no reason given"),
            )
        raise AirflowException(f"{MAX_GENERATIONS} generations of training job {base} failed; giving up")

    def _wait(self, name: str):
        if self.deferrable:
            self.defer(
                trigger=SageMakerTrigger(
                    job_name=name,
                    job_type="Training",
                    waiter_delay=self.check_interval,
                    waiter_max_attempts=self.max_attempts,
                    aws_conn_id=self.aws_conn_id,
                    region_name=self.region_name,
                    verify=self.verify,
                    botocore_config=self.botocore_config,
                ),
                method_name="execute_complete",
                timeout=datetime.timedelta(seconds=self.max_ingestion_time) if self.max_ingestion_time else None,
            )
        if self.print_log:  # tails the job's CloudWatch logs: needs logs:* the runner roles do not have
            self.hook.check_training_status_with_log(
                name,
                self.hook.non_terminal_states,
                self.hook.training_failed_states,
                wait_for_completion=True,
                check_interval=self.check_interval,
                max_ingestion_time=self.max_ingestion_time,
            )
        else:  # as the provider waits for a job it started with print_log off: DescribeTrainingJob only
            self.hook.check_status(
                name, "TrainingJobStatus", self.hook.describe_training_job, self.check_interval, self.max_ingestion_time
            )
        return self.serialize_result(name)


def deployment_names(endpoint_name: str, context, *, env: str) -> dict[str, str]:
    """Model and endpoint-config names of one deployment (same for every task of the DAG run), with the
    environment's prefix once: ``eksflow-dev-churn`` -> ``eksflow-dev-churn-model-<hash>``."""
    ti = context["ti"]
    key = {"env": env, "dag_id": ti.dag_id, "run_id": ti.run_id, "task_id": f"deploy:{endpoint_name}"}
    return {
        "model": stable_job_name(f"{endpoint_name}-model", **key),
        "endpoint_config": stable_job_name(f"{endpoint_name}-config", **key),
    }


class RegisterModelOperator(SageMakerModelOperator):
    """Create the model and its endpoint config (both immutable) unless an earlier try did; named for ``env`` (by
    default ``EKSFLOW_ENV``), which the endpoint's name must start with."""

    template_fields = aws_template_fields("config", "model_data", "endpoint_name", "image")

    def __init__(
        self,
        *,
        endpoint_name: str,
        image: str,
        model_data: str,
        execution_role_arn: str,
        instance_type: str,
        instance_count: int,
        environment: Mapping[str, str] | None = None,
        env: str | None = None,
        **kwargs: Any,
    ):
        super().__init__(config={}, **kwargs)
        self.env = require_env("sagemaker_register_model", env)
        _require_endpoint_name("sagemaker_register_model", endpoint_name, self.env)
        self.endpoint_name = endpoint_name
        self.image = image
        self.model_data = model_data
        self.execution_role_arn = execution_role_arn
        self.instance_type = instance_type
        self.instance_count = instance_count
        self.environment = dict(environment or {})

    def execute(self, context):
        check_rendered_image("sagemaker_register_model", "image", self.image)
        names = deployment_names(self.endpoint_name, context, env=self.env)
        if _describe_or_none(self.hook.describe_model, names["model"]) is None:
            self.config = {
                "ModelName": names["model"],
                "ExecutionRoleArn": self.execution_role_arn,
                "PrimaryContainer": {
                    "Image": self.image,
                    "ModelDataUrl": self.model_data,
                    "Environment": self.environment,
                },
            }
            super().execute(context)
        else:
            self.log.info("Model %s exists (earlier try); reusing it", names["model"])
        if _describe_or_none(self.hook.describe_endpoint_config, names["endpoint_config"]) is None:
            self.log.info("Creating endpoint config %s", names["endpoint_config"])
            self.hook.create_endpoint_config(
                {
                    "EndpointConfigName": names["endpoint_config"],
                    "ProductionVariants": [
                        {
                            "VariantName": "primary",
                            "ModelName": names["model"],
                            "InstanceType": self.instance_type,
                            "InitialInstanceCount": int(self.instance_count),
                        }
                    ],
                }
            )
        else:
            self.log.info("Endpoint config %s exists (earlier try); reusing it", names["endpoint_config"])
        return names


# Blue/green: SageMaker brings up the new fleet, shifts all traffic at once, keeps the old fleet for the
# bake period and rolls back automatically if an alarm fires in it.
def blue_green_deployment(bake_seconds: int = 300, alarms: tuple[str, ...] = ()) -> dict[str, Any]:
    config: dict[str, Any] = {
        "BlueGreenUpdatePolicy": {
            "TrafficRoutingConfiguration": {"Type": "ALL_AT_ONCE", "WaitIntervalInSeconds": 0},
            "TerminationWaitInSeconds": bake_seconds,
        }
    }
    if alarms:
        config["AutoRollbackConfiguration"] = {"Alarms": [{"AlarmName": name} for name in alarms]}
    return config


class DeployEndpointOperator(SageMakerEndpointOperator):
    """Create the endpoint, or move it to this run's endpoint config with a blue/green update.

    A new endpoint gets the platform's tags only (``eksflow.platform.endpoint_tags``): ``managed`` hands it to this
    environment's housekeeping (deleted when idle, unless protected), ``protected`` keeps housekeeping off it. IAM
    lets the sagemaker-runner role set no other tag, nor these to other values."""

    template_fields = aws_template_fields("config", "endpoint_name")

    def __init__(
        self,
        *,
        endpoint_name: str,
        bake_seconds: int = 300,
        managed: bool = False,
        protected: bool = False,
        env: str | None = None,
        **kwargs,
    ):
        super().__init__(config={}, **kwargs)
        self.env = require_env("sagemaker_deploy_endpoint", env)
        _require_endpoint_name("sagemaker_deploy_endpoint", endpoint_name, self.env)
        self.endpoint_name = endpoint_name
        self.bake_seconds = bake_seconds
        self.endpoint_tags = endpoint_tags(self.env, managed=managed, protected=protected)

    def execute(self, context):
        target = deployment_names(self.endpoint_name, context, env=self.env)["endpoint_config"]
        current = _describe_or_none(self.hook.describe_endpoint, self.endpoint_name)
        if current is None:
            self.log.info("Creating endpoint %s with config %s", self.endpoint_name, target)
            request: dict[str, Any] = {"EndpointName": self.endpoint_name, "EndpointConfigName": target}
            if self.endpoint_tags:
                request["Tags"] = [{"Key": k, "Value": v} for k, v in sorted(self.endpoint_tags.items())]
            self.hook.create_endpoint(request, wait_for_completion=False)
        elif current["EndpointConfigName"] == target:
            self.log.info(
                "Endpoint %s already uses %s (%s): re-attaching",
                self.endpoint_name,
                target,
                current["EndpointStatus"],
            )
        elif current["EndpointStatus"] in self.hook.endpoint_non_terminal_states:
            raise AirflowException(
                f"Endpoint {self.endpoint_name} is {current['EndpointStatus']} with another config "
                f"({current['EndpointConfigName']}); wait for that deployment to finish, then clear this task"
            )
        else:
            self.log.info(
                "Blue/green update of %s: %s -> %s", self.endpoint_name, current["EndpointConfigName"], target
            )
            self.hook.conn.update_endpoint(
                EndpointName=self.endpoint_name,
                EndpointConfigName=target,
                DeploymentConfig=blue_green_deployment(self.bake_seconds),
            )
        if self.deferrable:
            self.defer(
                trigger=SageMakerTrigger(
                    job_name=self.endpoint_name,
                    job_type="endpoint",
                    waiter_delay=self.check_interval,
                    aws_conn_id=self.aws_conn_id,
                    region_name=self.region_name,
                    verify=self.verify,
                    botocore_config=self.botocore_config,
                ),
                method_name="execute_complete",
                timeout=datetime.timedelta(seconds=self.max_ingestion_time),
            )
        self.hook.get_waiter("endpoint_in_service").wait(
            EndpointName=self.endpoint_name,
            WaiterConfig={"Delay": self.check_interval, "MaxAttempts": self.max_ingestion_time},
        )
        return {
            "Endpoint": self.hook.describe_endpoint(self.endpoint_name)["EndpointArn"],
            "EndpointConfig": target,
        }

    def execute_complete(self, context, event=None):
        result = super().execute_complete(context, event)
        return {
            "Endpoint": result["Endpoint"]["EndpointArn"],
            "EndpointConfig": result["Endpoint"]["EndpointConfigName"],
        }


class EndpointSmokeCheckOperator(AwsBaseOperator[SageMakerHook]):
    """Invoke the endpoint once with a sample payload; fail unless it is InService and answers. The endpoint is one
    of ``env``'s (by default ``EKSFLOW_ENV``)."""

    aws_hook_class = SageMakerHook
    extra_aws_services = ("sagemaker-runtime",)
    template_fields = aws_template_fields("endpoint_name", "payload")

    def __init__(
        self, *, endpoint_name: str, payload: str, content_type: str = "text/csv", env: str | None = None, **kwargs
    ):
        super().__init__(**kwargs)
        self.env = require_env("sagemaker_smoke_check", env)
        _require_endpoint_name("sagemaker_smoke_check", endpoint_name, self.env)
        self.endpoint_name = endpoint_name
        self.payload = payload
        self.content_type = content_type

    def execute(self, context):
        status = self.hook.describe_endpoint(self.endpoint_name)["EndpointStatus"]
        if status != "InService":
            raise AirflowException(f"Endpoint {self.endpoint_name} is {status}, expected InService")
        runtime = side_client(self, "sagemaker-runtime")
        response = runtime.invoke_endpoint(
            EndpointName=self.endpoint_name, ContentType=self.content_type, Body=self.payload.encode()
        )
        body = response["Body"].read().decode(errors="replace")
        if not body.strip():
            raise AirflowException(f"Endpoint {self.endpoint_name} answered with an empty body")
        self.log.info("Smoke check answer from %s: %s", self.endpoint_name, body[:200])
        return {"status": status, "answer": body[:200]}


# ----------------------------------------------------------------------------------------------------
# Helpers DAG authors call.


def sagemaker_training(
    *,
    task_id: str,
    job_base_name: str,
    image: str,
    execution_role_arn: str,
    input_s3_uri: str,
    output_s3_uri: str,
    instance_type: str = "ml.m5.xlarge",
    instance_count: int = 1,
    volume_size_gb: int = 30,
    max_runtime_seconds: int = 3600,
    hyperparameters: Mapping[str, str] | None = None,
    metric_definitions: list[dict[str, str]] | None = None,
    **operator_kwargs: Any,
) -> ReattachingTrainingOperator:
    """A training job named ``eksflow-<env>-<job_base_name>-<hash>`` (``env=`` among the operator keywords, by default
    ``EKSFLOW_ENV``); a retry re-attaches to the job an earlier try started. ``image``: pinned by digest
    (``<registry>/<repository>@sha256:<hex>``), e.g. ``released_image(task_id=..., job="train").output``; a tag is
    refused (templated values are checked once rendered)."""
    helper = "sagemaker_training"
    require_non_empty_str(helper, "job_base_name", job_base_name, "churn-model")
    require_pinned_image(helper, "image", image)
    require_non_empty_str(helper, "execution_role_arn", execution_role_arn, "arn:aws:iam::123456789012:role/x")
    _require_arn(helper, "execution_role_arn", execution_role_arn)
    require_non_empty_str(helper, "input_s3_uri", input_s3_uri, "s3://bucket/prefix/")
    require_non_empty_str(helper, "output_s3_uri", output_s3_uri, "s3://bucket/models/")
    if not is_deferred_value(input_s3_uri) and not (input_s3_uri.startswith("s3://") and input_s3_uri.endswith("/")):
        # Without the "/", S3Prefix also matches "curated-old/...", and the provider's existence check reads the
        # prefix as an object — which a least-privilege role may not (found by the IAM-enforced tests).
        raise KitArgumentError(
            helper,
            "input_s3_uri",
            f"is not an s3:// prefix ending in '/': {input_s3_uri!r}",
            "pass e.g. 's3://bucket/curated/'",
        )
    require_ml_instance_type(helper, "instance_type", instance_type)
    require_positive_int(helper, "instance_count", instance_count)
    require_positive_int(helper, "volume_size_gb", volume_size_gb)
    require_positive_int(helper, "max_runtime_seconds", max_runtime_seconds)
    algorithm: dict[str, Any] = {"TrainingImage": image, "TrainingInputMode": "File"}
    if metric_definitions:
        algorithm["MetricDefinitions"] = list(metric_definitions)
    config = {
        "AlgorithmSpecification": algorithm,
        "RoleArn": execution_role_arn,
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        "S3DataType": "S3Prefix",
                        "S3Uri": input_s3_uri,
                        "S3DataDistributionType": "FullyReplicated",
                    }
                },
            }
        ],
        "OutputDataConfig": {"S3OutputPath": output_s3_uri},
        "ResourceConfig": {
            "InstanceType": instance_type,
            "InstanceCount": instance_count,
            "VolumeSizeInGB": volume_size_gb,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_seconds},
        "HyperParameters": {str(k): str(v) for k, v in (hyperparameters or {}).items()},
    }
    kwargs = {
        **aws_operator_kwargs(ROLE),
        "deferrable": deferrable(),
        "check_interval": WAITER_DELAY_SECONDS,
        "max_ingestion_time": max_runtime_seconds + 1800,
        **operator_kwargs,
    }
    return ReattachingTrainingOperator(task_id=task_id, job_base_name=job_base_name, config=config, **kwargs)


def sagemaker_register_model(
    *,
    task_id: str,
    endpoint_name: str,
    image: str,
    model_data: str,
    execution_role_arn: str,
    instance_type: str = "ml.m5.large",
    instance_count: int = 1,
    **operator_kwargs: Any,
) -> RegisterModelOperator:
    """The model and endpoint config of one deployment of ``endpoint_name`` (``eksflow-<env>-...``; ``env=`` among the
    operator keywords, by default ``EKSFLOW_ENV``), named ``<endpoint_name>-model-<hash>``/``-config-<hash>``.
    ``image``: the serving image pinned by digest, e.g. ``released_image(task_id=..., job="serve").output``."""
    helper = "sagemaker_register_model"
    _require_endpoint_name(helper, endpoint_name, require_env(helper, operator_kwargs.get("env")))
    require_pinned_image(helper, "image", image)
    require_non_empty_str(helper, "model_data", model_data, "s3://bucket/models/model.tar.gz")
    _require_arn(helper, "execution_role_arn", execution_role_arn)
    require_ml_instance_type(helper, "instance_type", instance_type)
    require_positive_int(helper, "instance_count", instance_count)
    return RegisterModelOperator(
        task_id=task_id,
        endpoint_name=endpoint_name,
        image=image,
        model_data=model_data,
        execution_role_arn=execution_role_arn,
        instance_type=instance_type,
        instance_count=instance_count,
        **{**aws_operator_kwargs(ROLE), **operator_kwargs},
    )


def sagemaker_deploy_endpoint(
    *,
    task_id: str,
    endpoint_name: str,
    bake_seconds: int = 300,
    managed: bool = False,
    protected: bool = False,
    env: str | None = None,
    **operator_kwargs,
) -> DeployEndpointOperator:
    """Deploy (create or blue/green update) an endpoint of the environment (``env``, by default ``EKSFLOW_ENV``), named
    ``eksflow-<env>-...``. ``managed=True`` tags a new endpoint as this environment's for housekeeping, which deletes
    it when idle unless ``protected=True``."""
    helper = "sagemaker_deploy_endpoint"
    _require_endpoint_name(helper, endpoint_name, require_env(helper, env))
    require_positive_int(helper, "bake_seconds", bake_seconds, minimum=0)
    for argument, value in (("managed", managed), ("protected", protected)):
        if not isinstance(value, bool):
            raise KitArgumentError(helper, argument, f"must be True or False, got {value!r}", f"e.g. {argument}=True")
    kwargs = {
        **aws_operator_kwargs(ROLE),
        "deferrable": deferrable(),
        "check_interval": WAITER_DELAY_SECONDS,
        "max_ingestion_time": 3600,
        **operator_kwargs,
    }
    return DeployEndpointOperator(
        task_id=task_id,
        endpoint_name=endpoint_name,
        bake_seconds=bake_seconds,
        managed=managed,
        protected=protected,
        env=env,
        **kwargs,
    )


def sagemaker_smoke_check(
    *, task_id: str, endpoint_name: str, payload: str, **operator_kwargs
) -> EndpointSmokeCheckOperator:
    """One invocation of an endpoint of the environment (``eksflow-<env>-...``; ``env=`` among the operator keywords,
    by default ``EKSFLOW_ENV``)."""
    helper = "sagemaker_smoke_check"
    _require_endpoint_name(helper, endpoint_name, require_env(helper, operator_kwargs.get("env")))
    require_non_empty_str(helper, "payload", payload, "1.0,2.0,3.0")
    return EndpointSmokeCheckOperator(
        task_id=task_id,
        endpoint_name=endpoint_name,
        payload=payload,
        **{**aws_operator_kwargs(ROLE), **operator_kwargs},
    )


def _require_arn(helper: str, argument: str, value: Any) -> None:
    if isinstance(value, str) and "{{" not in value and not value.startswith("arn:"):
        raise KitArgumentError(
            helper,
            argument,
            f"must be a full IAM role ARN, got {value!r}",
            "e.g. 'arn:aws:iam::123456789012:role/name'",
        )


def _require_endpoint_name(helper: str, value: Any, env: str) -> None:
    """An endpoint of ``env``: named with its prefix ``eksflow-<env>-``, the only endpoints its roles may reach."""
    prefix = sagemaker_name_prefix(env)
    require_non_empty_str(helper, "endpoint_name", value, f"{prefix}churn")
    if not isinstance(value, str) or "{{" in value:
        return
    where = f"env {env!r}, from the env= argument or else EKSFLOW_ENV"
    how = "build it with eksflow.platform.sagemaker_name_prefix(load_settings().env)"
    if not value.startswith(prefix):
        raise KitArgumentError(
            helper,
            "endpoint_name",
            f"must start with the environment's prefix {prefix!r} ({where}; IAM scopes the environment's roles to "
            f"it), got {value!r}",
            f"rename it to {prefix + value.removeprefix(PROJECT + '-')!r} — {how}",
        )
    if len(value) > SAGEMAKER_NAME_MAX:
        raise KitArgumentError(
            helper,
            "endpoint_name",
            f"is {len(value)} characters, SageMaker allows {SAGEMAKER_NAME_MAX}, got {value!r}",
            "shorten the part after the prefix",
        )


__all__ = [
    "DeployEndpointOperator",
    "EndpointSmokeCheckOperator",
    "ReattachingTrainingOperator",
    "RegisterModelOperator",
    "blue_green_deployment",
    "deployment_names",
    "sagemaker_deploy_endpoint",
    "sagemaker_register_model",
    "sagemaker_smoke_check",
    "sagemaker_training",
]
