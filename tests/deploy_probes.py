"""Least-privilege probes of the GitHub Actions roles (terraform/modules/github_oidc), one list per CI stage and per
job repository's release role: the calls of its job (must get past IAM) and calls outside it (must be denied). Run by
tests/test_deploy_roles.py with each role's web-identity session (a GitHub-like token of the stage's or job
repository's `sub`) against the applied dev platform, IAM enforced. The probe machinery (outcomes, the table) is
tests/probes.py's.

They change nothing that outlives them: ECR writes are refused by the repository (an existing immutable tag, an
upload nobody completes), IAM changes name roles that do not exist, EC2 creates name a VPC that does not exist, the
lock object a probe takes is released by the next one, a task-definition revision is refused past IAM (a container
without memory), a message is refused past IAM (longer than SQS takes). Conditions the emulator evaluates here are
marked "(condition ...)": ``s3:prefix`` of the state listing, ``iam:PolicyARN`` of attachments, ``aws:RequestTag`` of
KMS CreateKey and of RegisterTaskDefinition, ``ecs:CreateAction`` and ``iam:PassedToService`` of its implicit checks.
"""

from __future__ import annotations

from dataclasses import dataclass

from eksflow.jobs import JOB_TAG_KEY, JOBS, ecs_execution_role_name, sagemaker_execution_role_name
from eksflow.platform import ecr_repository_name
from tests.probes import ALLOW, DENY, TOO_LONG, Probe, _probe, other_envs_queue

IMAGE_TAG = "0123456789abcdef0123456789abcdef01234567"  # main's image, pushed by the test as the push workflow does
_CONFIG = "sha256:" + "1" * 64  # the config blob its manifest names (tests/test_deploy_roles.py MANIFEST)
STAGES = ("push", "image-tag", "plan", "infra", "release")


@dataclass(frozen=True)
class DeployContext:
    env: str
    other_env: str
    account: str
    region: str
    state_bucket: str
    state_keys: dict[str, str]  # env -> its state key
    buckets: dict[str, str]
    role_arns: dict[str, str]  # stage -> its role
    db_secret_arn: str
    image_manifest: str  # main's image manifest (IMAGE_TAG; pushed to every job repository too)
    release_queue_url: str = ""
    release_dlq_url: str = ""

    @property
    def state_key(self) -> str:
        return self.state_keys[self.env]

    def cluster(self, env: str | None = None) -> str:
        return f"eksflow-{env or self.env}"


_LIFECYCLE = '{"rules": [{"rulePriority": 1, "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": 1}, "action": {"type": "expire"}}]}'  # noqa: E501


def _repo(**params):
    return lambda c, r: {"repositoryName": ecr_repository_name(), **params}


def _state(kind: str, **params):
    """An S3 call on the state bucket: kind = state | lock | other-env."""

    def build(c: DeployContext, r: str) -> dict:
        key = {"state": c.state_key, "lock": f"{c.state_key}.tflock", "other-env": c.state_keys[c.other_env]}[kind]
        return {"Bucket": c.state_bucket, "Key": key, **params}

    return build


_READ_STATE = _probe(ALLOW, "s3", "get_object", "read its env's state", _state("state"))
_LIST_STATE = _probe(ALLOW, "s3", "list_objects_v2", "list its state key (condition: s3:prefix)", lambda c, r: {
    "Bucket": c.state_bucket, "Prefix": c.state_key})  # fmt: skip
_TAKE_LOCK = _probe(ALLOW, "s3", "put_object", "take the state lock", _state("lock", Body=b"{}"))
_RELEASE_LOCK = _probe(ALLOW, "s3", "delete_object", "release the state lock", _state("lock"))
_DESCRIBE_CLUSTER = _probe(ALLOW, "eks", "describe_cluster", "describe its env's cluster", lambda c, r: {
    "name": c.cluster()})  # fmt: skip

