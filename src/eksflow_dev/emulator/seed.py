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
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import boto3

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


def _register_etl_step(ecs, prefix: str) -> None:
    ecs.register_task_definition(
        family=f"{prefix}-etl-step",
        networkMode="awsvpc",
        requiresCompatibilities=["FARGATE"],
        cpu="256",
        memory="512",
        containerDefinitions=[
            {
                "name": "etl",
                "image": "public.ecr.aws/docker/library/busybox:stable",
                "essential": True,
                "cpu": 256,
                "memory": 512,
            }
        ],
    )


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
    if not [c for c in ecs.describe_clusters(clusters=[f"{prefix}-batch"])["clusters"] if c["status"] == "ACTIVE"]:
        ecs.create_cluster(clusterName=f"{prefix}-batch")
    if not ecs.list_task_definitions(familyPrefix=f"{prefix}-etl-step")["taskDefinitionArns"]:
        _register_etl_step(ecs, prefix)

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

    result.settings_env = {
        f"{ENV_PREFIX}ENV": env,
        f"{ENV_PREFIX}AWS_ACCOUNT_ID": ACCOUNT_ID,
        f"{ENV_PREFIX}AWS_REGION": region,
        f"{ENV_PREFIX}ECS_SUBNETS": subnet,
        f"{ENV_PREFIX}ECS_SECURITY_GROUPS": group,
    }
    return result
