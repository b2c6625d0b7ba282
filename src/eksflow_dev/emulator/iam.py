"""IAM enforcement in the local emulator, the IRSA path: a pod's token is exchanged for its role's session with
AssumeRoleWithWebIdentity, then every call is checked against that role's policies, Conditions included.

Enforcement itself is moto's (``POST /moto-api/reset-auth`` with body ``0``; ``inf`` turns it off). The gaps
of moto 5.2.5 are closed here:

- AWS accepts AssumeRoleWithWebIdentity and AssumeRoleWithSAML unsigned (the token is the credential); moto
  demands a signature on them and fails. Exactly those two STS actions are exempted. moto then let any token
  assume any role: under enforcement, AssumeRoleWithWebIdentity is held to the role's trust policy as STS
  does (``trust.check_web_identity_trust``: OIDC provider, ``sub``/``aud`` conditions), with the token's
  claims decoded but its signature NOT verified (AWS verifies it against the provider's JWKS).
- moto checks every non-S3 call against the resource ``*``, so a statement scoped to resources never matches and
  least-privilege policies deny everything. For the actions the platform's policies scope, the request's resource
  ARNs are computed here (``request_resources``) and each is checked, as AWS does (Secrets Manager: the secret's ARN
  from its name; CreateTransformJob: the transform job, not its model; IAM: the role, user, OIDC provider or policy
  named; ECR: the repository; EKS: the cluster, or the node group, add-on or access entry a call is on; ECS: the
  cluster, task or tagged resource a call names (RegisterTaskDefinition has no resource type); SQS: the
  queue its URL or name names, a batch call as its single-message action; CloudWatch Logs: the log stream a
  stream's call names, the log group of a group's); the implicit ``iam:PassRole`` checks of
  RunTask, RegisterTaskDefinition, CreateTrainingJob, CreateProcessingJob and CreateModel are added, and the
  tag-on-create checks: ``sagemaker:AddTags`` of a SageMaker create with Tags, ``ecs:TagResource`` of a
  RegisterTaskDefinition with tags (on the new revision). Every check must pass before the call runs
  (StopInstances of several instances: all or none). A denial names the action and the resource, like AWS's message.
  S3 HeadBucket is authorized as ``s3:ListBucket``, as in AWS (moto asked for a non-existent ``s3:HeadBucket``), and
  CloudWatch calls as ``cloudwatch:*`` (moto used the signing name, ``monitoring:*``). Each check is logged for
  ``GET /eksflow/authorizations`` (``control``).
- moto checked a request's signature over its parsed parameters when the body was empty — for a REST GET
  without query string, the request's headers — so every such EKS call (DescribeCluster, ListClusters) failed
  ``SignatureDoesNotMatch`` under enforcement; the payload checked is now what the client signed
  (``_signed_payload``). Refusals of JSON and REST-JSON services answer JSON.
- moto evaluated no Conditions of identity policies (no request context; only StringEquals known; a failed
  condition counted as an explicit deny). Each check now carries the request context AWS would build for it
  (``condition_keys.request_context``: resource and request tags, ``sagemaker:TaggingAction``,
  ``sagemaker:ModelArn``, ``iam:PassedToService``, ``ecs:cluster``, ``s3:prefix``, ``aws:SecureTransport``), and
  every statement's Conditions are evaluated by ``conditions`` with AWS's operator semantics
  (``patch_conditions``): a statement whose Conditions do not hold does not apply; one the evaluator cannot read
  fails closed (an Allow does not apply, a Deny does) and is logged.

Trust policies of sts:AssumeRole: moto checks them, but a trust naming only an AWS service (``Principal: {"Service":
...}``) made its principal check fail with a TypeError (500); such a trust admits no IAM principal
(``patch_service_principals``).

Bucket policies: moto never supplies ``aws:SecureTransport``, so a TLS-only policy (Deny when
``aws:SecureTransport`` is false, as every bucket of the platform has) denied every object call. The emulator
stands in for AWS's HTTPS endpoints: bucket policies see ``aws:SecureTransport = true``
(``patch_bucket_policy_context``).

Not evaluated: condition keys the platform's policies do not use (``condition_keys`` lists those computed; any
other is absent from the request), and the web identity token's signature, expiry or audience against the
provider's client IDs (only the trust policy's own conditions).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextvars import ContextVar
from urllib.parse import unquote, urlparse

from eksflow_dev.emulator import audit
from eksflow_dev.emulator.condition_keys import json_body, request_context
from eksflow_dev.emulator.conditions import conditions_apply
from eksflow_dev.emulator.control import record_authorization
from eksflow_dev.emulator.trust import check_web_identity_trust

UNSIGNED_STS_ACTIONS = frozenset({"AssumeRoleWithWebIdentity", "AssumeRoleWithSAML"})

# SageMaker request parameters that name a resource, and the resource type in its ARN.
_SAGEMAKER_NAMES = {
    "TrainingJobName": "training-job",
    "ProcessingJobName": "processing-job",
    "TransformJobName": "transform-job",
    "ModelName": "model",
    "EndpointConfigName": "endpoint-config",
    "EndpointName": "endpoint",
}
# Parameters naming a resource that AWS does not authorize the action on: CreateTransformJob is authorized on the
# transform job only, its model is the condition key sagemaker:ModelArn (condition_keys).
_SAGEMAKER_NOT_AUTHORIZED_ON = {"CreateTransformJob": frozenset({"ModelName"})}
_SAGEMAKER_ROLE_PARAMS = {
    "CreateTrainingJob": "RoleArn",
    "CreateProcessingJob": "RoleArn",
    "CreateModel": "ExecutionRoleArn",
}
_EC2_INSTANCE_ACTIONS = frozenset({"StopInstances", "TerminateInstances", "StartInstances", "RebootInstances"})
_INVOKE_PATH = re.compile(r"^/endpoints/(?P<name>[^/]+)/invocations")
SIGNING_NAME_TO_IAM_PREFIX = {"monitoring": "cloudwatch"}  # CloudWatch signs as "monitoring"
PASS_ROLE = "iam:PassRole"  # noqa: S105 - an IAM action, not a password
ADD_TAGS = "sagemaker:AddTags"
ECS_TAG_RESOURCE = "ecs:TagResource"
# ECS calls on one cluster -> the parameter naming it (DescribeClusters: its ``clusters`` list).
_ECS_CLUSTER_CALLS = {
    "DescribeClusters": "cluster",
    "CreateCluster": "clusterName",
    "DeleteCluster": "cluster",
    "UpdateCluster": "cluster",
    "UpdateClusterSettings": "cluster",
    "PutClusterCapacityProviders": "cluster",
}
# SQS batch calls are authorized as their single-message action.
_SQS_BATCH_ACTIONS = {
    "SendMessageBatch": "sqs:SendMessage",
    "DeleteMessageBatch": "sqs:DeleteMessage",
    "ChangeMessageVisibilityBatch": "sqs:ChangeMessageVisibility",
}
# The request context of the identity-policy check under way: moto's check_action_permitted hands its statements
# none (requests are served one at a time, server.serialize_requests).
_CHECK_CONTEXT: ContextVar[dict | None] = ContextVar("eksflow_iam_check_context", default=None)
# The principal, action and resource of the last denial in this request (read by the audit mode).
_DENIAL: ContextVar[tuple[str, str, str]] = ContextVar("eksflow_iam_denial", default=("", "", ""))


def _ecs_resources(response, action: str, arn: str) -> Iterator[tuple[str | None, str]]:
    params = json_body(response)
    if action == "RunTask":
        from moto.ecs.models import ecs_backends

        try:
            definition = ecs_backends[response.current_account][response.region].describe_task_definition(
                params.get("taskDefinition", "")
            )
        except Exception:  # unknown definition: moto answers its not-found error after this check
            return
        yield None, definition.arn
        overrides = params.get("overrides") or {}
        for role in {  # moto sets these attributes only when the definition has the roles
            overrides.get("taskRoleArn") or getattr(definition, "task_role_arn", None),
            overrides.get("executionRoleArn") or getattr(definition, "execution_role_arn", None),
        } - {None, ""}:
            yield PASS_ROLE, role
    elif action in {"DescribeTasks", "StopTask"}:
        cluster = (params.get("cluster") or "default").rsplit("/", 1)[-1]
        for task in params.get("tasks") or [params.get("task", "")]:
            yield None, task if task.startswith("arn:") else f"{arn}:task/{cluster}/{task}"
    elif action in {"TagResource", "UntagResource", "ListTagsForResource"}:
        yield None, params.get("resourceArn", "*")
    elif action in _ECS_CLUSTER_CALLS:
        names = params.get("clusters") or [params.get(_ECS_CLUSTER_CALLS[action]) or "default"]
        yield from ((None, name if name.startswith("arn:") else f"{arn}:cluster/{name}") for name in names)
    elif action == "RegisterTaskDefinition":
        yield from _register_task_definition_checks(response, params, arn)


def _register_task_definition_checks(response, params: dict, arn: str) -> Iterator[tuple[str | None, str]]:
    """RegisterTaskDefinition has no resource type (``*``); the roles the definition names are passed to ECS
    (``iam:PassRole``), and tags given with it are authorized as ``ecs:TagResource`` on the new revision (tag on
    create, ``ecs:CreateAction``), as on AWS."""
    from moto.ecs.models import ecs_backends

    yield None, "*"
    for role in {params.get("taskRoleArn"), params.get("executionRoleArn")} - {None, ""}:
        yield PASS_ROLE, role
    family = params.get("family")
    if params.get("tags") and isinstance(family, str):
        backend = ecs_backends[response.current_account][response.region]
        revision = max(backend.task_definitions.get(family, {}) or [0]) + 1
        yield ECS_TAG_RESOURCE, f"{arn}:task-definition/{family}:{revision}"


def _sagemaker_resources(response, action: str, arn: str) -> Iterator[tuple[str | None, str]]:
    params = json_body(response)
    if action in {"AddTags", "ListTags", "DeleteTags"}:
        yield None, params.get("ResourceArn", "*")
        return
    if action.startswith(("List", "Search")):
        return
    for param, kind in _SAGEMAKER_NAMES.items():
        if isinstance(params.get(param), str) and param not in _SAGEMAKER_NOT_AUTHORIZED_ON.get(action, ()):
            yield None, f"{arn}:{kind}/{params[param].lower()}"
            # A create that tags what it creates also needs sagemaker:AddTags on it, as on AWS.
            if action == f"Create{param.removesuffix('Name')}" and params.get("Tags"):
                yield ADD_TAGS, f"{arn}:{kind}/{params[param].lower()}"
    if action in _SAGEMAKER_ROLE_PARAMS and params.get(_SAGEMAKER_ROLE_PARAMS[action]):
        yield PASS_ROLE, params[_SAGEMAKER_ROLE_PARAMS[action]]


def _ec2_resources(response, action: str, arn: str) -> Iterator[tuple[str | None, str]]:
    if action in _EC2_INSTANCE_ACTIONS:
        for key, values in response.querystring.items():
            if key.startswith("InstanceId."):
                yield from ((None, f"{arn}:instance/{value}") for value in values)


def _logs_resources(response, action: str, arn: str) -> Iterator[tuple[str | None, str]]:
    params = json_body(response)
    group = params.get("logGroupName")
    if action in {"GetLogEvents", "CreateLogStream", "PutLogEvents"} and group:
        yield None, f"{arn}:log-group:{group}:log-stream:{params.get('logStreamName', '')}"
    elif action == "DescribeLogStreams" and group:
        yield None, f"{arn}:log-group:{group}:*"
    elif action in {"CreateLogGroup", "DeleteLogGroup", "PutRetentionPolicy"} and group:
        yield None, f"{arn}:log-group:{group}"


def _secretsmanager_resources(response, action: str, arn: str) -> Iterator[tuple[str | None, str]]:
    params = json_body(response)
    secret_id = params.get("SecretId") or (params.get("Name") if action == "CreateSecret" else None)
    if not isinstance(secret_id, str):
        return  # ListSecrets and the like: moto's "*"
    if secret_id.startswith("arn:"):
        yield None, secret_id
        return
    from moto.secretsmanager.models import secretsmanager_backends

    secrets = secretsmanager_backends[response.current_account][response.region].secrets
    # A name resolves to the secret's ARN (AWS appends 6 random characters); an unknown one is checked by its name.
    yield None, secrets[secret_id].arn if secret_id in secrets else f"{arn}:secret:{secret_id}"


def _sns_resources(response, action: str, arn: str) -> Iterator[tuple[str | None, str]]:
    # Query protocol: the form's parameters. A topic's ARN, or the one CreateTopic would make; ListTopics: "*".
    params = {key: values[0] for key, values in response.querystring.items() if values}
    topic = params.get("TopicArn") or params.get("TargetArn")
    if topic:
        yield None, topic
    elif action == "CreateTopic" and params.get("Name"):
        yield None, f"{arn}:{params['Name']}"


def _sqs_resources(response, action: str, arn: str) -> Iterator[tuple[str | None, str]]:
    """The queue a call names: its URL (``…/<account>/<name>``) or, for CreateQueue and GetQueueUrl, its name;
    ListQueues: moto's ``*``. JSON protocol (boto3's) or the query protocol's form."""
    params = json_body(response) or {key: values[0] for key, values in response.querystring.items() if values}
    url, name = params.get("QueueUrl"), params.get("QueueName")
    if isinstance(url, str) and url.rstrip("/").count("/") >= 2:
        account, name = url.rstrip("/").rsplit("/", 2)[1:]
        yield _SQS_BATCH_ACTIONS.get(action), f"arn:aws:sqs:{response.region}:{account}:{name}"
    elif isinstance(name, str) and action in {"CreateQueue", "GetQueueUrl"}:
        account = params.get("QueueOwnerAWSAccountId") or response.current_account
        yield None, f"arn:aws:sqs:{response.region}:{account}:{name}"


