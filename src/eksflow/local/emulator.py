"""The local AWS emulator: moto in server mode, plus the few behaviours moto lacks that the reference
pipelines need. Run as ``python -m eksflow.local.emulator --port N`` (binds 127.0.0.1 unless ``--host`` says
otherwise, e.g. inside the kind cluster's emulator pod).

Patches (each small, each documented in docs/local-stack.md):
- requests are served one at a time (moto's backends are not thread-safe), behind the control API of
  ``emulator_control`` (job seconds, fault windows, call counts);
- ECS: awsvpc tasks can start (moto 5.2.5's ENI lacks ``private_dns_name``);
- ECS: a task's containers follow the task's status (moto leaves them PENDING, which makes
  EcsRunTaskOperator fail), and a container exits with ``EMULATED_EXIT_CODE`` from its environment
  overrides (default 0), so tests can make a task fail; a task that exits 0 writes a ``_SUCCESS`` object
  under the ``OUTPUT_URI`` of its environment overrides, as the real container writes its output;
- ECS, SageMaker: with job seconds > 0 (``EKSFLOW_EMULATOR_JOB_SECONDS`` or the control API), ECS tasks,
  training jobs and endpoint creates/updates take that long;
- EKS: add-ons and access entries (moto has neither; Terraform's eks module manages both) and a few
  attributes moto drops, see ``emulator_eks``; RDS and EC2 read-back fixes, see ``emulator_infra``
  (together they let ``terraform/envs/dev`` apply and then plan clean);
- IAM enforcement (when switched on): unsigned AssumeRoleWithWebIdentity/SAML as in AWS (the IRSA path),
  resources checked per request, IAM action names and TLS-only bucket policies as AWS evaluates them, see
  ``emulator_iam``;
- SageMaker: ``UpdateEndpoint`` (moto lacks it) moves the endpoint to the new config;
- SageMaker: training jobs report the metrics in ``EKSFLOW_EMULATOR_TRAINING_METRICS`` (JSON object)
  as FinalMetricDataList instead of moto's fixed ``train:progress``; a job with the hyperparameter
  ``eksflow_emulated_failure`` ends Failed with that FailureReason.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from eksflow.local.emulator_control import STATE, middleware
from eksflow.local.emulator_eks import patch_eks
from eksflow.local.emulator_iam import patch_authorization, patch_bucket_policy_conditions
from eksflow.local.emulator_infra import patch_infra

# A training job with this hyperparameter fails with its value as FailureReason (for failure tests).
EMULATED_FAILURE_HYPERPARAMETER = "eksflow_emulated_failure"
DEFAULT_TRAINING_METRICS = {"validation:auc": 0.91, "train:auc": 0.95}
ECS_TASK_TRANSITIONS = 4  # RUNNING -> DEACTIVATING -> STOPPING -> DEPROVISIONING -> STOPPED


def _override_env(task: Any, container_name: str | None = None) -> dict[str, str]:
    """Environment overrides of the task's containers (of one container when a name is given)."""
    env: dict[str, str] = {}
    for override in task.overrides.get("containerOverrides", []) or []:
        if container_name and override.get("name") not in (None, container_name):
            continue
        for item in override.get("environment", []) or []:
            env[item.get("name", "")] = item.get("value", "")
    return env


def _write_output_marker(task: Any) -> None:
    """What the real container would do: leave its output under OUTPUT_URI (here a _SUCCESS marker)."""
    uri = _override_env(task).get("OUTPUT_URI", "")
    if not uri.startswith("s3://"):
        return
    from moto.s3.models import s3_backends

    bucket, _, prefix = uri[len("s3://") :].partition("/")
    backend = s3_backends[task._account_id]["aws"]
    if bucket in backend.buckets:
        key = f"{prefix.rstrip('/')}/_SUCCESS".lstrip("/")
        backend.put_object(bucket, key, f"written by ECS task {task.id}\n".encode())


def _sync_task(task: Any) -> None:
    status = task.last_status  # reading advances moto's state manager
    for container in task.containers:
        if status == "STOPPED":
            container.last_status = "STOPPED"
            container.exitCode = int(_override_env(task, container.name).get("EMULATED_EXIT_CODE", "0"))
        else:
            container.last_status = "RUNNING"
    if status == "STOPPED" and task.desired_status != "STOPPED":
        task.desired_status = "STOPPED"
        if not task.stopped_reason:
            task.stopped_reason = "Essential container in task exited"
        if all(c.exitCode == 0 for c in task.containers):
            _write_output_marker(task)


