"""The request context of one authorization check: the condition keys AWS would put in it, for the keys the
platform's policies use (terraform/modules/irsa, terraform/modules/data), computed from the request (moto's
``BaseResponse``) and moto's backends. ``request_context(response, action, resource)``; a key not computed here is
absent from the request, as AWS leaves out a key that does not apply.

- ``aws:SecureTransport``: ``true`` — the emulator stands in for AWS's HTTPS endpoints.
- ``aws:ResourceTag/<key>``: the tags of the resource checked — EC2 instances (moto's EC2 tags), SageMaker endpoints,
  endpoint configs, models, training, processing and transform jobs (their tags in moto's SageMaker backend), ECS
  task-definition revisions (``task-definition/<family>:<revision>``, their tags in moto's ECS backend: RunTask's
  check on the revision it runs). A resource that does not exist yet (a create) has none.
- ``aws:RequestTag/<key>``, ``aws:TagKeys``: the ``Tags`` a SageMaker request sets (AddTags, a Create* with Tags), the
  ``tags`` of ECS RegisterTaskDefinition.
- ``sagemaker:TaggingAction``: on the ``sagemaker:AddTags`` check of a create with Tags, the create's action name
  (``CreateEndpoint``); a plain AddTags call has none.
- ``sagemaker:ModelArn``: on CreateTransformJob, the ARN of the model it runs (AWS authorizes the action on the
  transform job only).
- ``iam:PassedToService``: on the implicit ``iam:PassRole`` check, the service the role goes to (RunTask,
  RegisterTaskDefinition: ``ecs-tasks.amazonaws.com``; CreateTrainingJob/CreateProcessingJob/CreateModel:
  ``sagemaker.amazonaws.com``).
- ``ecs:cluster``: on ECS RunTask, ListTasks, DescribeTasks, StopTask, the ARN of the request's ``cluster``
  (``default`` when it names none).
- ``aws:RequestTag/<key>``, ``aws:TagKeys`` of the ``tags`` an ECS RegisterTaskDefinition sets (its own check and its
  tag-on-create ``ecs:TagResource`` check, which also has ``ecs:CreateAction`` = ``RegisterTaskDefinition``).
- ``s3:prefix``: on S3 ListObjects/ListObjectsV2 (``s3:ListBucket``) and ListObjectVersions, the ``prefix``
  parameter when the request has one.
- ``aws:RequestTag/<key>``, ``aws:TagKeys`` also for the ``Tags`` of KMS CreateKey/TagResource.
- ``iam:PolicyARN``: on IAM Attach/DetachRolePolicy (and the user/group forms), the policy attached.
"""

from __future__ import annotations

import json

from eksflow_dev.emulator.conditions import ContextValue, request_tags, resource_tags

PASSED_TO_SERVICE = {
    ("ecs", "RunTask"): "ecs-tasks.amazonaws.com",
    ("ecs", "RegisterTaskDefinition"): "ecs-tasks.amazonaws.com",
    ("sagemaker", "CreateTrainingJob"): "sagemaker.amazonaws.com",
    ("sagemaker", "CreateProcessingJob"): "sagemaker.amazonaws.com",
    ("sagemaker", "CreateModel"): "sagemaker.amazonaws.com",
}
_ECS_CLUSTER_ACTIONS = frozenset({"RunTask", "ListTasks", "DescribeTasks", "StopTask"})
_S3_PREFIX_ACTIONS = frozenset({"s3:ListBucket", "s3:ListBucketVersions"})
# SageMaker resource types of ARNs -> moto's SageMaker backend's store of them.
_SAGEMAKER_STORES = {
    "endpoint": "endpoints",
    "endpoint-config": "endpoint_configs",
    "model": "_models",
    "training-job": "training_jobs",
    "processing-job": "processing_jobs",
    "transform-job": "transform_jobs",
}


def json_body(response) -> dict:
    """The JSON object a request carries ({} for other protocols or none)."""
    try:
        body = json.loads(response.body or "{}")
    except (TypeError, ValueError):
        return {}
    return body if isinstance(body, dict) else {}


def _ec2_tags(account: str, region: str, resource: str) -> dict[str, str]:
    from moto.ec2.models import ec2_backends

    kind, _, instance_id = resource.partition("/")
    if kind != "instance":
        return {}
    return dict(ec2_backends[account][region].tags.get(instance_id, {}))  # .get: the store is a defaultdict


def _sagemaker_tags(account: str, region: str, resource: str) -> dict[str, str]:
    from moto.sagemaker.models import sagemaker_backends

    kind, _, name = resource.partition("/")
    if kind not in _SAGEMAKER_STORES:
        return {}
    store = getattr(sagemaker_backends[account][region], _SAGEMAKER_STORES[kind])
    # ARNs carry the name in lower case (as AWS's); moto keys its stores by the name as created.
    found = next((item for key, item in store.items() if key.lower() == name.lower()), None)
    return {tag["Key"]: tag["Value"] for tag in getattr(found, "tags", None) or []}