def _iam_resources(response, action: str, arn: str) -> Iterator[tuple[str | None, str]]:
    """IAM ARNs have no Region (``arn:aws:iam::<account>:...``); the resource is what the call names first: a role,
    a user, an OIDC provider (by ARN, or by its URL when created), a policy."""
    account_arn = f"arn:aws:iam::{response.current_account}"
    role, user = response._get_param("RoleName"), response._get_param("UserName")
    provider, policy = response._get_param("OpenIDConnectProviderArn"), response._get_param("PolicyArn")
    if role:
        from moto.iam.models import iam_backends

        backend = iam_backends[response.current_account][response.partition]
        found = next((r for r in backend.get_roles() if r.name == role), None)
        yield None, found.arn if found else f"{account_arn}:role/{role}"
    elif user:
        yield None, f"{account_arn}:user/{user}"
    elif provider:
        yield None, provider
    elif action == "CreateOpenIDConnectProvider" and response._get_param("Url"):
        yield None, f"{account_arn}:oidc-provider/{response._get_param('Url').removeprefix('https://')}"
    elif policy:
        yield None, policy


def _ecr_resources(response, action: str, arn: str) -> Iterator[tuple[str | None, str]]:
    params = json_body(response)
    if isinstance(params.get("resourceArn"), str):  # ListTagsForResource, TagResource, UntagResource
        yield None, params["resourceArn"]
        return
    names = params.get("repositoryNames") or [params.get("repositoryName")]
    yield from ((None, f"{arn}:repository/{name}") for name in names if isinstance(name, str))


