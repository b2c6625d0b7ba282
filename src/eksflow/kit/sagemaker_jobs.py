"""SageMaker processing and batch transform jobs under the ``sagemaker-runner`` role, with training's guarantees.

A job is named ``eksflow-<env>-<job_base_name>-<hash>`` from the task instance key (:mod:`eksflow.kit.naming`;
IAM lets an environment's roles reach only its own names), and every try first looks for the job an earlier try
started: an InProgress one is re-attached (deferred wait), a Completed one is reused, and only after a
Failed/Stopped job does a retry start the next generation (``-g2``, ...). Waits are deferred to the triggerer (it
polls Describe*Job, which its role may do on this environment's names). No call reads the jobs' S3 data: SageMaker
does, with the execution role, so the runner role needs no S3 rights for these jobs.
"""

from __future__ import annotations

import datetime
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from airflow.providers.amazon.aws.operators.sagemaker import SageMakerBaseOperator
from airflow.providers.amazon.aws.triggers.sagemaker import SageMakerTrigger
from airflow.providers.amazon.aws.utils import validate_execute_complete_event
from airflow.providers.common.compat.sdk import AirflowException

from eksflow.kit.defaults import WAITER_DELAY_SECONDS, aws_operator_kwargs, deferrable
from eksflow.kit.errors import (
    KitArgumentError,
    check_rendered_image,
    is_deferred_value,
    require_choice,
    require_env,
    require_ml_instance_type,
    require_non_empty_str,
    require_pinned_image,
    require_positive_int,
)
from eksflow.kit.naming import SAGEMAKER_NAME_MAX, name_from_context, retry_name
from eksflow.kit.sagemaker import MAX_GENERATIONS, ROLE, _describe_or_none, _require_arn
from eksflow.platform import sagemaker_name_prefix

RUNNING_STATES = frozenset({"InProgress", "Stopping"})
# SageMaker's names for channels/outputs and container environment variables.
_CHANNEL_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,1023}$")


class ReattachingJobOperator(SageMakerBaseOperator):
    """A SageMaker job named for ``env`` (by default ``EKSFLOW_ENV``) from the task instance key; retries re-attach
    to the job an earlier try started, reuse a completed one, and start a new generation only after a failed one."""

    kind: ClassVar[str]  # SageMaker's word in CreateXJob/DescribeXJob and SageMakerTrigger's job_type

    template_fields = (*SageMakerBaseOperator.template_fields, "job_base_name")

    def __init__(
        self,
        *,
        job_base_name: str,
        env: str | None = None,
        check_interval: int = WAITER_DELAY_SECONDS,
        max_ingestion_time: int = 3600,
        deferrable: bool = True,
        **kwargs: Any,
    ):
        super().__init__(**kwargs)
        self.job_base_name = job_base_name
        self.env = require_env(f"sagemaker_{self.kind.lower()}", env)
        self.check_interval = check_interval
        self.max_ingestion_time = max_ingestion_time
        self.deferrable = deferrable

    @property
    def _name_key(self) -> str:
        return f"{self.kind}JobName"

    @property
    def _status_key(self) -> str:
        return f"{self.kind}JobStatus"

    def _describe(self, name: str) -> dict:
        return getattr(self.hook.conn, f"describe_{self.kind.lower()}_job")(**{self._name_key: name})

    def execute(self, context):
        self._check_image()
        self._create_integer_fields()
        self.parse_config_integers()  # a templated config renders numbers as strings
        base = name_from_context(self.job_base_name, context, env=self.env)
        for generation in range(1, MAX_GENERATIONS + 1):
            name = retry_name(base, generation)
            described = _describe_or_none(self._describe, name)
            if described is None:
                self.log.info("Starting %s job %s", self.kind.lower(), name)
                getattr(self.hook.conn, f"create_{self.kind.lower()}_job")(**{**self.config, self._name_key: name})
                return self._wait(name)
            status = described[self._status_key]
            if status in RUNNING_STATES:
                self.log.info("Re-attaching to %s job %s (%s) started by an earlier try", self.kind, name, status)
                return self._wait(name)
            if status == "Completed":
                self.log.info("%s job %s already completed; reusing its result", self.kind, name)
                return self._result(described)
            self.log.warning(
                "%s job %s ended %s (%s); starting the next generation",
                self.kind,
                name,
                status,
                described.get("FailureReason", "no reason given"),
            )
        raise AirflowException(f"{MAX_GENERATIONS} generations of {self.kind.lower()} job {base} failed; giving up")

    def _check_image(self) -> None:
        """A templated image must have rendered to one pinned by digest (jobs that name an image)."""

    def _wait(self, name: str):
        if self.deferrable:
            self.defer(
                trigger=SageMakerTrigger(
                    job_name=name,
                    job_type=self.kind,
                    waiter_delay=self.check_interval,
                    # The waiter's own limit, not the provider's default of 60 polls: the job's whole time budget.
                    waiter_max_attempts=math.ceil(self.max_ingestion_time / max(self.check_interval, 1)) + 1,
                    aws_conn_id=self.aws_conn_id,
                    region_name=self.region_name,
                    verify=self.verify,
                    botocore_config=self.botocore_config,
                ),
                method_name="execute_complete",
                timeout=datetime.timedelta(seconds=self.max_ingestion_time),
            )
        self.hook.check_status(
            name,
            self._status_key,
            self._describe,
            self.check_interval,
            self.max_ingestion_time,
            non_terminal_states=set(RUNNING_STATES),
        )
        return self._finish(name)

    def execute_complete(self, context, event=None):
        event = validate_execute_complete_event(event)
        if event["status"] != "success":
            raise AirflowException(f"{self.kind} job failed: {event}")
        return self._finish(event["job_name"])

    def _finish(self, name: str):
        described = self._describe(name)
        if described[self._status_key] != "Completed":  # Stopped passes the provider's status check
            raise AirflowException(
                f"{self.kind} job {name} ended {described[self._status_key]}: "
                f"{described.get('FailureReason', 'no reason given')}"
            )
        return self._result(described)

    def _result(self, described: dict) -> dict:
        described = {k: v for k, v in described.items() if k != "ResponseMetadata"}
        return {self.kind: json.loads(json.dumps(described, default=str))}


