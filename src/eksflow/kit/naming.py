"""Stable AWS job names: the same task instance always maps to the same name, so a retry after a lost
worker pod finds the job its earlier try started instead of starting a second one."""

from __future__ import annotations

import hashlib
import re

from eksflow.platform import SAGEMAKER_NAME_PREFIX

SAGEMAKER_NAME_MAX = 63
_NON_NAME = re.compile(r"[^a-zA-Z0-9]+")


def _slug(text: str) -> str:
    return _NON_NAME.sub("-", text).strip("-").lower()


def stable_job_name(base: str, *, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
    """``eksflow-<base>-<hash>``: at most 63 characters, valid for every SageMaker resource name.

    The hash covers dag_id, run_id, task_id and map_index (the task instance key without try number).
    """
    digest = hashlib.sha256("\x1f".join((dag_id, run_id, task_id, str(map_index))).encode()).hexdigest()[:10]
    head = _slug(base)
    room = SAGEMAKER_NAME_MAX - len(SAGEMAKER_NAME_PREFIX) - len(digest) - 1
    head = head[:room].rstrip("-") or "job"
    return f"{SAGEMAKER_NAME_PREFIX}{head}-{digest}"


def retry_name(name: str, generation: int) -> str:
    """Name for the n-th job after earlier ones *failed* (generation 1 is the stable name itself)."""
    if generation == 1:
        return name
    suffix = f"-g{generation}"
    return f"{name[: SAGEMAKER_NAME_MAX - len(suffix)]}{suffix}"


def name_from_context(base: str, context) -> str:
    ti = context["ti"]
    return stable_job_name(
        base, dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, map_index=getattr(ti, "map_index", -1)
    )