def _eks_resources(response, action: str, arn: str) -> Iterator[tuple[str | None, str]]:
    """A cluster's own calls and the creates/lists of its node groups, add-ons and access entries are authorized on
    the cluster's ARN; a call on one of those on its own ARN (which carries an ID: looked up, or ``unknown`` when it
    does not exist); ListClusters on moto's ``*``."""
    segments = urlparse(response.uri).path.strip("/").split("/")  # the raw path: principal ARNs stay encoded
    if segments[0] != "clusters" or len(segments) < 2:
        return
    cluster = unquote(segments[1])
    if len(segments) < 4 or segments[2] not in _EKS_PARTS:
        yield None, f"{arn}:cluster/{cluster}"
        return
    yield None, _EKS_PARTS[segments[2]](response, arn, cluster, unquote(segments[3]))


def _nodegroup_arn(response, arn: str, cluster: str, name: str) -> str:
    from moto.eks.models import eks_backends

    found = eks_backends[response.current_account][response.region].clusters.get(cluster)
    nodegroup = found.nodegroups.get(name) if found else None
    return nodegroup.arn if nodegroup else f"{arn}:nodegroup/{cluster}/{name}/unknown"


def _eks_object_arn(store: str, field: str, kind: str):
    def lookup(response, arn: str, cluster: str, name: str) -> str:
        from moto.eks.models import eks_backends

        from eksflow_dev.emulator.eks import emulated_objects

        backend = eks_backends[response.current_account][response.region]
        found = emulated_objects(backend)[store].get((cluster, name))
        return found[field] if found else f"{arn}:{kind}/{cluster}/{name}/unknown"

    return lookup


