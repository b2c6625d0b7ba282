"""Seed the local emulator with what the reference pipelines expect to find in an AWS account.

EC2 instances cover every housekeeping case, named by the ``Name`` tag ("managed": ``eksflow:managed=<env>``, the
seeded environment's marker):
- ``managed-idle``: managed, running, CPU ~1 %            -> stopped
- ``managed-busy``: managed, running, CPU ~60 %           -> left running
- ``managed-expired``: managed, TTL tag in the past       -> terminated (when not a dry run)
- ``managed-no-metrics``: managed, running, no CPU data   -> left alone (unknown is not idle)
- ``managed-protected``: managed, ``eksflow:protected=true``, CPU ~1 %, TTL in the past -> never touched
- ``other-env-idle``: managed by another environment, CPU ~1 %, TTL in the past -> never touched
- ``unmanaged-idle``: no managed tag, CPU ~1 %            -> never touched
- ``unmanaged-expired``: TTL tag in the past, not managed  -> never touched
SageMaker endpoints: ``eksflow-<env>-idle`` (managed, no invocations -> deleted when not a dry run),
``eksflow-<env>-in-use`` (managed, invocations -> kept), ``eksflow-<env>-unmanaged`` (no tag -> kept),
``eksflow-<other env>-idle`` (another environment's name and tag, no invocations -> kept: housekeeping does not even
look at it, IAM lets it read only its own environment's names). Models and endpoint configs carry the env's prefix
too (``eksflow-<env>-seed-model``, ``-seed-config``). The SNS topic of the environment's DAG notifications
(``eksflow-<env>-notifications``) exists, with no subscriber.

The jobs (eksflow.jobs) are released as a job repository's workflow releases them, by the release command's own code
(eksflow_dev.job_release, without the announcement): each job's ECR repository (immutable tags) holds an image tagged
with the commit ``SEED_GIT_SHA``, and the etl-step family (its job task role and the ECS execution role) has a
revision whose container runs that image by digest — the family's latest, what the data pipeline runs. The release
queue and its dead-letter queue exist, empty: the seed announces nothing (an announcement would start the pipelines
scheduled on the release Assets; SQS-managed encryption, redrive after ``RELEASE_MAX_RECEIVES`` receives; the release
watchers of the local stack poll them).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import boto3

from eksflow.jobs import (
    JOB_TAG_KEY,
    JOBS,
    ecs_cluster_name,
    ecs_execution_role_name,
    release_dlq_name,
    release_queue_name,
)
from eksflow.platform import (
    PROTECTED_TAG_KEY,
    PROTECTED_TAG_VALUE,
    TTL_TAG_KEY,
    bucket_names,
    managed_tags,
    name_prefix,
    notification_topic_name,
)
from eksflow.settings import ENV_PREFIX

ACCOUNT_ID = "123456789012"
SAMPLE_INPUT_KEY = "raw/events/sample.csv"
SEED_GIT_SHA = "5eed" * 10  # the commit the seeded job images carry as their revision label and tag
# Deliveries before the release queue's redrive moves a message nobody took to the dead-letter queue (Terraform's
# workloads set the AWS queue's own).
RELEASE_MAX_RECEIVES = 5


def other_env(env: str) -> str:
    """Another environment sharing the account: what the seed tags as managed by someone else."""
    return "prod" if env != "prod" else "dev"


# The emulator's dummy keys: any key works while IAM is not enforced.
EMULATOR_KEYS = {"AccessKeyId": "testing", "SecretAccessKey": "testing"}


@dataclass
class SeedResult:
    instances: dict[str, str] = field(default_factory=dict)  # Name tag -> instance id
    endpoints: list[str] = field(default_factory=list)
    settings_env: dict[str, str] = field(default_factory=dict)
    vpc_id: str = ""
    roles: list[str] = field(default_factory=list)  # IAM roles the seed made
    released: dict[str, str] = field(default_factory=dict)  # job -> its released image, pinned by digest
    task_definitions: dict[str, str] = field(default_factory=dict)  # ecs job -> the revision running that image


def emulator_client(endpoint_url: str, service: str, region: str = "eu-west-1", config=None):
    """A boto3 client for the local emulator (its fixed dummy keys); ``config``: a botocore Config."""
    return boto3.session.Session(
        aws_access_key_id=EMULATOR_KEYS["AccessKeyId"],
        aws_secret_access_key=EMULATOR_KEYS["SecretAccessKey"],
        region_name=region,
    ).client(service, endpoint_url=endpoint_url, config=config)


def _put_hourly_metric(cloudwatch, namespace, metric, dimensions, value, hours=6):
    now = dt.datetime.now(dt.UTC)
    cloudwatch.put_metric_data(
        Namespace=namespace,
        MetricData=[
            {
                "MetricName": metric,
                "Dimensions": dimensions,
                "Timestamp": now - dt.timedelta(minutes=30 + 60 * h),
                "Value": value,
                "Unit": "Percent" if metric == "CPUUtilization" else "Count",
            }
            for h in range(hours)
        ],
    )


class _EmulatorSession:
    """What the release command takes as a boto3 session: clients of the emulator."""

    def __init__(self, endpoint_url: str, region: str):
        self.endpoint_url, self.region = endpoint_url, region
        self.clients: dict[str, object] = {}

    def client(self, service: str):
        if service not in self.clients:
            self.clients[service] = emulator_client(self.endpoint_url, service, self.region)
        return self.clients[service]


def _seed_families(ecs, env: str) -> None:
    """Each ecs job's family with a first revision (a stand-in image, replaced by the seeded release), unless one
    exists (Terraform's), tagged with its job as Terraform tags it (ecs-runner runs only revisions so tagged)."""
    account_role = f"arn:aws:iam::{ACCOUNT_ID}:role/"
    for job in (j for j in JOBS.values() if j.runs_on == "ecs"):
        try:
            ecs.describe_task_definition(taskDefinition=job.ecs_family(env))
            continue
        except ecs.exceptions.ClientException:
            pass
        ecs.register_task_definition(
            family=job.ecs_family(env),
            taskRoleArn=account_role + job.task_role_name(env),
            executionRoleArn=account_role + ecs_execution_role_name(env),
            networkMode="awsvpc",
            requiresCompatibilities=["FARGATE"],
            cpu="256",
            memory="512",
            containerDefinitions=[
                {
                    "name": job.container,
                    "image": "public.ecr.aws/docker/library/busybox:stable",
                    "essential": True,
                    "cpu": 256,
                    "memory": 512,
                }
            ],
            tags=[{"key": JOB_TAG_KEY, "value": job.name}],
        )


def create_release_queues(sqs, env: str, *, max_receives: int = RELEASE_MAX_RECEIVES) -> tuple[str, str]:
    """The job-release queue and its dead-letter queue of ``env`` (URLs). Queues that exist (e.g. made by Terraform's
    workloads) are kept as they are: CreateQueue refuses a name that exists with other attributes."""

    def existing(name: str) -> str | None:
        try:
            return sqs.get_queue_url(QueueName=name)["QueueUrl"]
        except sqs.exceptions.QueueDoesNotExist:
            return None

    encrypted = {"SqsManagedSseEnabled": "true"}
    dlq_url = (
        existing(release_dlq_name(env))
        or sqs.create_queue(QueueName=release_dlq_name(env), Attributes=encrypted)["QueueUrl"]
    )
    queue_url = existing(release_queue_name(env))
    if queue_url is None:
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        redrive = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": max_receives})
        attributes = {**encrypted, "RedrivePolicy": redrive}
        queue_url = sqs.create_queue(QueueName=release_queue_name(env), Attributes=attributes)["QueueUrl"]
    return queue_url, dlq_url


def _seed_releases(endpoint_url: str, region: str, env: str, result: SeedResult) -> None:
    """Every job released from commit SEED_GIT_SHA by the release command's own code, announced to no one."""
    from eksflow_dev.job_release import check_request, release
    from eksflow_dev.oci_layout import write_layout

    session = _EmulatorSession(endpoint_url, region)
    ecr = session.client("ecr")
    with tempfile.TemporaryDirectory(prefix="eksflow-seed-image-") as workdir:
        for job in JOBS.values():
            with contextlib.suppress(ecr.exceptions.RepositoryAlreadyExistsException):  # e.g. made by Terraform
                ecr.create_repository(
                    repositoryName=job.repository(env),
                    imageTagMutability="IMMUTABLE",
                    imageScanningConfiguration={"scanOnPush": True},
                )
            labels = {"org.opencontainers.image.revision": SEED_GIT_SHA, "org.opencontainers.image.title": job.name}
            layout = write_layout(Path(workdir) / job.name, labels, (f"the {job.name} job\n".encode(),))
            request = check_request(env=env, job=job.name, image=str(layout), git_sha=SEED_GIT_SHA, region=region)
            outcome = release(request, session=session, announce=False, progress=lambda _: None)
            result.released[job.name] = outcome.release.image
            if outcome.release.task_definition_arn:
                result.task_definitions[job.name] = outcome.release.task_definition_arn


def seed(endpoint_url: str, region: str, env: str = "local") -> SeedResult:

    def client(service: str):
        return emulator_client(endpoint_url, service, region)

    prefix = name_prefix(env)
    result = SeedResult()

    s3 = client("s3")
    existing = {b["Name"] for b in s3.list_buckets()["Buckets"]}  # e.g. made by Terraform
    for bucket in set(bucket_names(env).values()) - existing:
        s3.create_bucket(Bucket=bucket, CreateBucketConfiguration={"LocationConstraint": region})
    s3.put_object(
        Bucket=bucket_names(env)["data"],
        Key=SAMPLE_INPUT_KEY,
        Body=b"user_id,events,churned\n1,42,0\n2,3,1\n",
    )

    ec2 = client("ec2")
    vpc = result.vpc_id = ec2.create_vpc(CidrBlock="10.42.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.42.1.0/24")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName=f"{prefix}-tasks", Description="ECS tasks", VpcId=vpc)["GroupId"]

    # The ECS cluster, the etl-step family and the SageMaker execution role: stand-ins for the local stack, made only
    # where Terraform's workloads module has not made the real ones (the Terraform-applied dev platform): CreateCluster
    # would replace its cluster's settings, and another revision would become the family's latest.
    ecs = client("ecs")
    if not [c for c in ecs.describe_clusters(clusters=[ecs_cluster_name(env)])["clusters"] if c["status"] == "ACTIVE"]:
        ecs.create_cluster(clusterName=ecs_cluster_name(env))  # unless Terraform's exists
    _seed_families(ecs, env)

    iam = client("iam")
    try:
        iam.get_role(RoleName=f"{prefix}-sagemaker-execution")
    except iam.exceptions.NoSuchEntityException:
        result.roles.append(f"{prefix}-sagemaker-execution")
        iam.create_role(
            RoleName=f"{prefix}-sagemaker-execution",
            AssumeRolePolicyDocument=(
                '{"Version":"2012-10-17","Statement":[{"Effect":"Allow",'
                '"Principal":{"Service":"sagemaker.amazonaws.com"},"Action":"sts:AssumeRole"}]}'
            ),
        )

    image_id = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
    past = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    ((key, value),) = managed_tags(env).items()
    managed = {"Key": key, "Value": value}
    ((_, other_value),) = managed_tags(other_env(env)).items()
    by_other = {"Key": key, "Value": other_value}
    expired = {"Key": TTL_TAG_KEY, "Value": past}
    protected = {"Key": PROTECTED_TAG_KEY, "Value": PROTECTED_TAG_VALUE}
    instances = {
        "managed-idle": ([managed], 1.0),
        "managed-busy": ([managed], 60.0),
        "managed-expired": ([managed, expired], 30.0),
        "managed-no-metrics": ([managed], None),
        "managed-protected": ([managed, protected, expired], 1.0),
        "other-env-idle": ([by_other, expired], 1.0),
        "unmanaged-idle": ([], 1.0),
        "unmanaged-expired": ([expired], 1.0),
    }
    cloudwatch = client("cloudwatch")
    for name, (tags, cpu) in instances.items():
        instance = ec2.run_instances(
            ImageId=image_id,
            InstanceType="t3.micro",
            MinCount=1,
            MaxCount=1,
            SubnetId=subnet,
            TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "Name", "Value": name}, *tags]}],
        )["Instances"][0]
        result.instances[name] = instance["InstanceId"]
        if cpu is not None:
            dims = [{"Name": "InstanceId", "Value": instance["InstanceId"]}]
            _put_hourly_metric(cloudwatch, "AWS/EC2", "CPUUtilization", dims, cpu)

    sagemaker = client("sagemaker")
    role_arn = f"arn:aws:iam::{ACCOUNT_ID}:role/{prefix}-sagemaker-execution"
    sagemaker.create_model(
        ModelName=f"{prefix}-seed-model",
        ExecutionRoleArn=role_arn,
        PrimaryContainer={"Image": f"{ACCOUNT_ID}.dkr.ecr.{region}.amazonaws.com/{prefix}-serve:seed"},
    )
    sagemaker.create_endpoint_config(
        EndpointConfigName=f"{prefix}-seed-config",
        ProductionVariants=[
            {
                "VariantName": "primary",
                "ModelName": f"{prefix}-seed-model",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 1,
            }
        ],
    )
    endpoints = {
        f"{prefix}-idle": ([managed], 0),
        f"{prefix}-in-use": ([managed], 25),
        f"{prefix}-unmanaged": ([], 0),
        f"{name_prefix(other_env(env))}-idle": ([by_other], 0),
    }
    for name, (tags, invocations) in endpoints.items():
        sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=f"{prefix}-seed-config", Tags=tags)
        result.endpoints.append(name)
        # Every endpoint has its variant's Invocations for the last 12 h (0 for an idle one): housekeeping counts an
        # endpoint without data as unknown, never idle.
        dims = [{"Name": "EndpointName", "Value": name}, {"Name": "VariantName", "Value": "primary"}]
        _put_hourly_metric(cloudwatch, "AWS/SageMaker", "Invocations", dims, invocations, hours=12)

    # The DAG notifications' topic (Terraform's notifications module makes it on AWS; CreateTopic is idempotent).
    client("sns").create_topic(Name=notification_topic_name(env))
    create_release_queues(client("sqs"), env)
    _seed_releases(endpoint_url, region, env, result)

    result.settings_env = {
        f"{ENV_PREFIX}ENV": env,
        f"{ENV_PREFIX}AWS_ACCOUNT_ID": ACCOUNT_ID,
        f"{ENV_PREFIX}AWS_REGION": region,
        f"{ENV_PREFIX}ECS_SUBNETS": subnet,
        f"{ENV_PREFIX}ECS_SECURITY_GROUPS": group,
    }
    return result
