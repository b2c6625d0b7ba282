"""Definition-time argument checking for the DAG kit: every error names the argument and the fix."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any


class KitArgumentError(ValueError):
    """A kit helper was called with a bad argument; raised while the DAG file is parsed."""

    def __init__(self, helper: str, argument: str, problem: str, fix: str):
        self.helper = helper
        self.argument = argument
        super().__init__(f"{helper}(): argument '{argument}' {problem}; {fix}")


def is_deferred_value(value: Any) -> bool:
    """True for values only known at run time (XComArg, mapped args, Jinja templates)."""
    if isinstance(value, str):
        return "{{" in value
    return type(value).__module__.startswith("airflow.")


def require_non_empty_str(helper: str, argument: str, value: Any, example: str) -> None:
    if is_deferred_value(value):
        return
    if not isinstance(value, str) or not value.strip():
        raise KitArgumentError(helper, argument, f"must be a non-empty string, got {value!r}", f"e.g. {example!r}")


def require_positive_int(helper: str, argument: str, value: Any, *, minimum: int = 1) -> None:
    if is_deferred_value(value):
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise KitArgumentError(
            helper,
            argument,
            f"must be an integer >= {minimum}, got {value!r}",
            f"pass a whole number >= {minimum}",
        )


# What Jinja renders a boolean to, and its lower-case spelling: the only strings a boolean switch accepts.
BOOLEAN_STRINGS = frozenset({"True", "False", "true", "false"})


def require_bool(helper: str, argument: str, value: Any) -> None:
    if is_deferred_value(value):
        return
    if not isinstance(value, bool) and value not in BOOLEAN_STRINGS:
        raise KitArgumentError(
            helper,
            argument,
            f"must be True or False (or a template), got {value!r}",
            f"e.g. {argument}=True, or {argument}='{{{{ params.{argument} }}}}' with a boolean Param",
        )


def require_choice(helper: str, argument: str, value: Any, choices: Iterable[str]) -> None:
    choices = tuple(choices)
    if value not in choices:
        raise KitArgumentError(helper, argument, f"is {value!r}", f"use one of {', '.join(choices)}")


# SageMaker ML instance types look like ml.m5.xlarge / ml.g5.12xlarge; EC2 ones like m5.large / t3a.nano.
_ML_INSTANCE_RE = re.compile(r"^ml\.[a-z][a-z0-9-]*\.(?:[0-9]*x?large|medium|small|micro|nano|metal)$")
_EC2_INSTANCE_RE = re.compile(r"^[a-z][a-z0-9-]*\.(?:[0-9]*x?large|medium|small|micro|nano|metal(?:-[0-9]+xl)?)$")


def require_ml_instance_type(helper: str, argument: str, value: Any) -> None:
    if is_deferred_value(value):
        return
    if not isinstance(value, str) or not _ML_INSTANCE_RE.fullmatch(value):
        raise KitArgumentError(
            helper,
            argument,
            f"is not a SageMaker instance type: {value!r}",
            "use the form ml.<family>.<size>, e.g. 'ml.m5.xlarge'",
        )


def require_ec2_instance_type(helper: str, argument: str, value: Any) -> None:
    if not isinstance(value, str) or not _EC2_INSTANCE_RE.fullmatch(value):
        raise KitArgumentError(
            helper,
            argument,
            f"is not an EC2 instance type: {value!r}",
            "use the form <family>.<size>, e.g. 'm5.large'",
        )


def require_env(helper: str, env: Any) -> str:
    """The environment a step acts for: ``env``, or when None the deployment's (``EKSFLOW_ENV``, as the DAGs'
    settings read it). Housekeeping touches only what this environment manages; endpoints are tagged with it."""
    from eksflow.platform import validate_env
    from eksflow.settings import ENV_PREFIX, load_settings

    if env is None:
        return load_settings().env
    fix = f"e.g. env='dev', or leave it unset to use {ENV_PREFIX}ENV"
    if not isinstance(env, str):
        raise KitArgumentError(helper, "env", f"must be an environment name, got {env!r}", fix)
    try:
        return validate_env(env)
    except ValueError as error:
        raise KitArgumentError(helper, "env", f"is invalid ({error})", fix) from None


PIN_FIX = (
    "pin it by digest, '<registry>/<repository>@sha256:<64 hex>': the image `eksflow job release` printed, or the "
    "job's released image at run time, released_image(task_id=..., job='<job>').output"
)


def pinned_image_problem(value: Any) -> str | None:
    """Why ``value`` is no image pinned by digest (None when it is one): a tag names whatever was pushed under it
    last, and ``:latest`` or no tag at all is refused by the job repositories' immutable tags anyway."""
    from eksflow.releases import pinned_image

    if pinned_image(value) is not None:
        return None
    if not isinstance(value, str) or not value.strip():
        return f"must be an image pinned by digest, got {value!r}"
    if "@" in value:
        return f"is not '<registry>/<repository>@sha256:<64 hex>': {value!r}"
    tag = value.rsplit("/", 1)[-1].partition(":")[2] or "latest"
    return f"names the image by its tag {tag!r}, not by digest: {value!r}"


def require_pinned_image(helper: str, argument: str, value: Any) -> None:
    """An image pinned by digest, or a template/XComArg (checked again once rendered: ``check_rendered_image``)."""
    if is_deferred_value(value):
        return
    problem = pinned_image_problem(value)
    if problem:
        raise KitArgumentError(helper, argument, problem, PIN_FIX)


def check_rendered_image(helper: str, argument: str, value: Any) -> None:
    """At run time: a templated image must have rendered to one pinned by digest (AirflowException otherwise)."""
    problem = pinned_image_problem(value)
    if problem:
        from airflow.providers.common.compat.sdk import AirflowException

        raise AirflowException(f"{helper}(): argument '{argument}' {problem} (as rendered); {PIN_FIX}")