_EKS_PARTS = {
    "node-groups": _nodegroup_arn,
    "addons": _eks_object_arn("addons", "addonArn", "addon"),
    "access-entries": _eks_object_arn("access_entries", "accessEntryArn", "access-entry"),
}


_RESOURCES = {
    "iam": _iam_resources,
    "ecr": _ecr_resources,
    "eks": _eks_resources,
    "ecs": _ecs_resources,
    "sagemaker": _sagemaker_resources,
    "ec2": _ec2_resources,
    "logs": _logs_resources,
    "secretsmanager": _secretsmanager_resources,
    "sns": _sns_resources,
    "sqs": _sqs_resources,
}


def request_resources(response) -> list[tuple[str | None, str]]:
    """(action override or None, resource ARN) pairs this request must be allowed on; [] = moto's ``*``."""
    service = getattr(response, "service_name", "")
    if service == "sagemaker-runtime":
        match = _INVOKE_PATH.match(getattr(response, "path", "") or "")
        arn = f"arn:aws:sagemaker:{response.region}:{response.current_account}"
        return [(None, f"{arn}:endpoint/{match['name'].lower()}")] if match else []
    resources = _RESOURCES.get(service)
    if resources is None:
        return []
    arn = f"arn:aws:{service}:{response.region}:{response.current_account}"
    return list(resources(response, response._get_action(), arn))