def _ecs_tags(account: str, region: str, resource: str) -> dict[str, str]:
    from moto.ecs.models import ecs_backends

    kind, _, revision = resource.partition("/")
    family, _, number = revision.rpartition(":")
    if kind != "task-definition" or not number.isdigit():
        return {}
    found = ecs_backends[account][region].task_definitions.get(family, {}).get(int(number))
    return {tag["key"]: tag["value"] for tag in getattr(found, "tags", None) or []}


_TAGS_BY_SERVICE = {"ec2": _ec2_tags, "sagemaker": _sagemaker_tags, "ecs": _ecs_tags}


def tags_of(resource: str) -> dict[str, str]:
    """The tags of the resource an ARN names, for the resource types above; {} otherwise or when it does not exist."""
    parts = resource.split(":", 5)
    if len(parts) != 6 or parts[2] not in _TAGS_BY_SERVICE:
        return {}
    _, _, service, region, account, rest = parts
    try:
        return _TAGS_BY_SERVICE[service](account, region, rest)
    except KeyError:  # an account or Region moto has no backend for
        return {}


def _sagemaker_keys(response, operation: str, action: str) -> dict[str, ContextValue]:
    tags = json_body(response).get("Tags")
    keys: dict[str, ContextValue] = {}
    if isinstance(tags, list) and action.startswith("sagemaker:"):
        keys.update(request_tags({t["Key"]: t.get("Value", "") for t in tags if isinstance(t, dict) and "Key" in t}))
    if action == "sagemaker:AddTags" and operation != "AddTags":
        keys["sagemaker:TaggingAction"] = operation
    model = json_body(response).get("ModelName")
    if action == "sagemaker:CreateTransformJob" and isinstance(model, str):
        keys["sagemaker:ModelArn"] = (
            f"arn:aws:sagemaker:{response.region}:{response.current_account}:model/{model.lower()}"
        )
    return keys


def _ecs_keys(response, operation: str, action: str) -> dict[str, ContextValue]:
    if not action.startswith("ecs:"):
        return {}
    if operation == "RegisterTaskDefinition":
        tags = json_body(response).get("tags")
        keys: dict[str, ContextValue] = {}
        if isinstance(tags, list):
            pairs = {t["key"]: t.get("value", "") for t in tags if isinstance(t, dict) and "key" in t}
            keys.update(request_tags(pairs))
        if action == "ecs:TagResource":  # the tag-on-create check
            keys["ecs:CreateAction"] = operation
        return keys
    if operation not in _ECS_CLUSTER_ACTIONS:
        return {}
    cluster = json_body(response).get("cluster") or "default"
    if not cluster.startswith("arn:"):
        cluster = f"arn:aws:ecs:{response.region}:{response.current_account}:cluster/{cluster}"
    return {"ecs:cluster": cluster}


def _s3_keys(response, operation: str, action: str) -> dict[str, ContextValue]:
    prefix = (getattr(response, "querystring", None) or {}).get("prefix")
    if action not in _S3_PREFIX_ACTIONS or prefix is None:
        return {}
    return {"s3:prefix": prefix[0] if isinstance(prefix, list) else prefix}


def _kms_keys(response, operation: str, action: str) -> dict[str, ContextValue]:
    tags = json_body(response).get("Tags")
    if operation not in {"CreateKey", "TagResource"} or not isinstance(tags, list):
        return {}
    return request_tags({t["TagKey"]: t.get("TagValue", "") for t in tags if isinstance(t, dict) and "TagKey" in t})


_POLICY_ATTACHMENTS = frozenset(
    {"AttachRolePolicy", "DetachRolePolicy", "AttachUserPolicy", "DetachUserPolicy", "AttachGroupPolicy"}
)


def _iam_keys(response, operation: str, action: str) -> dict[str, ContextValue]:
    policy = response._get_param("PolicyArn") if operation in _POLICY_ATTACHMENTS else None
    return {"iam:PolicyARN": policy} if policy else {}


_KEYS_BY_SERVICE = {"sagemaker": _sagemaker_keys, "ecs": _ecs_keys, "s3": _s3_keys, "kms": _kms_keys, "iam": _iam_keys}


def request_context(response, action: str, resource: str) -> dict[str, ContextValue]:
    """The condition keys of checking ``action`` (``service:Name``) on ``resource`` for this request."""
    service, operation = getattr(response, "service_name", ""), response._get_action()
    context: dict[str, ContextValue] = {"aws:SecureTransport": "true", **resource_tags(tags_of(resource))}
    if service in _KEYS_BY_SERVICE:
        context.update(_KEYS_BY_SERVICE[service](response, operation, action))
    if action == "iam:PassRole" and (service, operation) in PASSED_TO_SERVICE:
        context["iam:PassedToService"] = PASSED_TO_SERVICE[(service, operation)]
    return context
