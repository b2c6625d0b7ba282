"""SageMaker in the local emulator:

- ``UpdateEndpoint`` (moto 5.2.5 lacks it) moves the endpoint to the new config;
- training jobs report the metrics in ``EKSFLOW_EMULATOR_TRAINING_METRICS`` (JSON object) as
  FinalMetricDataList instead of moto's fixed ``train:progress``; a job with the hyperparameter
  ``eksflow_emulated_failure`` (``EMULATED_FAILURE_HYPERPARAMETER``) ends Failed with that FailureReason;
- processing and batch transform jobs: one with ``eksflow_emulated_failure`` in its ``Environment``
  (``EMULATED_FAILURE_ENVIRONMENT``) ends Failed with that FailureReason; processing jobs keep their
  ``Environment`` (moto drops it); ``StopTransformJob`` (moto lacks it) stops a transform job as moto's
  ``StopProcessingJob`` does;
- with job seconds > 0 (``control.STATE``), training, processing and transform jobs run and endpoints
  create/update that long.
"""

from __future__ import annotations

import time

from eksflow_dev.emulator.control import STATE

# A training job with this hyperparameter fails with its value as FailureReason (for failure tests).
EMULATED_FAILURE_HYPERPARAMETER = "eksflow_emulated_failure"
# A processing or transform job with this key in its Environment fails with its value as FailureReason.
EMULATED_FAILURE_ENVIRONMENT = EMULATED_FAILURE_HYPERPARAMETER
DEFAULT_TRAINING_METRICS = {"validation:auc": 0.91, "train:auc": 0.95}


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
    _patch_batch_jobs()
    _emulate_sagemaker_durations()


def _fail_if_asked(job, status_attribute: str, environment) -> None:
    failure = (environment or {}).get(EMULATED_FAILURE_ENVIRONMENT)
    if failure:
        setattr(job, status_attribute, "Failed")
        job.failure_reason = failure


def _patch_batch_jobs() -> None:
    """Processing and transform jobs: emulated failures, the processing job's Environment, StopTransformJob."""
    from moto.core.responses import EmptyResult
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeTransformJob, SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    original_create_processing = SageMakerResponse.create_processing_job

    def create_processing_job(self):
        result = original_create_processing(self)
        job = self.sagemaker_backend.processing_jobs[self._get_param("ProcessingJobName")]
        job.environment = self._get_param("Environment") or {}
        _fail_if_asked(job, "processing_job_status", job.environment)
        return result

    original_transform_init = FakeTransformJob.__init__

    def transform_init(self, *args, **kwargs):
        original_transform_init(self, *args, **kwargs)
        _fail_if_asked(self, "transform_job_status", self.environment)

    def stop_transform_job_backend(self, transform_job_name: str) -> None:
        try:
            self.transform_jobs[transform_job_name].transform_job_status = "Stopped"
        except KeyError:
            arn = FakeTransformJob.arn_formatter(transform_job_name, self.account_id, self.region_name)
            raise ValidationError(message=f"Could not find transform job '{arn}'.") from None

    def stop_transform_job_response(self):
        self.sagemaker_backend.stop_transform_job(self._get_param("TransformJobName"))
        return EmptyResult()

    SageMakerResponse.create_processing_job = create_processing_job
    FakeTransformJob.__init__ = transform_init
    SageMakerModelBackend.stop_transform_job = stop_transform_job_backend
    SageMakerResponse.stop_transform_job = stop_transform_job_response


# Job kinds that run for the job seconds: moto's class, the status attribute, the backend's store, the end time.
_JOB_KINDS = {
    "processing": ("FakeProcessingJob", "processing_job_status", "processing_jobs", "processing_end_time"),
    "transform": ("FakeTransformJob", "transform_job_status", "transform_jobs", "transform_end_time"),
}


def _emulate_job_durations() -> None:
    """With job seconds > 0 (``control``), processing and transform jobs run that long (training: below)."""
    from moto.core.utils import utcnow
    from moto.sagemaker import models

    def patch(kind: str) -> None:
        class_name, status, store, end_time = _JOB_KINDS[kind]
        job_class = getattr(models, class_name)
        original_init = job_class.__init__

        def init(self, *args, **kwargs):
            original_init(self, *args, **kwargs)
            if STATE.job_seconds > 0 and getattr(self, status) != "Failed":
                self._eksflow_done_at = time.monotonic() + STATE.job_seconds
                setattr(self, status, "InProgress")

        def settle(job) -> None:
            if getattr(job, status) == "InProgress" and time.monotonic() >= getattr(job, "_eksflow_done_at", 0.0):
                setattr(job, status, "Completed")
                setattr(job, end_time, utcnow())
                job.last_modified_time = utcnow()

        for method in (f"describe_{kind}_job", f"list_{kind}_jobs"):
            original = getattr(models.SageMakerModelBackend, method)

            def settled(self, *args, _original=original, **kwargs):
                for job in getattr(self, store).values():
                    settle(job)
                return _original(self, *args, **kwargs)

            setattr(models.SageMakerModelBackend, method, settled)
        job_class.__init__ = init

    patch("processing")
    patch("transform")


def _emulate_sagemaker_durations() -> None:
    """With job seconds > 0 (``control``), training jobs train and endpoints create/update that long."""
    from moto.core.utils import utcnow
    from moto.sagemaker.models import FakeTrainingJob, SageMakerModelBackend

    _emulate_job_durations()

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