class ProcessingJobOperator(ReattachingJobOperator):
    kind = "Processing"

    def _check_image(self) -> None:
        check_rendered_image("sagemaker_processing", "image", self.config["AppSpecification"]["ImageUri"])

    def _create_integer_fields(self) -> None:
        self.integer_fields = [
            ["ProcessingResources", "ClusterConfig", "InstanceCount"],
            ["ProcessingResources", "ClusterConfig", "VolumeSizeInGB"],
            ["StoppingCondition", "MaxRuntimeInSeconds"],
        ]


class TransformJobOperator(ReattachingJobOperator):
    kind = "Transform"

    def _create_integer_fields(self) -> None:
        self.integer_fields = [["TransformResources", "InstanceCount"], ["MaxPayloadInMB"]]


# ----------------------------------------------------------------------------------------------------
# Helpers DAG authors call.


def sagemaker_processing(
    *,
    task_id: str,
    job_base_name: str,
    image: str,
    execution_role_arn: str,
    inputs: Mapping[str, str],
    outputs: Mapping[str, str],
    entrypoint: Sequence[str] | None = None,
    arguments: Sequence[str] | None = None,
    environment: Mapping[str, str] | None = None,
    instance_type: str = "ml.m5.xlarge",
    instance_count: int = 1,
    volume_size_gb: int = 30,
    max_runtime_seconds: int = 3600,
    **operator_kwargs: Any,
) -> ProcessingJobOperator:
    """A processing job named ``eksflow-<env>-<job_base_name>-<hash>`` (``env=`` among the operator keywords, by
    default ``EKSFLOW_ENV``): each of ``inputs`` (name -> ``s3://`` prefix) is downloaded to
    ``/opt/ml/processing/input/<name>``, each of ``outputs`` uploaded from ``/opt/ml/processing/output/<name>`` at the
    end. A retry re-attaches to the job an earlier try started. ``image``: pinned by digest (a tag is refused)."""
    helper = "sagemaker_processing"
    require_non_empty_str(helper, "job_base_name", job_base_name, "churn-features")
    require_pinned_image(helper, "image", image)
    require_non_empty_str(helper, "execution_role_arn", execution_role_arn, "arn:aws:iam::123456789012:role/x")
    _require_arn(helper, "execution_role_arn", execution_role_arn)
    _require_s3_channels(helper, "inputs", inputs, required=True)
    _require_s3_channels(helper, "outputs", outputs, required=False)
    for argument, value in (("entrypoint", entrypoint), ("arguments", arguments)):
        _require_str_list(helper, argument, value)
    _require_environment(helper, environment)
    require_ml_instance_type(helper, "instance_type", instance_type)
    require_positive_int(helper, "instance_count", instance_count)
    require_positive_int(helper, "volume_size_gb", volume_size_gb)
    require_positive_int(helper, "max_runtime_seconds", max_runtime_seconds)
    app: dict[str, Any] = {"ImageUri": image}
    if entrypoint:
        app["ContainerEntrypoint"] = list(entrypoint)
    if arguments:
        app["ContainerArguments"] = list(arguments)
    config: dict[str, Any] = {
        "RoleArn": execution_role_arn,
        "AppSpecification": app,
        "ProcessingInputs": [
            {
                "InputName": name,
                "S3Input": {
                    "S3Uri": uri,
                    "LocalPath": f"/opt/ml/processing/input/{name}",
                    "S3DataType": "S3Prefix",
                    "S3InputMode": "File",
                },
            }
            for name, uri in inputs.items()
        ],
        "ProcessingResources": {
            "ClusterConfig": {
                "InstanceType": instance_type,
                "InstanceCount": instance_count,
                "VolumeSizeInGB": volume_size_gb,
            }
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": max_runtime_seconds},
        "Environment": {str(k): str(v) for k, v in (environment or {}).items()},
    }
    if outputs:
        config["ProcessingOutputConfig"] = {
            "Outputs": [
                {
                    "OutputName": name,
                    "S3Output": {
                        "S3Uri": uri,
                        "LocalPath": f"/opt/ml/processing/output/{name}",
                        "S3UploadMode": "EndOfJob",
                    },
                }
                for name, uri in outputs.items()
            ]
        }
    return ProcessingJobOperator(
        task_id=task_id,
        job_base_name=job_base_name,
        config=config,
        **_wait_kwargs(max_runtime_seconds + 1800, operator_kwargs),
    )


def sagemaker_batch_transform(
    *,
    task_id: str,
    job_base_name: str,
    model_name: str,
    input_s3_uri: str,
    output_s3_uri: str,
    content_type: str = "text/csv",
    split_type: str = "Line",
    accept: str | None = None,
    instance_type: str = "ml.m5.xlarge",
    instance_count: int = 1,
    max_payload_mb: int = 6,
    environment: Mapping[str, str] | None = None,
    max_wait_seconds: int = 6 * 3600,
    **operator_kwargs: Any,
) -> TransformJobOperator:
    """A batch transform job named ``eksflow-<env>-<job_base_name>-<hash>`` (``env=`` among the operator keywords, by
    default ``EKSFLOW_ENV``) running the environment's model ``model_name`` (``eksflow-<env>-...``, e.g. the ``model``
    that ``sagemaker_register_model`` returns) over the objects under ``input_s3_uri`` into ``output_s3_uri``. A retry
    re-attaches to the job an earlier try started."""
    helper = "sagemaker_batch_transform"
    env = require_env(helper, operator_kwargs.get("env"))
    require_non_empty_str(helper, "job_base_name", job_base_name, "churn-scores")
    _require_model_name(helper, model_name, env)
    for argument, value, example in (
        ("input_s3_uri", input_s3_uri, "s3://bucket/to-score/"),
        ("output_s3_uri", output_s3_uri, "s3://bucket/scores/"),
    ):
        require_non_empty_str(helper, argument, value, example)
        _require_s3_uri(helper, argument, value, example)
    require_non_empty_str(helper, "content_type", content_type, "text/csv")
    require_choice(helper, "split_type", split_type, ("None", "Line", "RecordIO", "TFRecord"))
    if accept is not None:
        require_non_empty_str(helper, "accept", accept, "text/csv")
    _require_environment(helper, environment)
    require_ml_instance_type(helper, "instance_type", instance_type)
    require_positive_int(helper, "instance_count", instance_count)
    require_positive_int(helper, "max_payload_mb", max_payload_mb, minimum=0)
    require_positive_int(helper, "max_wait_seconds", max_wait_seconds)
    output: dict[str, Any] = {"S3OutputPath": output_s3_uri, "AssembleWith": "Line" if split_type == "Line" else "None"}
    if accept:
        output["Accept"] = accept
    config: dict[str, Any] = {
        "ModelName": model_name,
        "BatchStrategy": "MultiRecord" if split_type != "None" else "SingleRecord",
        "MaxPayloadInMB": max_payload_mb,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": input_s3_uri}},
            "ContentType": content_type,
            "SplitType": split_type,
        },
        "TransformOutput": output,
        "TransformResources": {"InstanceType": instance_type, "InstanceCount": instance_count},
        "Environment": {str(k): str(v) for k, v in (environment or {}).items()},
    }
    return TransformJobOperator(
        task_id=task_id,
        job_base_name=job_base_name,
        config=config,
        **_wait_kwargs(max_wait_seconds, operator_kwargs),
    )