def patch_ecs() -> None:
    from moto.ec2.models.elastic_network_interfaces import NetworkInterface
    from moto.ecs.models import EC2ContainerServiceBackend

    if not hasattr(NetworkInterface, "private_dns_name"):
        # RunTask with awsvpc networking reads it from the task's ENI; moto 5.2.5 sets it only in VPCs with
        # DNS hostnames enabled (NAT gateways and VPC endpoints set it, so the property needs a setter).
        def get_dns_name(eni):
            return eni.__dict__.get("_dns_name") or f"ip-{eni.private_ip_address.replace('.', '-')}.ec2.internal"

        def set_dns_name(eni, value):
            eni.__dict__["_dns_name"] = value

        NetworkInterface.private_dns_name = property(get_dns_name, set_dns_name)

    original_describe = EC2ContainerServiceBackend.describe_tasks
    original_list = EC2ContainerServiceBackend.list_tasks

    def describe_tasks(self, cluster_str, tasks):
        found = original_describe(self, cluster_str, tasks)
        for task in found:
            _sync_task(task)
        return found

    def list_tasks(self, *args, **kwargs):
        for cluster_tasks in self.tasks.values():
            for task in cluster_tasks.values():
                _sync_task(task)
        return original_list(self, *args, **kwargs)

    EC2ContainerServiceBackend.describe_tasks = describe_tasks
    EC2ContainerServiceBackend.list_tasks = list_tasks


def configure_job_durations(seconds: float) -> None:
    """0: ECS tasks stop as soon as they are described, training jobs and endpoints are ready at once; > 0:
    each takes about that many seconds (also settable at runtime: ``POST /eksflow/job-seconds``)."""
    from moto.moto_api import state_manager

    STATE.job_seconds = seconds

    if seconds <= 0:
        state_manager.set_transition(model_name="ecs::task", transition={"progression": "immediate"})
        return
    state_manager.set_transition(
        model_name="ecs::task", transition={"progression": "time", "seconds": seconds / ECS_TASK_TRANSITIONS}
    )


def patch_sagemaker(training_metrics: dict[str, float]) -> None:
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeEndpoint, FakeTrainingJob, SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    def update_endpoint_backend(self, endpoint_name: str, endpoint_config_name: str) -> FakeEndpoint:
        if endpoint_name not in self.endpoints:
            arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
            raise ValidationError(message=f"Could not find endpoint '{arn}'.")
        try:
            config = self.describe_endpoint_config(endpoint_config_name)
        except KeyError:
            raise ValidationError(message=f"Could not find endpoint configuration '{endpoint_config_name}'.") from None
        endpoint = self.endpoints[endpoint_name]
        endpoint.endpoint_config_name = endpoint_config_name
        endpoint.production_variants = endpoint._process_production_variants(config["ProductionVariants"])
        endpoint.last_modified_time = utcnow()
        endpoint.endpoint_status = "InService"
        return endpoint

    def update_endpoint_response(self):
        endpoint = self.sagemaker_backend.update_endpoint(
            endpoint_name=self._get_param("EndpointName"),
            endpoint_config_name=self._get_param("EndpointConfigName"),
        )
        return ActionResult({"EndpointArn": endpoint.arn})

    SageMakerModelBackend.update_endpoint = update_endpoint_backend
    SageMakerResponse.update_endpoint = update_endpoint_response

    original_init = FakeTrainingJob.__init__

    def training_init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        self.final_metric_data_list = [
            {"MetricName": name, "Value": float(value), "Timestamp": self.creation_time}
            for name, value in sorted(training_metrics.items())
        ]
        failure = (self.hyper_parameters or {}).get(EMULATED_FAILURE_HYPERPARAMETER)
        if failure:
            self.training_job_status = "Failed"
            self.secondary_status = "Failed"
            self.failure_reason = failure

    FakeTrainingJob.__init__ = training_init
    _emulate_sagemaker_durations()