def _json_protocol(response) -> bool:
    from moto.core.utils import get_service_model

    headers = response.headers
    if "X-Amz-Target" in headers or "json" in headers.get("Content-Type", ""):
        return True
    try:  # a REST-JSON service (EKS) answers JSON also to a GET without a body
        return get_service_model(response.boto3_service_name).protocol in {"json", "rest-json"}
    except Exception:  # no botocore model for the name
        return response.service_name in {"sagemaker-runtime"}


def _signed_payload(response):
    """What the client signed as the payload: the body, or a form moto parsed out of it. moto fell back to its
    parsed parameters for every empty body — for a REST GET without query string those are the request's headers
    (``setup_class``), so each such EKS call (DescribeCluster, ListClusters) failed SignatureDoesNotMatch."""
    form = response.headers.get("Content-Type", "").startswith("application/x-www-form-urlencoded")
    if response.raw_body or form or response.service_name == "s3":  # S3 signs an unsigned or hashed payload header
        return response.data
    return {}  # nothing: the empty payload


def patch_authorization() -> None:
    from moto import settings
    from moto.core.authorization import ActionAuthenticatorMixin
    from moto.core.exceptions import AccessDeniedError, JsonRESTError, ServiceException, _RESTError
    from moto.iam.access_control import IAMRequestBase
    from moto.s3 import responses as s3_responses
    from moto.s3.exceptions import S3AccessDeniedError
    from werkzeug.exceptions import HTTPException

    # AWS authorizes HeadBucket as s3:ListBucket (there is no s3:HeadBucket action); moto asked for HeadBucket.
    s3_responses.ACTION_MAP["BUCKET"]["HEAD"]["DEFAULT"] = "ListBucket"

    # moto names the action after the request's signing name; IAM's prefix differs for some services.
    original_init = IAMRequestBase.__init__

    def init(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        service, _, name = self._action.partition(":")
        self._action = f"{SIGNING_NAME_TO_IAM_PREFIX.get(service, service)}:{name}"

    IAMRequestBase.__init__ = init
    original = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def _authenticate_and_authorize_action(self, iam_request_cls, resource="*"):
        try:
            return _authorize(self, iam_request_cls, resource)
        except AccessDeniedError as denied:
            if not _json_protocol(self):
                raise
            # JSON services answer AccessDeniedException as JSON (moto sends XML, which botocore garbles).
            raise JsonRESTError("AccessDeniedException", denied.message) from None
        except _RESTError as refused:  # a bad signature or an unknown key: as JSON where the protocol is
            if not _json_protocol(self) or isinstance(refused, JsonRESTError):
                raise
            raise refused.to_json() from None

    def _authorize(self, iam_request_cls, resource):
        enforcing = ActionAuthenticatorMixin.request_count >= settings.INITIAL_NO_AUTH_ACTION_COUNT
        if getattr(self, "service_name", None) == "sts" and self._get_action() in UNSIGNED_STS_ACTIONS:
            if enforcing and self._get_action() == "AssumeRoleWithWebIdentity":
                check_web_identity_trust(self)
            return None
        if not enforcing:
            if audit.STATE.on:
                _audit(self, iam_request_cls, resource)
            return original(self, iam_request_cls, resource)  # counts the request towards enforcement
        if self.headers.get("X-Amz-Target") in ActionAuthenticatorMixin.PUBLIC_OPERATIONS:
            return None
        _check_each(self, iam_request_cls, resource)
        return None

    def _audit(self, iam_request_cls, resource):
        """Evaluate as if enforcing; record a denial instead of refusing (eksflow_dev.emulator.audit)."""
        if self.headers.get("X-Amz-Target") in ActionAuthenticatorMixin.PUBLIC_OPERATIONS:
            return
        try:
            _check_each(self, iam_request_cls, resource)
        except (AccessDeniedError, S3AccessDeniedError):
            principal, action, arn = _DENIAL.get()
            audit.record(principal, action, arn, self.headers.get(audit.TASK_HEADER, ""))
        except (HTTPException, ServiceException):
            pass  # not a known principal's signature (the emulator's fixed keys): nothing to evaluate

    def _check_each(self, iam_request_cls, resource):
        checks = (request_resources(self) if resource == "*" else []) or [(None, resource)]
        query = urlparse(self.uri).query
        path = self.raw_path + (f"?{query}" if query else "")
        for action, arn in checks:
            iam_request = iam_request_cls(
                account_id=self.current_account,
                method=self.method,
                path=path,
                data=_signed_payload(self),
                body=self.raw_body,
                headers=self.headers,
                action=self._get_action(),
            )
            iam_request.check_signature()
            if action:
                iam_request._action = action
            context = request_context(self, iam_request._action, arn)
            token = _CHECK_CONTEXT.set(context)
            checked = (iam_request._access_key.arn, iam_request._action, arn, context)
            try:
                iam_request.check_action_permitted(arn)
            except (AccessDeniedError, S3AccessDeniedError) as denied:
                record_authorization(*checked, allowed=False)
                _DENIAL.set(checked[:3])
                if arn == "*" or not isinstance(denied, AccessDeniedError):
                    raise
                raise AccessDeniedError(
                    user_arn=iam_request._access_key.arn, action=f"{iam_request._action} on resource: {arn}"
                ) from None
            finally:
                _CHECK_CONTEXT.reset(token)
            record_authorization(*checked, allowed=True)

    ActionAuthenticatorMixin._authenticate_and_authorize_action = _authenticate_and_authorize_action


def patch_conditions() -> None:
    """IAM Conditions of every policy moto evaluates (identity policies, bucket policies, the trust policies of
    sts:AssumeRole) by ``conditions``, AWS's operator semantics, instead of moto's: moto knows only StringEquals
    (any other operator holds), has no request context for identity policies (so every condition held), and counts
    a statement whose condition fails as an explicit deny. Here such a statement does not apply; moto still
    matches action, resource and principal."""
    from moto.iam.access_control import IAMPolicyStatement, PermissionResult

    original_permitted = IAMPolicyStatement.is_action_permitted

    def is_action_permitted(self, action, resource="*", principal=None, incoming_condition_values=None):
        if not self._statement.get("Condition"):
            return original_permitted(self, action, resource, principal, incoming_condition_values)
        unconditioned = IAMPolicyStatement({k: v for k, v in self._statement.items() if k != "Condition"})
        result = original_permitted(unconditioned, action, resource, principal, None)
        if result is PermissionResult.NEUTRAL:  # not this action or resource: the Conditions are not looked at
            return result
        context = _CHECK_CONTEXT.get() if incoming_condition_values is None else incoming_condition_values
        return result if conditions_apply(self._statement, context or {}) else PermissionResult.NEUTRAL

    IAMPolicyStatement.is_action_permitted = is_action_permitted


def patch_bucket_policy_context() -> None:
    """moto never supplies ``aws:SecureTransport`` to bucket policies, so a TLS-only policy (Deny when it is false,
    as every bucket of the platform has) denied every object call; the emulator stands in for AWS's HTTPS
    endpoints. The Conditions themselves: ``patch_conditions``."""
    from moto.iam.access_control import IAMPolicy, PermissionResult
    from moto.s3.models import FakeBucket

    def get_permission(self, action: str, resource: str):
        if self.policy is None:
            return PermissionResult.NEUTRAL
        condition_values = {"aws:SecureTransport": "true"}
        return IAMPolicy(self.policy.decode()).is_action_permitted(action, resource, None, condition_values)

    FakeBucket.get_permission = get_permission


def patch_service_principals() -> None:
    """sts:AssumeRole by an IAM principal of a role whose trust names only an AWS service (``Principal: {"Service":
    ...}``, as the ECS task and SageMaker execution roles) answered 500: moto's principal check read the trust's
    ``AWS`` principals and found none. Such a trust admits no IAM principal (AccessDenied), as in AWS."""
    from moto.iam.access_control import IAMPolicyStatement

    def _check_principal(self, principal: str) -> bool:
        expected = self._statement.get("Principal")
        if not expected or expected == "*":
            return True
        if not isinstance(expected, dict) or "AWS" not in expected:
            return False
        aws = expected["AWS"]
        return aws == "*" or principal == aws or (isinstance(aws, list) and principal in aws)

    IAMPolicyStatement._check_principal = _check_principal


def patch_user_listing() -> None:
    """moto's state dump (``/moto-api/data.json``) answered 500 once a User it still tracks is gone from its
    backend (seen after a Terraform apply): the dump reads each user's ``group_list``, which then raises
    NoSuchEntity. Such a user has no groups."""
    from moto.iam.exceptions import NoSuchEntity
    from moto.iam.models import User

    listed = User.group_list.fget

    def group_list(self) -> list[str]:
        try:
            return listed(self)
        except NoSuchEntity:
            return []

    User.group_list = property(group_list)