# Outside every stage's job but its own, each denied by IAM.
_OTHER_ENVS_STATE = _probe(DENY, "s3", "get_object", "read another env's state", _state("other-env"))
_LIST_STATE_BUCKET = _probe(DENY, "s3", "list_objects_v2", "list the whole state bucket (condition: s3:prefix)",
                            lambda c, r: {"Bucket": c.state_bucket})  # fmt: skip
_WRITE_STATE = _probe(DENY, "s3", "put_object", "overwrite the state", _state("state", Body=b"{}"))
_TAKE_LOCK_DENIED = _probe(DENY, "s3", "put_object", "take the state lock", _state("lock", Body=b"{}"))
_READ_STATE_DENIED = _probe(DENY, "s3", "get_object", "read the state", _state("state"))
_READ_DATA = _probe(DENY, "s3", "get_object", "read curated data", lambda c, r: {
    "Bucket": c.buckets["data"], "Key": "curated/_SUCCESS"})  # fmt: skip
_READ_LOGS = _probe(DENY, "s3", "get_object", "read a task log", lambda c, r: {
    "Bucket": c.buckets["logs"], "Key": "task-logs/probe/default.log"})  # fmt: skip
_DB_SECRET = _probe(DENY, "secretsmanager", "get_secret_value", "read the metadata DB password", lambda c, r: {
    "SecretId": c.db_secret_arn})  # fmt: skip
_CREATE_USER = _probe(DENY, "iam", "create_user", "create an IAM user", lambda c, r: {"UserName": "eksflow-probe"})
_ACCESS_KEY = _probe(DENY, "iam", "create_access_key", "mint an access key for a user", lambda c, r: {
    "UserName": "eksflow-terraform-admin"})  # fmt: skip
_BECOME_INFRA = _probe(DENY, "sts", "assume_role", "become the infra role", lambda c, r: {
    "RoleArn": c.role_arns["infra"], "RoleSessionName": "probe"})  # fmt: skip
_BECOME_RELEASE = _probe(DENY, "sts", "assume_role", "become the release role", lambda c, r: {
    "RoleArn": c.role_arns["release"], "RoleSessionName": "probe"})  # fmt: skip
_PUSH_LAYER = _probe(DENY, "ecr", "initiate_layer_upload", "upload an image layer", _repo())
_PUT_IMAGE = _probe(DENY, "ecr", "put_image", "tag an image", lambda c, r: {
    "repositoryName": ecr_repository_name(), "imageManifest": c.image_manifest, "imageTag": IMAGE_TAG})  # fmt: skip
_DELETE_IMAGES = _probe(DENY, "ecr", "batch_delete_image", "delete an image", _repo(imageIds=[{"imageTag": IMAGE_TAG}]))
_READ_IMAGE = _probe(
    DENY, "ecr", "batch_get_image", "pull an image manifest", _repo(imageIds=[{"imageTag": IMAGE_TAG}])
)
_OTHER_CLUSTER = _probe(DENY, "eks", "describe_cluster", "describe another env's cluster", lambda c, r: {
    "name": c.cluster(c.other_env)})  # fmt: skip
_DESCRIBE_CLUSTER_DENIED = _probe(DENY, "eks", "describe_cluster", "describe the cluster", lambda c, r: {
    "name": c.cluster()})  # fmt: skip
_DELETE_OTHER_DB = _probe(DENY, "rds", "delete_db_instance", "delete another env's metadata DB", lambda c, r: {
    "DBInstanceIdentifier": f"eksflow-{c.other_env}-metadata", "SkipFinalSnapshot": True})  # fmt: skip
# moto creates a VPC even with DryRun: a subnet in a VPC that does not exist is refused past IAM, changing nothing.
_CREATE_SUBNET = _probe(DENY, "ec2", "create_subnet", "create a subnet", lambda c, r: {
    "VpcId": "vpc-0000000000000000f", "CidrBlock": "10.99.0.0/24"})  # fmt: skip
_DESCRIBE_VPCS_DENIED = _probe(DENY, "ec2", "describe_vpcs", "list VPCs")
_CREATE_ROLE = _probe(DENY, "iam", "create_role", "create a role of its env", lambda c, r: {
    "RoleName": f"eksflow-{c.env}-probe", "AssumeRolePolicyDocument": "{}"})  # fmt: skip
