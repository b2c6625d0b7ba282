"""Least-privilege probes: per IAM role of the platform, calls inside its job (must get past IAM) and calls
outside it (must be denied). Run by tests/test_least_privilege.py with each role's web-identity session
against the emulator with IAM enforcement on; the emulator checks scoped resources and the policies'
Conditions per request (src/eksflow_dev/emulator/iam.py, conditions.py). The condition probes — tags on what
housekeeping acts on, the tags the sagemaker-runner sets, ``ecs:cluster``, the ``s3:prefix`` of log listings —
are marked "(condition)" in their reason. They change nothing: EC2 calls are dry runs, a probed create names an
endpoint config that does not exist (past IAM, the create then fails).

A probe counts as allowed when IAM let it through, even if the service then answers "not found"; as denied
only on an authorization error. Anything else (e.g. a signature error) fails the test: it proves nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

import boto3
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from eksflow.jobs import (
    JOB_TAG_KEY,
    ecs_execution_role_name,
    get_job,
    release_queue_name,
    sagemaker_execution_role_name,
)
from eksflow.jobs import JOBS as WORKLOAD_JOBS
from eksflow.platform import (
    PROTECTED_TAG_KEY,
    ecr_repository_name,
    endpoint_tags,
    managed_tags,
    notification_topic_arn,
    notification_topic_name,
    sagemaker_name_prefix,
    secrets_backend_prefixes,
)
from eksflow_dev.emulator.seed import other_env

DENIAL_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "403"})
ALLOW, DENY = "allow", "deny"


@dataclass(frozen=True)
class Context:
    env: str
    account: str
    region: str
    buckets: dict[str, str]
    role_arns: dict[str, str]  # every platform role: task roles by role name, control plane by component
    db_secret_arn: str
    instance_id: str  # a managed instance
    instances: dict[str, str]  # the seeded instances: Name tag -> instance id (eksflow_dev.emulator.seed)
    release_queue_url: str = ""  # the job-release queue and its DLQ (modules/workloads)
    release_dlq_url: str = ""
    # Revisions of the etl-step family by kind (RELEASED, UNTAGGED, OTHER_JOBS): the ecs-runner's RunTask probes.
    revisions: dict[str, str] = field(default_factory=dict)

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"

    @property
    def cluster(self) -> str:
        return f"eksflow-{self.env}-batch"

    @property
    def other_env(self) -> str:
        """Another environment in the same account (the seed's)."""
        return other_env(self.env)


@dataclass(frozen=True)
class Probe:
    expect: str
    service: str
    operation: str
    params: Callable[[Context, str], dict]  # (context, the probing role) -> call parameters
    why: str

    @property
    def condition(self) -> bool:
        """Whether the probe's outcome hangs on a policy Condition (its reason says which)."""
        return "(condition" in self.why


def _probe(expect: str, service: str, operation: str, why: str, params=None) -> Probe:
    return Probe(expect, service, operation, params or (lambda c, r: {}), why)


def _mine(suffix: str) -> Callable[[Context], str]:
    """A SageMaker name of the probing environment (its prefix eksflow-<env>-, as the kit names them)."""
    return lambda c: f"{sagemaker_name_prefix(c.env)}{suffix}"


def _theirs(suffix: str) -> Callable[[Context], str]:
    """The same name in another environment of the account."""
    return lambda c: f"{sagemaker_name_prefix(c.other_env)}{suffix}"


def _outside(name: str) -> Callable[[Context], str]:
    return lambda c: name


def _training_job(name: Callable[[Context], str]) -> Callable[[Context, str], dict]:
    return lambda c, r: {
        "TrainingJobName": name(c),
        "RoleArn": f"arn:aws:iam::{c.account}:role/eksflow-{c.env}-sagemaker-execution",
        "AlgorithmSpecification": {"TrainingImage": "probe", "TrainingInputMode": "File"},
        "OutputDataConfig": {"S3OutputPath": f"s3://{c.buckets['ml_artifacts']}/probe/"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 60},
    }


def _processing_job(name: Callable[[Context], str], role: str = "", **extra) -> Callable[[Context, str], dict]:
    """A processing job as the kit creates it (no Tags), passing the execution role unless ``role`` names another
    platform role."""
    return lambda c, r: {
        "ProcessingJobName": name(c),
        "RoleArn": c.role_arns[role] if role else f"arn:aws:iam::{c.account}:role/eksflow-{c.env}-sagemaker-execution",
        "AppSpecification": {"ImageUri": "probe"},
        "ProcessingResources": {"ClusterConfig": {"InstanceType": "ml.m5.large", "InstanceCount": 1,
                                                  "VolumeSizeInGB": 10}},
        **extra,
    }  # fmt: skip


def _transform_job(name: Callable[[Context], str], model: Callable[[Context], str]) -> Callable[[Context, str], dict]:
    return lambda c, r: {
        "TransformJobName": name(c),
        "ModelName": model(c),
        "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                           "S3Uri": f"s3://{c.buckets['data']}/probe/"}}},
        "TransformOutput": {"S3OutputPath": f"s3://{c.buckets['data']}/probe-out/"},
        "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1},
    }  # fmt: skip


def _job_name(kind: str, name: Callable[[Context], str]) -> Callable[[Context, str], dict]:
    return lambda c, r: {f"{kind}JobName": name(c)}


# Secrets the least-privilege test creates: one under each of the Secrets Manager backend's prefixes of the
# environment (the role model's, which the chart configures the backend with), the same for another environment in
# the account, and one elsewhere.
def probe_secrets(env: str) -> dict[str, str]:
    return {kind: f"{prefix}/probe" for kind, prefix in secrets_backend_prefixes(env).items()}


OTHER_SECRET = "airflow/connections/probe"  # the backend's default prefix, not the platform's

_ADMIN_POLICY = json.dumps(
    {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
)


def _topic(env: str) -> Callable[[Context], str]:
    return lambda c: notification_topic_arn(env, c.region, c.account)


def _notify(topic: Callable[[Context], str]) -> Callable[[Context, str], dict]:
    return lambda c, r: {"TopicArn": topic(c), "Subject": "probe", "Message": f"probe from {r}"}


# Nobody on the platform may do these.
EVERYONE_DENIED = [
    _probe(DENY, "iam", "create_user", "create an IAM user", lambda c, r: {"UserName": "eksflow-probe"}),
    _probe(DENY, "iam", "attach_role_policy", "make its own role admin", lambda c, r: {
        "RoleName": c.role_arns[r].rsplit("/", 1)[1], "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
    _probe(DENY, "iam", "put_role_policy", "rewrite its own policy", lambda c, r: {
        "RoleName": c.role_arns[r].rsplit("/", 1)[1], "PolicyName": "probe", "PolicyDocument": _ADMIN_POLICY}),
    _probe(DENY, "sts", "assume_role", "become another platform role", lambda c, r: {
        "RoleArn": next(arn for name, arn in c.role_arns.items() if name != r), "RoleSessionName": "probe"}),
    _probe(DENY, "secretsmanager", "get_secret_value", "read the metadata DB password",
           lambda c, r: {"SecretId": c.db_secret_arn}),
    _probe(DENY, "secretsmanager", "get_secret_value", "read a secret outside Airflow's prefixes",
           lambda c, r: {"SecretId": OTHER_SECRET}),
    _probe(DENY, "secretsmanager", "put_secret_value", "overwrite an Airflow Connection", lambda c, r: {
        "SecretId": probe_secrets(c.env)["connections_prefix"], "SecretString": "aws://"}),
    _probe(DENY, "secretsmanager", "list_secrets", "list the account's secrets"),
    _probe(DENY, "s3", "delete_bucket", "delete the data bucket", lambda c, r: {"Bucket": c.buckets["data"]}),
    _probe(DENY, "s3", "put_object", "overwrite a model artifact", lambda c, r: {
        "Bucket": c.buckets["ml_artifacts"], "Key": "models/probe.tar.gz", "Body": b"x"}),
    _probe(DENY, "ec2", "run_instances", "start an EC2 instance", lambda c, r: {
        "ImageId": "ami-12c6146b", "InstanceType": "t3.micro", "MinCount": 1, "MaxCount": 1}),
    _probe(DENY, "rds", "delete_db_instance", "delete the metadata DB", lambda c, r: {
        "DBInstanceIdentifier": f"eksflow-{c.env}-metadata", "SkipFinalSnapshot": True}),
    _probe(DENY, "ecr", "batch_delete_image", "delete images of the platform", lambda c, r: {
        "repositoryName": ecr_repository_name(), "imageIds": [{"imageTag": "probe"}]}),
    _probe(DENY, "kms", "create_key", "create a KMS key"),
    _probe(DENY, "cloudwatch", "delete_alarms", "silence the alarms", lambda c, r: {
        "AlarmNames": [f"eksflow-{c.env}-metadata-db-cpu"]}),
    _probe(DENY, "sns", "create_topic", "create a topic", lambda c, r: {"Name": f"{notification_topic_name(c.env)}-2"}),
    _probe(DENY, "sns", "subscribe", "subscribe to the owners' notifications", lambda c, r: {
        "TopicArn": _topic(c.env)(c), "Protocol": "email", "Endpoint": "probe@example.com"}),
    _probe(DENY, "sns", "list_topics", "list the account's topics"),
    _probe(DENY, "sns", "set_topic_attributes", "change the notification topic", lambda c, r: {
        "TopicArn": _topic(c.env)(c), "AttributeName": "KmsMasterKeyId", "AttributeValue": ""}),
]  # fmt: skip

# Every Airflow process consults the Secrets Manager backend when it is on (the applied dev platform turns it on):
# every role reads Connections and Variables under the backend's prefixes.
# Another environment's Connections and Variables stay out of reach (environments may share an account).
_SECRETS_BACKEND = [
    probe
    for kind in ("connections_prefix", "variables_prefix")
    for probe in (
        _probe(ALLOW, "secretsmanager", "get_secret_value", f"read its env's {kind} (Secrets Manager backend)",
               lambda c, r, kind=kind: {"SecretId": probe_secrets(c.env)[kind]}),
        _probe(DENY, "secretsmanager", "get_secret_value", f"read another env's {kind}",
               lambda c, r, kind=kind: {"SecretId": probe_secrets(c.other_env)[kind]}),
    )
]  # fmt: skip

_LOGS = [
    _probe(ALLOW, "s3", "put_object", "write its task log", lambda c, r: {
        "Bucket": c.buckets["logs"], "Key": f"task-logs/probe/{r}.log", "Body": b"log"}),
    _probe(ALLOW, "s3", "get_object", "read a task log", lambda c, r: {
        "Bucket": c.buckets["logs"], "Key": f"task-logs/probe/{r}.log"}),
    _probe(DENY, "s3", "put_object", "write outside the log prefix", lambda c, r: {
        "Bucket": c.buckets["logs"], "Key": f"elsewhere/{r}.log", "Body": b"log"}),
    _probe(ALLOW, "s3", "list_objects_v2", "list task logs (condition: s3:prefix)", lambda c, r: {
        "Bucket": c.buckets["logs"], "Prefix": "task-logs/probe/"}),
    _probe(DENY, "s3", "list_objects_v2", "list logs outside the log prefix (condition: s3:prefix)", lambda c, r: {
        "Bucket": c.buckets["logs"], "Prefix": "elsewhere/"}),
    _probe(DENY, "s3", "list_objects_v2", "list the whole log bucket (condition: no s3:prefix)", lambda c, r: {
        "Bucket": c.buckets["logs"]}),
]  # fmt: skip

_RUN_ECS = _probe(DENY, "ecs", "run_task", "start an ECS task", lambda c, r: {
    "cluster": c.cluster, "taskDefinition": f"eksflow-{c.env}-etl-step"})  # fmt: skip
_TRAIN = _probe(DENY, "sagemaker", "create_training_job", "start a training job", _training_job(_mine("probe-train")))
_STOP_EC2 = _probe(DENY, "ec2", "stop_instances", "stop an instance", lambda c, r: {"InstanceIds": [c.instance_id]})
_DESCRIBE_EC2 = _probe(DENY, "ec2", "describe_instances", "list instances")
_READ_DATA = _probe(DENY, "s3", "get_object", "read curated data", lambda c, r: {
    "Bucket": c.buckets["data"], "Key": "curated/_SUCCESS"})  # fmt: skip
_WRITE_DATA = _probe(DENY, "s3", "put_object", "write curated data", lambda c, r: {
    "Bucket": c.buckets["data"], "Key": "curated/probe", "Body": b"x"})  # fmt: skip
_TASK = lambda cluster: lambda c, r: {"cluster": cluster or c.cluster, "tasks": ["0123456789abcdef0123456789abcdef"]}  # noqa: E731
_PROCESS = _probe(DENY, "sagemaker", "create_processing_job", "start a processing job",
                  _processing_job(_mine("probe-process")))  # fmt: skip


# Running what a job repository released (the "job" and "released" policies of terraform/modules/irsa): the ecs-runner
# runs only revisions tagged with their family's job (a release's, Terraform's) and registers none; the
# sagemaker-runner finds a SageMaker job's released image.
def _role(name: Callable[[str], str]) -> Callable[[Context], str]:
    return lambda c: f"arn:aws:iam::{c.account}:role/{name(c.env)}"


_ETL = get_job("etl-step")
_JOB_TASK_ROLE = _role(_ETL.task_role_name)
_EXECUTION_ROLE = _role(ecs_execution_role_name)


def _revision(task_role: Callable[[Context], str] = _JOB_TASK_ROLE, **extra) -> Callable[[Context, str], dict]:
    """A revision of the etl-step family with its job's task role and the execution role. Its container has no
    memory: past IAM, ECS refuses it and nothing is registered."""
    return lambda c, r: {
        "family": _ETL.ecs_family(c.env), "taskRoleArn": task_role(c), "executionRoleArn": _EXECUTION_ROLE(c),
        "containerDefinitions": [{"name": _ETL.container, "image": "probe"}], **extra,
    }  # fmt: skip


def _images(job: str, env: Callable[[Context], str] = lambda c: c.env) -> Callable[[Context, str], dict]:
    return lambda c, r: {"repositoryName": get_job(job).repository(env(c))}


# The etl-step revisions of Context.revisions: the released one (tagged with its job), one registered without tags and
# one tagged with another job (as someone with RegisterTaskDefinition could; test_least_privilege registers them).
RELEASED, UNTAGGED, OTHER_JOBS = "released", "untagged", "tagged with another job"


def _run_revision(kind: str) -> Callable[[Context, str], dict]:
    """RunTask of one of the context's etl-step revisions on its cluster, with a launch type ECS refuses: past IAM,
    nothing starts."""
    return lambda c, r: {"cluster": c.cluster, "taskDefinition": c.revisions[kind], "launchType": "PROBE"}


_REGISTER_ECS = _probe(DENY, "ecs", "register_task_definition", "register a task-definition revision", _revision())
_RELEASED_IMAGES = _probe(DENY, "ecr", "describe_images", "list a job repository's images", _images("train"))
_NOT_A_TASK_ROLE_JOB = [_RUN_ECS, _TRAIN, _STOP_EC2, _READ_DATA, _WRITE_DATA, _PROCESS, _REGISTER_ECS, _RELEASED_IMAGES]


def _instance(name: str, operation: str = "stop_instances", expect: str = DENY) -> Probe:
    """A dry-run stop/terminate of a seeded instance: past IAM it answers DryRunOperation and changes nothing."""
    return _probe(expect, "ec2", operation, f"{operation.split('_')[0]} {name} (condition: aws:ResourceTag)",
                  lambda c, r: {"InstanceIds": [c.instances[name]], "DryRun": True})  # fmt: skip


def _endpoint_with_tags(why: str, tags: Callable[[Context], dict[str, str]], expect: str = DENY) -> Probe:
    return _probe(expect, "sagemaker", "create_endpoint", f"{why} (condition: tags)", lambda c, r: {
        "EndpointName": _mine("probe-tagged")(c), "EndpointConfigName": _mine("probe-missing")(c),
        "Tags": [{"Key": k, "Value": v} for k, v in tags(c).items()]})  # fmt: skip


_KIT_TAGS = lambda c: endpoint_tags(c.env, managed=True, protected=True)  # noqa: E731 - the ML pipeline's
TOO_LONG = "x" * (256 * 1024 + 1)  # SQS refuses a message this long past IAM: a probe sends nothing


def _queue(url: Callable[[Context], str], **params) -> Callable[[Context, str], dict]:
    return lambda c, r: {"QueueUrl": url(c), **params}


def other_envs_queue(c) -> str:
    """Another environment's release queue (a Context or a DeployContext)."""
    return c.release_queue_url.rsplit("/", 1)[0] + "/" + release_queue_name(c.other_env)


JOBS: dict[str, list[Probe]] = {
    "default": [*_NOT_A_TASK_ROLE_JOB, _DESCRIBE_EC2],
    "ecs-runner": [
        _probe(ALLOW, "ecs", "list_tasks", "find its running task (re-attach)", lambda c, r: {"cluster": c.cluster}),
        _probe(ALLOW, "ecs", "describe_tasks", "watch its task", _TASK(None)),
        _probe(DENY, "ecs", "describe_tasks", "watch tasks of another cluster", _TASK("other-cluster")),
        _probe(DENY, "ecs", "run_task", "run another task family", lambda c, r: {
            "cluster": c.cluster, "taskDefinition": "other-family"}),
        _probe(DENY, "ecs", "run_task", "run its task family on another cluster (condition: ecs:cluster)",
               lambda c, r: {"cluster": "other-cluster", "taskDefinition": f"eksflow-{c.env}-etl-step"}),
        _probe(DENY, "ecs", "list_tasks", "list tasks of another cluster (condition: ecs:cluster)",
               lambda c, r: {"cluster": "other-cluster"}),
        # What a job released (ecs_run_task(job=..., image=...)): its family's revisions are read and listed
        # (DescribeTaskDefinition and ListTaskDefinitions take no resource), only those tagged with the job run.
        _probe(ALLOW, "ecs", "describe_task_definition", "read its job family's latest revision", lambda c, r: {
            "taskDefinition": _ETL.ecs_family(c.env), "include": ["TAGS"]}),
        _probe(ALLOW, "ecs", "list_task_definitions", "list its job family's revisions (the one a run started with)",
               lambda c, r: {"familyPrefix": _ETL.ecs_family(c.env), "status": "ACTIVE", "sort": "DESC"}),
        _probe(ALLOW, "ecs", "run_task", "run its job's released revision (condition: aws:ResourceTag)",
               _run_revision(RELEASED)),
        _probe(DENY, "ecs", "run_task", "run an untagged revision of its job's family (condition: aws:ResourceTag)",
               _run_revision(UNTAGGED)),
        _probe(DENY, "ecs", "run_task", "run a revision of its job's family tagged with another job (condition: "
               "aws:ResourceTag)", _run_revision(OTHER_JOBS)),
        _probe(DENY, "ecs", "register_task_definition", "register a job revision with the job's task and execution "
               "role", _revision()),
        _probe(DENY, "ecs", "register_task_definition", "register a job revision tagged with its job", _revision(
            tags=[{"key": JOB_TAG_KEY, "value": _ETL.name}])),
        _probe(DENY, "ecs", "deregister_task_definition", "deregister a job revision", lambda c, r: {
            "taskDefinition": f"{_ETL.ecs_family(c.env)}:1"}),
        _RELEASED_IMAGES,
        _TRAIN, _STOP_EC2, _DESCRIBE_EC2, _READ_DATA, _WRITE_DATA, _PROCESS,
    ],
    "sagemaker-runner": [
        _probe(ALLOW, "sagemaker", "describe_training_job", "watch its training job", lambda c, r: {
            "TrainingJobName": _mine("probe-train")(c)}),
        _probe(ALLOW, "sagemaker", "describe_endpoint", "watch its endpoint", lambda c, r: {
            "EndpointName": _mine("probe")(c)}),
        _probe(ALLOW, "sagemaker", "create_training_job", "train with its env's name", _training_job(_mine("probe-2"))),
        _probe(ALLOW, "s3", "get_object", "read curated training input", lambda c, r: {
            "Bucket": c.buckets["data"], "Key": "curated/_SUCCESS"}),
        _probe(DENY, "sagemaker", "describe_training_job", "watch another team's job", lambda c, r: {
            "TrainingJobName": "other-train"}),
        _probe(DENY, "sagemaker", "create_training_job", "train outside the name prefix",
               _training_job(_outside("other-train"))),
        _probe(DENY, "sagemaker", "create_training_job", "train with the prefix every env used to share",
               _training_job(_outside("eksflow-probe-train"))),
        _probe(DENY, "sagemaker", "create_training_job", "train under another env's name",
               _training_job(_theirs("probe-train"))),
        _probe(DENY, "sagemaker", "stop_training_job", "stop another env's training job", lambda c, r: {
            "TrainingJobName": _theirs("probe-train")(c)}),
        _probe(DENY, "sagemaker", "update_endpoint", "move another env's endpoint to its config", lambda c, r: {
            "EndpointName": _theirs("probe")(c), "EndpointConfigName": _mine("probe")(c)}),
        _probe(DENY, "sagemaker", "describe_endpoint", "watch another env's endpoint", lambda c, r: {
            "EndpointName": _theirs("probe")(c)}),
        _probe(DENY, "sagemaker", "delete_endpoint", "delete an endpoint", lambda c, r: {
            "EndpointName": _mine("probe")(c)}),
        _probe(DENY, "s3", "get_object", "read raw data", lambda c, r: {"Bucket": c.buckets["data"], "Key": "raw/x"}),
        _endpoint_with_tags("create its endpoint with the kit's tags", _KIT_TAGS, ALLOW),
        _endpoint_with_tags("create an endpoint with another tag key", lambda c: {**_KIT_TAGS(c), "owner": "ml"}),
        _endpoint_with_tags("create an endpoint for another env's housekeeping", lambda c: {
            **_KIT_TAGS(c), **managed_tags(other_env(c.env))}),
        _endpoint_with_tags("create an unprotected endpoint", lambda c: {**_KIT_TAGS(c), PROTECTED_TAG_KEY: "false"}),
        _probe(DENY, "sagemaker", "add_tags", "tag an existing endpoint (condition: sagemaker:TaggingAction)",
               lambda c, r: {"ResourceArn": c.arn("sagemaker", f"endpoint/eksflow-{c.env}-in-use"),
                             "Tags": [{"Key": k, "Value": v} for k, v in _KIT_TAGS(c).items()]}),
        # Processing and batch transform jobs (kit.sagemaker_processing, kit.sagemaker_batch_transform).
        _probe(ALLOW, "sagemaker", "create_processing_job", "run a processing job with its env's name",
               _processing_job(_mine("probe-process"))),
        _probe(ALLOW, "sagemaker", "describe_processing_job", "watch its processing job",
               _job_name("Processing", _mine("probe-process"))),
        _probe(ALLOW, "sagemaker", "stop_processing_job", "stop its processing job",
               _job_name("Processing", _mine("probe-process"))),
        _probe(ALLOW, "sagemaker", "create_transform_job",
               "batch-transform with its env's name and model (condition: sagemaker:ModelArn)",
               _transform_job(_mine("probe-scores"), _mine("probe-model"))),
        _probe(ALLOW, "sagemaker", "describe_transform_job", "watch its transform job",
               _job_name("Transform", _mine("probe-scores"))),
        _probe(ALLOW, "sagemaker", "stop_transform_job", "stop its transform job",
               _job_name("Transform", _mine("probe-scores"))),
        _probe(DENY, "sagemaker", "create_transform_job",
               "batch-transform with another env's model (condition: sagemaker:ModelArn)",
               _transform_job(_mine("probe-scores-2"), _theirs("probe-model"))),
        _probe(DENY, "sagemaker", "create_transform_job", "batch-transform under another env's name",
               _transform_job(_theirs("probe-scores"), _mine("probe-model"))),
        _probe(DENY, "sagemaker", "create_processing_job", "run a processing job under another env's name",
               _processing_job(_theirs("probe-process"))),
        _probe(DENY, "sagemaker", "create_processing_job", "run a processing job outside the name prefix",
               _processing_job(_outside("other-process"))),
        _probe(DENY, "sagemaker", "create_processing_job", "run a processing job as another platform role",
               _processing_job(_mine("probe-process-2"), role="ec2-ops")),
        _probe(DENY, "sagemaker", "create_processing_job", "tag a processing job (no sagemaker:AddTags on jobs)",
               _processing_job(_mine("probe-process-3"), Tags=[{"Key": "owner", "Value": "ml"}])),
        _probe(DENY, "sagemaker", "describe_processing_job", "watch another env's processing job",
               _job_name("Processing", _theirs("probe-process"))),
        _probe(DENY, "sagemaker", "stop_transform_job", "stop another env's transform job",
               _job_name("Transform", _theirs("probe-scores"))),
        # The released images of its SageMaker jobs (released_image): their metadata, nothing else of ECR.
        _probe(ALLOW, "ecr", "describe_images", "find the train job's released image", _images("train")),
        _probe(ALLOW, "ecr", "describe_images", "find the serve job's released image", _images("serve")),
        _probe(DENY, "ecr", "describe_images", "list an ecs job's repository", _images("etl-step")),
        _probe(DENY, "ecr", "describe_images", "list another env's job repository",
               _images("train", lambda c: c.other_env)),
        _probe(DENY, "ecr", "describe_images", "list the Airflow image's repository", lambda c, r: {
            "repositoryName": ecr_repository_name()}),
        _probe(DENY, "ecr", "batch_get_image", "pull a job image's manifest", lambda c, r: {
            "repositoryName": get_job("train").repository(c.env), "imageIds": [{"imageTag": "probe"}]}),
        _probe(DENY, "ecr", "put_image", "put an image into a job repository", lambda c, r: {
            "repositoryName": get_job("train").repository(c.env), "imageManifest": "{}", "imageTag": "probe"}),
        _RUN_ECS, _REGISTER_ECS, _STOP_EC2, _DESCRIBE_EC2, _WRITE_DATA,
    ],
    "ec2-ops": [
        _probe(ALLOW, "ec2", "describe_instances", "find managed instances"),
        _probe(ALLOW, "sagemaker", "list_endpoints", "find endpoints"),
        _probe(ALLOW, "sagemaker", "describe_endpoint", "inspect an endpoint", lambda c, r: {
            "EndpointName": _mine("probe")(c)}),
        _probe(DENY, "sagemaker", "describe_endpoint", "inspect another env's endpoint", lambda c, r: {
            "EndpointName": _theirs("probe")(c)}),
        _probe(DENY, "sagemaker", "delete_endpoint", "delete another env's endpoint", lambda c, r: {
            "EndpointName": _theirs("probe")(c)}),
        _probe(ALLOW, "s3", "put_object", "write its report", lambda c, r: {
            "Bucket": c.buckets["data"], "Key": "reports/housekeeping/probe.json", "Body": b"{}"}),
        _probe(DENY, "sagemaker", "delete_endpoint", "delete an endpoint outside the prefix", lambda c, r: {
            "EndpointName": "other-endpoint"}),
        _instance("managed-busy", expect=ALLOW),
        _instance("other-env-idle"),
        _instance("unmanaged-idle"),
        _instance("managed-protected"),
        _instance("other-env-idle", "terminate_instances"),
        _instance("managed-protected", "terminate_instances"),
        _probe(DENY, "sagemaker", "delete_endpoint", "delete another env's endpoint (condition: aws:ResourceTag)",
               lambda c, r: {"EndpointName": f"eksflow-{other_env(c.env)}-idle"}),
        _probe(DENY, "sagemaker", "delete_endpoint", "delete an unmanaged endpoint (condition: aws:ResourceTag)",
               lambda c, r: {"EndpointName": f"eksflow-{c.env}-unmanaged"}),
        _probe(DENY, "sagemaker", "create_endpoint", "create an endpoint", lambda c, r: {
            "EndpointName": _mine("probe")(c), "EndpointConfigName": _mine("probe")(c)}),
        _RUN_ECS, _TRAIN, _READ_DATA, _WRITE_DATA, _PROCESS, _REGISTER_ECS, _RELEASED_IMAGES,
    ],
    "triggerer": [
        _probe(ALLOW, "ecs", "describe_tasks", "resume an ECS wait", _TASK(None)),
        _probe(ALLOW, "sagemaker", "describe_training_job", "resume a training wait", lambda c, r: {
            "TrainingJobName": _mine("probe-train")(c)}),
        _probe(DENY, "sagemaker", "describe_training_job", "read another env's training wait", lambda c, r: {
            "TrainingJobName": _theirs("probe-train")(c)}),
        _probe(ALLOW, "ec2", "describe_instances", "resume an EC2 wait"),
        _probe(DENY, "ecs", "stop_task", "stop an ECS task", lambda c, r: {
            "cluster": c.cluster, "task": "0123456789abcdef0123456789abcdef"}),
        _probe(DENY, "sagemaker", "stop_training_job", "stop a training job", lambda c, r: {
            "TrainingJobName": _mine("probe-train")(c)}),
        _probe(ALLOW, "sagemaker", "describe_processing_job", "resume a processing wait",
               _job_name("Processing", _mine("probe-process"))),
        _probe(ALLOW, "sagemaker", "describe_transform_job", "resume a batch transform wait",
               _job_name("Transform", _mine("probe-scores"))),
        _probe(DENY, "sagemaker", "describe_transform_job", "read another env's batch transform wait",
               _job_name("Transform", _theirs("probe-scores"))),
        _probe(DENY, "sagemaker", "stop_processing_job", "stop a processing job",
               _job_name("Processing", _mine("probe-process"))),
        # The job-release AssetWatcher: receive (no wait: the queue's default is a 20 s long poll), delete and keep
        # invisible its messages, read its attributes, set a bad one aside in the DLQ (too long: refused past IAM).
        _probe(ALLOW, "sqs", "receive_message", "watch job releases", _queue(lambda c: c.release_queue_url,
                                                                            WaitTimeSeconds=0)),
        _probe(ALLOW, "sqs", "get_queue_attributes", "read the release queue's attributes",
               _queue(lambda c: c.release_queue_url, AttributeNames=["All"])),
        _probe(ALLOW, "sqs", "delete_message", "delete a release it turned into an Asset event (past IAM: no such "
               "receipt)", _queue(lambda c: c.release_queue_url, ReceiptHandle="probe")),
        _probe(ALLOW, "sqs", "change_message_visibility", "keep a release invisible while it works on it",
               _queue(lambda c: c.release_queue_url, ReceiptHandle="probe", VisibilityTimeout=30)),
        _probe(ALLOW, "sqs", "send_message", "set a malformed release aside in the DLQ (too long: refused past IAM)",
               _queue(lambda c: c.release_dlq_url, MessageBody=TOO_LONG)),
        _probe(DENY, "sqs", "send_message", "forge a job release", _queue(lambda c: c.release_queue_url,
                                                                          MessageBody=TOO_LONG)),
        _probe(DENY, "sqs", "receive_message", "read the dead letters", _queue(lambda c: c.release_dlq_url,
                                                                               WaitTimeSeconds=0)),
        _probe(DENY, "sqs", "purge_queue", "drop the releases", _queue(lambda c: c.release_queue_url)),
        _probe(DENY, "sqs", "receive_message", "watch another env's releases",
               _queue(other_envs_queue, WaitTimeSeconds=0)),
        _RUN_ECS, _TRAIN, _STOP_EC2, _READ_DATA, _WRITE_DATA, _PROCESS, _REGISTER_ECS, _RELEASED_IMAGES,
    ],
}  # fmt: skip
for _component in ("scheduler", "api-server", "dag-processor"):
    JOBS[_component] = [*_NOT_A_TASK_ROLE_JOB, _DESCRIBE_EC2]

# DAG notifications: task callbacks publish with the task's role, callbacks of lost tasks and DAG callbacks with the
# dag-processor's; to their own environment's topic only. The other control-plane roles do not publish.
_PUBLISHERS = set(JOBS) - {"scheduler", "api-server", "triggerer"}
for _role in JOBS:
    _mine_allowed = ALLOW if _role in _PUBLISHERS else DENY
    JOBS[_role] = [
        *JOBS[_role],
        _probe(_mine_allowed, "sns", "publish", "notify its env's DAG owners", _notify(lambda c: _topic(c.env)(c))),
        _probe(DENY, "sns", "publish", "notify another env's DAG owners", _notify(lambda c: _topic(c.other_env)(c))),
    ]


def probes_for(role: str) -> list[Probe]:
    return [*_LOGS, *_SECRETS_BACKEND, *JOBS[role], *EVERYONE_DENIED]


# --- The roles the workloads run as (terraform/modules/workloads): ECS's task execution role, each ecs job's task role,
# the SageMaker execution role. Role keys: "ecs-task-execution", "sagemaker-execution", "job:<job>".

WORKLOAD_ROLES = ("ecs-task-execution", "sagemaker-execution",
                  *(f"job:{name}" for name, job in WORKLOAD_JOBS.items() if job.runs_on == "ecs"))  # fmt: skip


def workload_role_name(role: str, env: str) -> str:
    if role == "ecs-task-execution":
        return ecs_execution_role_name(env)
    if role == "sagemaker-execution":
        return sagemaker_execution_role_name(env)
    return WORKLOAD_JOBS[role.removeprefix("job:")].task_role_name(env)


def _image(job: str | None, tag: str = "probe") -> Callable[[Context, str], dict]:
    """A manifest read in a job's repository (None: the platform's Airflow repository); no such tag: past IAM."""
    return lambda c, r: {"repositoryName": WORKLOAD_JOBS[job].repository(c.env) if job else ecr_repository_name(),
                         "imageIds": [{"imageTag": tag}]}  # fmt: skip


def _object(purpose: str, key: str, **params) -> Callable[[Context, str], dict]:
    return lambda c, r: {"Bucket": c.buckets[purpose], "Key": key, **params}


def _log_stream(group: Callable[[Context], str], stream: str, **params) -> Callable[[Context, str], dict]:
    return lambda c, r: {"logGroupName": group(c), "logStreamName": stream, **params}


_EVENTS = {"logEvents": [{"timestamp": 1796000000000, "message": "probe"}]}
_ANNOUNCE = _probe(DENY, "sqs", "send_message", "announce a job release",
                   _queue(lambda c: c.release_queue_url, MessageBody=TOO_LONG))  # fmt: skip
_OWN_POLICY = next(p for p in EVERYONE_DENIED if p.why == "rewrite its own policy")
_WORKLOADS_DENIED = [
    _ANNOUNCE, _RUN_ECS, _TRAIN, _DESCRIBE_EC2, _OWN_POLICY,
    _probe(DENY, "ecr", "batch_get_image", "pull the platform's Airflow image", _image(None)),
    *(p for p in EVERYONE_DENIED if p.why in {"create an IAM user", "read the metadata DB password",
                                               "become another platform role"}),
]  # fmt: skip


def _job_task_role(job: str) -> list[Probe]:
    spec = WORKLOAD_JOBS[job]
    only_read = [prefix for prefix in spec.reads if prefix not in spec.writes]
    return [
        *(_probe(ALLOW, "s3", "get_object", f"read its input under {prefix}",
                 _object("data", f"{prefix}probe/missing.csv")) for prefix in spec.reads),
        *(_probe(ALLOW, "s3", "put_object", f"write its output under {prefix}",
                 _object("data", f"{prefix}probes/{job}.json", Body=b"{}")) for prefix in spec.writes),
        *(_probe(ALLOW, "s3", "list_objects_v2", f"list {prefix} (condition: s3:prefix)",
                 lambda c, r, prefix=prefix: {"Bucket": c.buckets["data"], "Prefix": prefix})
          for prefix in {*spec.reads, *spec.writes}),
        *(_probe(DENY, "s3", "put_object", f"write under {prefix}, which it only reads",
                 _object("data", f"{prefix}probes/{job}.json", Body=b"{}")) for prefix in only_read),
        _probe(DENY, "s3", "get_object", "read another job's prefix", _object("data", "reports/housekeeping/x.json")),
        _probe(DENY, "s3", "get_object", "read a sibling of its prefix",
               _object("data", f"{spec.reads[0].rstrip('/')}-old/x.csv")),
        _probe(DENY, "s3", "list_objects_v2", "list the whole data bucket (condition: s3:prefix)",
               lambda c, r: {"Bucket": c.buckets["data"]}),
        _probe(DENY, "s3", "delete_object", "delete its output", _object("data", f"{spec.writes[0]}probes/{job}.json")),
        _probe(DENY, "s3", "get_object", "read a task log", _object("logs", "task-logs/probe/default.log")),
        _probe(DENY, "s3", "get_object", "read a model artifact", _object("ml_artifacts", "models/probe.tar.gz")),
        _probe(DENY, "ecr", "get_authorization_token", "log in to the registry"),
        *_WORKLOADS_DENIED,
    ]  # fmt: skip


def _job_log_group(c: Context) -> str:
    return next(job.log_group(c.env) for job in WORKLOAD_JOBS.values() if job.runs_on == "ecs")


_TRAINING_LOGS = "/aws/sagemaker/TrainingJobs"
_ECS_JOB = next(name for name, job in WORKLOAD_JOBS.items() if job.runs_on == "ecs")
_SAGEMAKER_JOB = next(name for name, job in WORKLOAD_JOBS.items() if job.runs_on == "sagemaker")

WORKLOAD_PROBES: dict[str, list[Probe]] = {
    "ecs-task-execution": [
        _probe(ALLOW, "ecr", "get_authorization_token", "log in to pull"),
        _probe(ALLOW, "ecr", "batch_get_image", "pull an ecs job's image", _image(_ECS_JOB)),
        _probe(ALLOW, "logs", "create_log_stream", "open the task's log stream",
               _log_stream(_job_log_group, f"{_ECS_JOB}/main/probe")),
        _probe(ALLOW, "logs", "put_log_events", "write the task's log", _log_stream(
            _job_log_group, f"{_ECS_JOB}/main/probe", **_EVENTS)),
        _probe(DENY, "ecr", "batch_get_image", "pull a sagemaker job's image", _image(_SAGEMAKER_JOB)),
        _probe(DENY, "ecr", "put_image", "push an ecs job's image", lambda c, r: {
            "repositoryName": WORKLOAD_JOBS[_ECS_JOB].repository(c.env), "imageManifest": "{}", "imageTag": "probe"}),
        _probe(DENY, "logs", "put_log_events", "write another log group", _log_stream(
            lambda c: f"/aws/eks/eksflow-{c.env}/cluster", "probe", **_EVENTS)),
        _probe(DENY, "logs", "delete_log_group", "delete its log group", lambda c, r: {
            "logGroupName": _job_log_group(c)}),
        _READ_DATA, _WRITE_DATA, *_WORKLOADS_DENIED,
    ],
    "sagemaker-execution": [
        _probe(ALLOW, "s3", "get_object", "read the curated training input", _object("data", "curated/_SUCCESS")),
        _probe(ALLOW, "s3", "list_objects_v2", "list the training input (condition: s3:prefix)", lambda c, r: {
            "Bucket": c.buckets["data"], "Prefix": "curated/"}),
        _probe(ALLOW, "s3", "put_object", "write the model artifact", _object(
            "ml_artifacts", "models/probes/model.tar.gz", Body=b"x")),
        _probe(ALLOW, "s3", "get_object", "read a model artifact", _object(
            "ml_artifacts", "models/probes/model.tar.gz")),
        _probe(ALLOW, "ecr", "get_authorization_token", "log in to pull"),
        _probe(ALLOW, "ecr", "batch_get_image", "pull a sagemaker job's image", _image(_SAGEMAKER_JOB)),
        _probe(ALLOW, "logs", "create_log_stream", "open its training job's log stream", lambda c, r: {
            "logGroupName": _TRAINING_LOGS, "logStreamName": f"{sagemaker_name_prefix(c.env)}probe/algo-1"}),
        _probe(DENY, "logs", "create_log_stream", "open another env's training log stream", lambda c, r: {
            "logGroupName": _TRAINING_LOGS, "logStreamName": f"{sagemaker_name_prefix(c.other_env)}probe/algo-1"}),
        _probe(DENY, "s3", "get_object", "read raw data", _object("data", "raw/events/sample.csv")),
        _probe(DENY, "s3", "put_object", "write curated data", _object("data", "curated/probe", Body=b"x")),
        _probe(DENY, "s3", "list_objects_v2", "list the whole data bucket (condition: s3:prefix)", lambda c, r: {
            "Bucket": c.buckets["data"]}),
        _probe(DENY, "s3", "put_object", "write outside models/", _object("ml_artifacts", "other/x", Body=b"x")),
        _probe(DENY, "ecr", "batch_get_image", "pull an ecs job's image", _image(_ECS_JOB)),
        *_WORKLOADS_DENIED,
    ],
    **{f"job:{name}": _job_task_role(name) for name, job in WORKLOAD_JOBS.items() if job.runs_on == "ecs"},
}  # fmt: skip


@dataclass(frozen=True)
class Outcome:
    role: str
    probe: Probe
    got: str  # allow | deny | error
    detail: str

    @property
    def ok(self) -> bool:
        return self.got == self.probe.expect

    def line(self) -> str:
        p = self.probe
        return f"{self.role}: {p.service}:{p.operation} ({p.why}) expected {p.expect}, got {self.got}: {self.detail}"


def run_probe(session, endpoint_url: str, context: Context, role: str, probe: Probe) -> Outcome:
    client = session.client(probe.service, endpoint_url=endpoint_url)
    try:
        getattr(client, probe.operation)(**probe.params(context, role))
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        message = error.response.get("Error", {}).get("Message", "")
        if code in DENIAL_CODES or (status == 403 and code not in {"SignatureDoesNotMatch", "InvalidClientTokenId"}):
            return Outcome(role, probe, DENY, message or code)
        if status == 403:
            return Outcome(role, probe, "error", f"{code}: {message}")
        return Outcome(role, probe, ALLOW, f"{code} (past IAM)")
    return Outcome(role, probe, ALLOW, "succeeded")


def table(outcomes: list[Outcome]) -> str:
    def count(mine: list[Outcome], expect: str) -> str:
        return f"{sum(o.ok for o in mine if o.probe.expect == expect)}/{sum(o.probe.expect == expect for o in mine)}"

    rows = [("role", "allowed (as expected)", "denied (as expected)", "of these, on Conditions", "wrong")]
    for role in dict.fromkeys(o.role for o in outcomes):
        mine = [o for o in outcomes if o.role == role]
        conditions = [o for o in mine if o.probe.condition]
        on_conditions = f"{sum(o.ok for o in conditions)}/{len(conditions)}"
        rows.append((role, count(mine, ALLOW), count(mine, DENY), on_conditions, str(sum(not o.ok for o in mine))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def web_identity_session(
    endpoint_url: str, region: str, role_arn: str, token: str, session_name: str = "probe"
) -> boto3.Session:
    """The pod's path: an unsigned AssumeRoleWithWebIdentity with the projected token, then the role's keys."""
    sts = boto3.client("sts", endpoint_url=endpoint_url, region_name=region, config=Config(signature_version=UNSIGNED))
    credentials = sts.assume_role_with_web_identity(
        RoleArn=role_arn, RoleSessionName=session_name, WebIdentityToken=token
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region,
    )
