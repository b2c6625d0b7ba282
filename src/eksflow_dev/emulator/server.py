"""The emulator's process: moto's server with the patches of this package applied (``apply_patches``).
Run as ``python -m eksflow_dev.emulator --port N``; the package docstring lists the patches."""

from __future__ import annotations

import argparse
import json
import os

from eksflow_dev.emulator.control import STATE, middleware
from eksflow_dev.emulator.ecr import patch_ecr
from eksflow_dev.emulator.ecs import ECS_TASK_TRANSITIONS, patch_ecs
from eksflow_dev.emulator.eks import patch_eks
from eksflow_dev.emulator.iam import (
    patch_authorization,
    patch_bucket_policy_context,
    patch_conditions,
    patch_service_principals,
    patch_user_listing,
)
from eksflow_dev.emulator.infra import patch_infra
from eksflow_dev.emulator.sagemaker import DEFAULT_TRAINING_METRICS, patch_sagemaker
from eksflow_dev.emulator.sqs import patch_sqs_long_polling


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


REPLAYED_ANSWERS = 5000  # the last answers kept for retried invocations


def serialize_requests():
    """One request at a time, behind the control API, fault windows and call counts of ``control``.
    moto's server is threaded but its backends are not thread-safe; twice in about
    ten Terraform applies/destroys (many calls in parallel) a security group lost a rule (a default egress
    rule right after create, an ingress rule before destroy). Each request takes milliseconds."""
    import collections
    import threading

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    lock = threading.Lock()
    original = DomainDispatcherApplication.__call__
    answered: collections.OrderedDict[str, tuple] = collections.OrderedDict()

    def __call__(self, environ, start_response):
        # A retry of an invocation already answered (the client gave up waiting while requests queued here) gets
        # that answer again instead of running a second time: a retried CreateRole would fail on what the first
        # attempt created. AWS SDKs send one amz-sdk-invocation-id for every attempt of an operation.
        invocation = environ.get("HTTP_AMZ_SDK_INVOCATION_ID")
        with lock:
            if invocation and invocation in answered:
                status, headers, body = answered[invocation]
                start_response(status, headers)
                return [body]
            captured = {}

            def capture(status, headers, exc_info=None):
                captured.update(status=status, headers=headers)
                return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

            body = b"".join(original(self, environ, capture))
            if invocation and captured["status"].startswith("2"):  # a failure is retried for real
                answered[invocation] = (captured["status"], captured["headers"], body)
                while len(answered) > REPLAYED_ANSWERS:
                    answered.popitem(last=False)
            return [body]

    DomainDispatcherApplication.__call__ = middleware(__call__, configure_job_durations)
    return lock


def apply_patches(environ: dict[str, str] | None = None) -> None:
    env = os.environ if environ is None else environ
    patch_sqs_long_polling(serialize_requests())
    patch_ecs()
    patch_ecr()
    patch_eks()
    patch_infra()
    patch_authorization()
    patch_conditions()
    patch_bucket_policy_context()
    patch_user_listing()
    patch_service_principals()
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