_OWN_POLICY = _probe(DENY, "iam", "put_role_policy", "rewrite its own policy", lambda c, r: {
    "RoleName": c.role_arns[r].rsplit("/", 1)[1], "PolicyName": "probe", "PolicyDocument": "{}"})  # fmt: skip

PROBES: dict[str, list[Probe]] = {
    "push": [
        _probe(ALLOW, "ecr", "get_authorization_token", "log in to the registry"),
        _probe(ALLOW, "ecr", "initiate_layer_upload", "upload a layer of main's image", _repo()),
        _probe(ALLOW, "ecr", "batch_check_layer_availability", "skip layers already pushed", _repo(
            layerDigests=["sha256:" + "0" * 64])),
        _probe(ALLOW, "ecr", "batch_get_image", "verify an existing :<sha> (its manifest)", _repo(
            imageIds=[{"imageTag": IMAGE_TAG}])),
        _probe(ALLOW, "ecr", "get_download_url_for_layer", "verify its revision label (the config blob)", _repo(
            layerDigest=_CONFIG)),
        _probe(DENY, "ecr", "initiate_layer_upload", "upload to another repository", lambda c, r: {
            "repositoryName": "eksflow/other"}),
        _probe(DENY, "ecr", "delete_repository", "delete the repository", _repo(force=True)),
        _probe(DENY, "ecr", "set_repository_policy", "open the repository to others", _repo(policyText="{}")),
        _probe(DENY, "ecr", "put_lifecycle_policy", "expire released images", _repo(lifecyclePolicyText=_LIFECYCLE)),
        _DELETE_IMAGES, _READ_STATE_DENIED, _DESCRIBE_CLUSTER_DENIED, _DB_SECRET, _CREATE_USER, _BECOME_RELEASE,
        _DESCRIBE_VPCS_DENIED,
    ],
    "image-tag": [
        _probe(ALLOW, "ecr", "batch_get_image", "read main's image manifest", _repo(
            imageIds=[{"imageTag": IMAGE_TAG}])),
        _probe(ALLOW, "ecr", "get_download_url_for_layer", "verify main's revision label (the config blob)", _repo(
            layerDigest=_CONFIG)),
        _probe(DENY, "ecr", "describe_images", "list the repository's images", _repo()),
        _probe(ALLOW, "ecr", "put_image", "put main's manifest under a tag (this one exists: refused past IAM)",
               lambda c, r: {"repositoryName": ecr_repository_name(), "imageManifest": c.image_manifest,
                             "imageTag": IMAGE_TAG}),
        _PUSH_LAYER,
        _probe(DENY, "ecr", "upload_layer_part", "upload layer data", _repo(
            uploadId="probe", partFirstByte=0, partLastByte=0, layerPartBlob=b"x")),
        _probe(DENY, "ecr", "complete_layer_upload", "complete a layer upload", _repo(
            uploadId="probe", layerDigests=["sha256:" + "0" * 64])),
        _probe(DENY, "ecr", "batch_check_layer_availability", "check layers for a push", _repo(
            layerDigests=["sha256:" + "0" * 64])),
        _probe(DENY, "ecr", "get_authorization_token", "log in to push with docker"),
        _probe(DENY, "ecr", "put_image", "tag an image in another repository", lambda c, r: {
            "repositoryName": "eksflow/other", "imageManifest": c.image_manifest, "imageTag": "v1.0.0"}),
        _probe(DENY, "ecr", "delete_repository", "delete the repository", _repo(force=True)),
        _DELETE_IMAGES, _READ_STATE_DENIED, _DESCRIBE_CLUSTER_DENIED, _DB_SECRET, _CREATE_USER, _BECOME_RELEASE,
    ],
    "plan": [
        _READ_STATE, _LIST_STATE, _TAKE_LOCK, _RELEASE_LOCK, _DESCRIBE_CLUSTER,
        _probe(ALLOW, "iam", "get_role", "refresh a role of the stack", lambda c, r: {
            "RoleName": f"eksflow-{c.env}-github-plan"}),
        _probe(ALLOW, "ec2", "describe_vpcs", "refresh the VPC"),
        _probe(ALLOW, "rds", "describe_db_instances", "refresh the metadata DB", lambda c, r: {
            "DBInstanceIdentifier": f"eksflow-{c.env}-metadata"}),
        _probe(ALLOW, "s3", "get_bucket_versioning", "refresh a bucket", lambda c, r: {"Bucket": c.buckets["data"]}),
        _probe(ALLOW, "ecr", "describe_repositories", "refresh the repository", lambda c, r: {
            "repositoryNames": [ecr_repository_name()]}),
        _WRITE_STATE, _OTHER_ENVS_STATE, _LIST_STATE_BUCKET, _READ_DATA, _READ_LOGS, _DB_SECRET, _PUT_IMAGE,
        _READ_IMAGE, _CREATE_ROLE, _OWN_POLICY, _CREATE_SUBNET, _DELETE_OTHER_DB, _BECOME_INFRA,
        _probe(DENY, "iam", "get_role", "read another env's role", lambda c, r: {
            "RoleName": f"eksflow-{c.other_env}-github-plan"}),
    ],
    "infra": [
        _READ_STATE, _LIST_STATE, _TAKE_LOCK, _RELEASE_LOCK, _DESCRIBE_CLUSTER,
        _probe(ALLOW, "iam", "delete_role_policy", "change a role of its env", lambda c, r: {
            "RoleName": f"eksflow-{c.env}-probe-missing", "PolicyName": "probe"}),
        _probe(ALLOW, "iam", "attach_role_policy", "attach an EKS managed policy (condition: iam:PolicyARN)",
               lambda c, r: {"RoleName": f"eksflow-{c.env}-probe-missing",
                             "PolicyArn": "arn:aws:iam::aws:policy/AmazonEKSClusterPolicy"}),
        _probe(ALLOW, "ec2", "create_subnet", "create its network (a subnet in a VPC that does not exist)",
               lambda c, r: {"VpcId": "vpc-0000000000000000f", "CidrBlock": "10.99.0.0/24"}),
        _probe(ALLOW, "s3", "get_bucket_versioning", "refresh a bucket", lambda c, r: {"Bucket": c.buckets["data"]}),
        _CREATE_USER, _ACCESS_KEY, _OTHER_ENVS_STATE, _LIST_STATE_BUCKET, _READ_DATA, _READ_LOGS, _DB_SECRET,
        _PUT_IMAGE, _PUSH_LAYER, _OTHER_CLUSTER, _DELETE_OTHER_DB, _BECOME_RELEASE,
        _probe(DENY, "iam", "create_role", "create a role of another env", lambda c, r: {
            "RoleName": f"eksflow-{c.other_env}-probe", "AssumeRolePolicyDocument": "{}"}),
        _probe(DENY, "iam", "delete_role_policy", "change a role of another env", lambda c, r: {
            "RoleName": f"eksflow-{c.other_env}-github-infra", "PolicyName": "stage"}),
        _probe(DENY, "iam", "attach_role_policy", "attach AdministratorAccess (condition: iam:PolicyARN)",
               lambda c, r: {"RoleName": f"eksflow-{c.env}-probe-missing",
                             "PolicyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
        _probe(DENY, "iam", "create_open_id_connect_provider", "trust another identity provider", lambda c, r: {
            "Url": "https://issuer.example.com", "ClientIDList": ["sts.amazonaws.com"],
            "ThumbprintList": ["0" * 40]}),
        _probe(DENY, "kms", "create_key", "create a key for another env (condition: aws:RequestTag)", lambda c, r: {
            "Tags": [{"TagKey": "eksflow:env", "TagValue": c.other_env}]}),
        _probe(DENY, "kms", "create_key", "create an untagged key (condition: aws:RequestTag)"),
    ],
    "release": [
        _READ_STATE, _LIST_STATE, _DESCRIBE_CLUSTER,
        _probe(ALLOW, "secretsmanager", "get_secret_value", "read the metadata DB secret", lambda c, r: {
            "SecretId": c.db_secret_arn}),
        _probe(ALLOW, "ecr", "batch_get_image", "the image's manifest: its digest", _repo(
            imageIds=[{"imageTag": IMAGE_TAG}])),
        _probe(ALLOW, "ecr", "get_download_url_for_layer", "its revision label (the config blob)", _repo(
            layerDigest=_CONFIG)),
        _TAKE_LOCK_DENIED, _WRITE_STATE, _OTHER_ENVS_STATE, _LIST_STATE_BUCKET, _READ_DATA, _READ_LOGS,
        _OTHER_CLUSTER, _PUT_IMAGE, _PUSH_LAYER, _CREATE_USER, _BECOME_INFRA, _DESCRIBE_VPCS_DENIED,
        _probe(DENY, "secretsmanager", "get_secret_value", "read another secret", lambda c, r: {
            "SecretId": "airflow/connections/probe"}),
        _probe(DENY, "eks", "delete_cluster", "delete another env's cluster", lambda c, r: {
            "name": c.cluster(c.other_env)}),
        _probe(DENY, "rds", "describe_db_instances", "inspect the metadata DB"),
    ],
}  # fmt: skip


# --- The job repositories' release roles (terraform/modules/github_oidc jobs.tf), keyed by job: role key = job name.


def _job_repo(job: str | None = None, **params):
    """A call on a job's repository (the probing role's own when ``job`` is None)."""
    return lambda c, r: {"repositoryName": JOBS[job or r].repository(c.env), **params}


def _other_job(r: str) -> str:
    return next(name for name in sorted(JOBS) if name != r)


def _family(c: DeployContext, r: str) -> str:
    """The probing job's family; a sagemaker job has none: the first ecs job's."""
    job = JOBS[r] if JOBS[r].runs_on == "ecs" else next(j for j in JOBS.values() if j.runs_on == "ecs")
    return job.ecs_family(c.env)


def _role(c: DeployContext, name: str) -> str:
    return f"arn:aws:iam::{c.account}:role/{name}"


def _revision(tag_value=lambda r: r, task_role=None, **extra):
    """A RegisterTaskDefinition of the probing job's family (or the first ecs family) as the release makes it —
    tagged, its task role and the execution role passed — whose container has no memory: refused past IAM."""

    def build(c: DeployContext, r: str) -> dict:
        job = JOBS[r]
        own_role = _role(c, job.task_role_name(c.env)) if job.runs_on == "ecs" else None
        value = tag_value(r)
        return {
            "family": _family(c, r),
            "containerDefinitions": [{"name": "probe", "image": "probe"}],
            "taskRoleArn": (task_role(c, r) if task_role else own_role) or _role(c, ecs_execution_role_name(c.env)),
            "executionRoleArn": _role(c, ecs_execution_role_name(c.env)),
            **({"tags": [{"key": JOB_TAG_KEY, "value": value}]} if value else {}),
            **extra,
        }

    return build


def _send(url_of, body: str = TOO_LONG):
    return lambda c, r: {"QueueUrl": url_of(c), "MessageBody": body}


def job_probes(job: str) -> list[Probe]:
    ecs = JOBS[job].runs_on == "ecs"
    mine = ALLOW if ecs else DENY
    return [
        _probe(ALLOW, "ecr", "get_authorization_token", "log in to the registry"),
        _probe(ALLOW, "ecr", "initiate_layer_upload", "upload a layer of its image", _job_repo()),
        _probe(ALLOW, "ecr", "batch_check_layer_availability", "skip layers already pushed", _job_repo(
            layerDigests=["sha256:" + "0" * 64])),
        _probe(ALLOW, "ecr", "put_image", "push its image's manifest (this tag exists: refused past IAM)",
               lambda c, r: {**_job_repo()(c, r), "imageManifest": c.image_manifest, "imageTag": IMAGE_TAG}),
        _probe(ALLOW, "ecr", "batch_get_image", "resolve its image's digest", _job_repo(
            imageIds=[{"imageTag": IMAGE_TAG}])),
        _probe(ALLOW, "ecr", "describe_images", "read its images", _job_repo()),
        _probe(ALLOW, "sqs", "send_message", "announce its release (too long: refused past IAM)",
               _send(lambda c: c.release_queue_url)),
        _probe(mine, "ecs", "describe_task_definition", "read its family's latest revision to copy it",
               lambda c, r: {"taskDefinition": _family(c, r)}),
        _probe(mine, "ecs", "register_task_definition",
               "register a revision of its family tagged with its job (condition: aws:RequestTag, ecs:CreateAction, "
               "iam:PassedToService)", _revision()),
        _probe(DENY, "ecs", "register_task_definition", "register an untagged revision (condition: aws:RequestTag)",
               _revision(tag_value=lambda r: "")),
        _probe(DENY, "ecs", "register_task_definition",
               "register a revision tagged with another job (condition: aws:RequestTag)", _revision(_other_job)),
        _probe(DENY, "ecs", "register_task_definition", "pass the SageMaker execution role as a task role",
               _revision(task_role=lambda c, r: _role(c, sagemaker_execution_role_name(c.env)))),
        _probe(DENY, "ecs", "run_task", "run a task", lambda c, r: {
            "cluster": f"eksflow-{c.env}-batch", "taskDefinition": _family(c, r)}),
        _probe(DENY, "ecs", "deregister_task_definition", "deregister a revision", lambda c, r: {
            "taskDefinition": f"{_family(c, r)}:1"}),
        _probe(DENY, "ecr", "initiate_layer_upload", "upload to another job's repository",
               lambda c, r: _job_repo(_other_job(r))(c, r)),
        _probe(DENY, "ecr", "batch_get_image", "read another job's image",
               lambda c, r: _job_repo(_other_job(r), imageIds=[{"imageTag": IMAGE_TAG}])(c, r)),
        _probe(DENY, "ecr", "put_image", "push to the platform's Airflow repository", lambda c, r: {
            "repositoryName": ecr_repository_name(), "imageManifest": c.image_manifest, "imageTag": "v9.9.9"}),
        _probe(DENY, "ecr", "batch_delete_image", "delete its images", _job_repo(imageIds=[{"imageTag": IMAGE_TAG}])),
        _probe(DENY, "ecr", "put_lifecycle_policy", "expire its released images", _job_repo(
            lifecyclePolicyText=_LIFECYCLE)),
        _probe(DENY, "ecr", "delete_repository", "delete its repository", _job_repo(force=True)),
        _probe(DENY, "sqs", "send_message", "write to the dead-letter queue", _send(lambda c: c.release_dlq_url)),
        _probe(DENY, "sqs", "send_message", "announce a release to another env", _send(other_envs_queue)),
        _probe(DENY, "sqs", "receive_message", "read the releases", lambda c, r: {"QueueUrl": c.release_queue_url}),
        _probe(DENY, "sqs", "purge_queue", "drop the releases", lambda c, r: {"QueueUrl": c.release_queue_url}),
        _probe(DENY, "iam", "put_role_policy", "rewrite its own policy", lambda c, r: {
            "RoleName": JOBS[r].github_release_role_name(c.env), "PolicyName": "probe", "PolicyDocument": "{}"}),
        _probe(DENY, "sts", "assume_role", "become the role its job runs as", lambda c, r: {
            "RoleArn": _role(c, JOBS[r].task_role_name(c.env) if JOBS[r].runs_on == "ecs"
                             else sagemaker_execution_role_name(c.env)), "RoleSessionName": "probe"}),
        _READ_DATA, _DB_SECRET, _READ_STATE_DENIED, _DESCRIBE_CLUSTER_DENIED,
    ]  # fmt: skip