def _wait_kwargs(max_ingestion_time: int, operator_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    return {
        **aws_operator_kwargs(ROLE),
        "deferrable": deferrable(),
        "check_interval": WAITER_DELAY_SECONDS,
        "max_ingestion_time": max_ingestion_time,
        **operator_kwargs,
    }


def _require_s3_uri(helper: str, argument: str, value: Any, example: str) -> None:
    if isinstance(value, str) and not is_deferred_value(value) and not value.startswith("s3://"):
        raise KitArgumentError(helper, argument, f"is not an s3:// URI: {value!r}", f"pass e.g. {example!r}")


def _require_s3_channels(helper: str, argument: str, value: Any, *, required: bool) -> None:
    example = "{'events': 's3://bucket/curated/events/'}"
    if value is None and not required:
        return
    if not isinstance(value, Mapping) or (required and not value):
        need = "a non-empty" if required else "a"
        raise KitArgumentError(
            helper, argument, f"must be {need} mapping of names to s3:// prefixes, got {value!r}", f"e.g. {example}"
        )
    for name, uri in value.items():
        if not isinstance(name, str) or not _CHANNEL_NAME.fullmatch(name):
            raise KitArgumentError(
                helper,
                argument,
                f"has the name {name!r}: names are letters, digits, '_' and '-' (at most 64)",
                f"e.g. {example}",
            )
        require_non_empty_str(helper, argument, uri, "s3://bucket/curated/events/")
        _require_s3_uri(helper, argument, uri, "s3://bucket/curated/events/")


def _require_str_list(helper: str, argument: str, value: Any) -> None:
    if value is None or is_deferred_value(value):
        return
    if isinstance(value, str) or not isinstance(value, Sequence) or not all(isinstance(v, str) for v in value):
        raise KitArgumentError(
            helper, argument, f"must be a list of strings, got {value!r}", f"e.g. {argument}=['python3', 'run.py']"
        )


def _require_environment(helper: str, value: Any) -> None:
    if value is None:
        return
    if not isinstance(value, Mapping):
        raise KitArgumentError(
            helper,
            "environment",
            f"must be a mapping of variable names to values, got {value!r}",
            "e.g. {'MODE': 'full'}",
        )
    for name in value:
        if not isinstance(name, str) or not _ENV_NAME.fullmatch(name):
            raise KitArgumentError(
                helper,
                "environment",
                f"has the variable name {name!r}",
                "use letters, digits and '_', not starting with a digit, e.g. 'MODE'",
            )


def _require_model_name(helper: str, value: Any, env: str) -> None:
    """A model of ``env`` (named with its prefix ``eksflow-<env>-``): IAM lets the environment's runner transform
    with its own models only (sagemaker:ModelArn)."""
    prefix = sagemaker_name_prefix(env)
    require_non_empty_str(helper, "model_name", value, f"{prefix}churn-model-1a2b3c4d5e")
    if not isinstance(value, str) or is_deferred_value(value):
        return
    if not value.startswith(prefix) or len(value) > SAGEMAKER_NAME_MAX:
        raise KitArgumentError(
            helper,
            "model_name",
            f"must be a model of env {env!r} (from the env= argument or else EKSFLOW_ENV), named with its prefix "
            f"{prefix!r} and at most {SAGEMAKER_NAME_MAX} characters (IAM lets the environment's runner transform with "
            f"its own models only), got {value!r}",
            "pass the 'model' that sagemaker_register_model returns, e.g. model_name=register.output['model']",
        )


__all__ = [
    "ProcessingJobOperator",
    "ReattachingJobOperator",
    "TransformJobOperator",
    "sagemaker_batch_transform",
    "sagemaker_processing",
]
