"""Stable AWS job names: the same task instance always maps to the same name, so a retry after a lost
worker pod finds the job its earlier try started instead of starting a second one.

Every name starts with its environment's prefix ``eksflow-<env>-`` (``eksflow.platform.sagemaker_name_prefix``):
environments may share an AWS account, and each one's IAM policies reach only names with its own prefix."""

from __future__ import annotations

import hashlib
import re

from eksflow.platform import sagemaker_name_prefix

SAGEMAKER_NAME_MAX = 63
# Room kept at the end of a stable name for the retry generation's suffix (retry_name; the kit tries at most 10),
# so no generation cuts into the hash.
GENERATION_SUFFIX_ROOM = len("-g10")
_NON_NAME = re.compile(r"[^a-zA-Z0-9]+")


def _slug(text: str) -> str:
    return _NON_NAME.sub("-", text).strip("-").lower()


def stable_job_name(base: str, *, env: str, dag_id: str, run_id: str, task_id: str, map_index: int = -1) -> str:
    """``eksflow-<env>-<base>-<hash>``: at most 63 characters with every retry generation's suffix, valid for every
    SageMaker resource name. A ``base`` that already starts with the environment's prefix gets it once.

    The hash covers dag_id, run_id, task_id and map_index (the task instance key without try number).
    """
    prefix = sagemaker_name_prefix(env)
    digest = hashlib.sha256("\x1f".join((dag_id, run_id, task_id, str(map_index))).encode()).hexdigest()[:10]
    head = _slug(base).removeprefix(prefix)
    room = SAGEMAKER_NAME_MAX - GENERATION_SUFFIX_ROOM - len(prefix) - len(digest) - 1
    head = head[:room].rstrip("-") or "job"
    return f"{prefix}{head}-{digest}"


def retry_name(name: str, generation: int) -> str:
    """Name for the n-th job after earlier ones *failed* (generation 1 is the stable name itself)."""
    if generation == 1:
        return name
    suffix = f"-g{generation}"
    return f"{name[: SAGEMAKER_NAME_MAX - len(suffix)]}{suffix}"


def name_from_context(base: str, context, *, env: str) -> str:
    ti = context["ti"]
    return stable_job_name(
        base, env=env, dag_id=ti.dag_id, run_id=ti.run_id, task_id=ti.task_id, map_index=getattr(ti, "map_index", -1)
    )