def _emulate_sagemaker_durations() -> None:
    """With job seconds > 0 (emulator_control), training jobs train and endpoints create/update that long."""
    from moto.core.utils import utcnow
    from moto.sagemaker.models import FakeTrainingJob, SageMakerModelBackend

    def due(resource) -> bool:
        return time.monotonic() >= getattr(resource, "_eksflow_done_at", 0.0)

    original_training_init = FakeTrainingJob.__init__

    def training_init(self, *args, **kwargs):
        original_training_init(self, *args, **kwargs)
        if STATE.job_seconds > 0 and self.training_job_status != "Failed":
            self._eksflow_done_at = time.monotonic() + STATE.job_seconds
            self.training_job_status, self.secondary_status = "InProgress", "Training"

    def settle_training(job) -> None:
        if job.training_job_status == "InProgress" and due(job):
            job.training_job_status, job.secondary_status = "Completed", "Completed"
            job.training_end_time = job.last_modified_time = utcnow()

    def settle_endpoint(endpoint) -> None:
        if endpoint.endpoint_status in {"Creating", "Updating"} and due(endpoint):
            endpoint.endpoint_status = "InService"
            endpoint.last_modified_time = utcnow()

    original_describe_training = SageMakerModelBackend.describe_training_job
    original_list_training = SageMakerModelBackend.list_training_jobs
    original_create_endpoint = SageMakerModelBackend.create_endpoint
    original_update_endpoint = SageMakerModelBackend.update_endpoint
    original_describe_endpoint = SageMakerModelBackend.describe_endpoint

    def describe_training_job(self, training_job_name):
        if training_job_name in self.training_jobs:
            settle_training(self.training_jobs[training_job_name])
        return original_describe_training(self, training_job_name)

    def list_training_jobs(self, *args, **kwargs):
        for job in self.training_jobs.values():
            settle_training(job)
        return original_list_training(self, *args, **kwargs)

    def busy(endpoint, status: str):
        if STATE.job_seconds > 0:
            endpoint._eksflow_done_at = time.monotonic() + STATE.job_seconds
            endpoint.endpoint_status = status
        return endpoint

    def create_endpoint(self, *args, **kwargs):
        return busy(original_create_endpoint(self, *args, **kwargs), "Creating")

    def update_endpoint(self, *args, **kwargs):
        return busy(original_update_endpoint(self, *args, **kwargs), "Updating")

    def describe_endpoint(self, endpoint_name):
        if endpoint_name in self.endpoints:
            settle_endpoint(self.endpoints[endpoint_name])
        return original_describe_endpoint(self, endpoint_name)

    FakeTrainingJob.__init__ = training_init
    SageMakerModelBackend.describe_training_job = describe_training_job
    SageMakerModelBackend.list_training_jobs = list_training_jobs
    SageMakerModelBackend.create_endpoint = create_endpoint
    SageMakerModelBackend.update_endpoint = update_endpoint
    SageMakerModelBackend.describe_endpoint = describe_endpoint


def serialize_requests() -> None:
    """One request at a time, behind the control API, fault windows and call counts of ``emulator_control``.
    moto's server is threaded but its backends are not thread-safe; twice in about
    ten Terraform applies/destroys (many calls in parallel) a security group lost a rule (a default egress
    rule right after create, an ingress rule before destroy). Each request takes milliseconds."""
    import threading

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    lock = threading.Lock()
    original = DomainDispatcherApplication.__call__

    def __call__(self, environ, start_response):
        with lock:
            return original(self, environ, start_response)

    DomainDispatcherApplication.__call__ = middleware(__call__, configure_job_durations)


def apply_patches(environ: dict[str, str] | None = None) -> None:
    env = os.environ if environ is None else environ
    serialize_requests()
    patch_ecs()
    patch_eks()
    patch_infra()
    patch_authorization()
    patch_bucket_policy_conditions()
    metrics = json.loads(env.get("EKSFLOW_EMULATOR_TRAINING_METRICS") or json.dumps(DEFAULT_TRAINING_METRICS))
    patch_sagemaker(metrics)
    configure_job_durations(float(env.get("EKSFLOW_EMULATOR_JOB_SECONDS", "0") or 0))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="eksflow local AWS emulator (moto server, patched)")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to bind (default 127.0.0.1; 0.0.0.0 only inside a container)"
    )
    args = parser.parse_args(argv)
    apply_patches()
    from moto.server import main as moto_main

    moto_main(["--host", args.host, "--port", str(args.port)])


if __name__ == "__main__":
    main()
