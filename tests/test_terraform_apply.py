"""terraform/envs/dev applied for real against the AWS emulator over HTTP (every resource: VPC, EKS with
node groups/add-ons/access entries, RDS, S3, ECR, KMS, the workloads — ECS cluster, task definitions, job roles,
log groups and repositories, the SageMaker execution role, the release queues —, IRSA, GitHub OIDC, alarms;
tests/dev_platform.py), then: a second plan with no changes, cross-checks against the role model, the DAG settings
and the chart rendered with the generated values layer, and (at the end of the session) a destroy that leaves nothing.

No drift filter: where moto read attributes back differently from AWS, the emulator was fixed instead
(src/eksflow_dev/emulator/eks.py, infra.py), so any change in the second plan fails this test.
Wall time is dominated by the AWS provider itself: it sleeps 60 s before its first DescribeDBInstances on
create and delete, and polls an S3 lifecycle configuration for ~55 s until it reads back stable.
"""

from __future__ import annotations

import json

import pytest
import yaml

from eksflow.jobs import (
    JOB_TAG_KEY,
    JOBS,
    ecs_cluster_name,
    ecs_execution_role_name,
    release_dlq_name,
    release_queue_name,
)
from eksflow.platform import (
    CONTROL_PLANE,
    MANAGED_TAG_KEY,
    NAMESPACE,
    PROTECTED_TAG_KEY,
    PROTECTED_TAG_VALUE,
    bucket_names,
    ecr_repository_name,
    endpoint_tags,
    managed_tag_value,
    managed_tags,
    sagemaker_name_prefix,
    secrets_backend_prefixes,
)
from eksflow.releases import ecr_registry
from eksflow.roles import ROLES
from eksflow.settings import load_settings
from eksflow_dev.emulator.conditions import request_tags, resource_tags
from eksflow_dev.local.offline import REGION
from tests.dev_platform import ENV
from tests.helm import DEV_VALUES, render
from tests.support.iam_policy import allows

ACCOUNT = "123456789012"  # the emulator's

pytestmark = pytest.mark.slow


def test_second_plan_shows_no_changes(dev_platform):
    plan = dev_platform.terraform("plan", "-detailed-exitcode", "-input=false", check=False)
    assert plan.returncode == 0, f"second plan is not clean (exit {plan.returncode}):\n{plan.stdout[-6000:]}"


def test_every_rendered_service_account_assumes_the_role_that_trusts_exactly_it(dev_platform):
    """Chart rendered with values-dev.yaml + the Terraform-generated layer: each annotated service account
    is in the chart's namespace, and the IAM role it names trusts exactly that account, audience STS."""
    iam = dev_platform.client("iam")
    issuer = dev_platform.outputs["cluster_oidc_issuer"]
    accounts = [
        doc
        for doc in render(dev_platform.values_layer, base=DEV_VALUES, namespace=NAMESPACE)
        if doc["kind"] == "ServiceAccount" and "eks.amazonaws.com/role-arn" in doc["metadata"].get("annotations", {})
    ]
    expected = {r.service_account for r in ROLES.values()} | {c.service_account for c in CONTROL_PLANE}
    assert {doc["metadata"]["name"] for doc in accounts} == expected
    for doc in accounts:
        name, namespace = doc["metadata"]["name"], doc["metadata"].get("namespace", NAMESPACE)
        assert namespace == NAMESPACE
        role_name = doc["metadata"]["annotations"]["eks.amazonaws.com/role-arn"].rsplit("/", 1)[1]
        trust = iam.get_role(RoleName=role_name)["Role"]["AssumeRolePolicyDocument"]
        (statement,) = trust["Statement"]
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert statement["Condition"]["StringEquals"] == {
            f"{issuer}:sub": f"system:serviceaccount:{NAMESPACE}:{name}",
            f"{issuer}:aud": "sts.amazonaws.com",
        }


def test_every_role_of_the_role_model_has_its_iam_role(dev_platform):
    assert set(dev_platform.outputs["task_role_arns"]) == set(ROLES)
    assert set(dev_platform.outputs["control_plane_role_arns"]) == {c.name for c in CONTROL_PLANE}
    for role in ROLES.values():
        assert dev_platform.outputs["task_role_arns"][role.name].endswith(f":role/{role.iam_role_name(ENV)}")


# What dev's housekeeping may act on, as IAM reads it: the managed tag naming dev, and no protected tag.
THIS_ENV_UNPROTECTED = {
    "StringEquals": {f"aws:ResourceTag/{MANAGED_TAG_KEY}": managed_tag_value(ENV)},
    "StringNotEqualsIgnoreCase": {f"aws:ResourceTag/{PROTECTED_TAG_KEY}": PROTECTED_TAG_VALUE},
}


def test_ec2_ops_may_stop_terminate_and_delete_only_what_dev_manages_and_nobody_protects(dev_platform):
    """Row 7, as applied: the conditions are read here and in test_terraform.py; the emulator enforces them
    (test_emulator_iam.py, test_least_privilege.py), and the kit re-checks (test_kit_operators.py, test_dags_e2e.py)."""
    statements = _statements(dev_platform, "ec2-ops")
    stop = statements["StopOrTerminateThisEnvsUnprotectedInstancesOnly"]
    assert set(stop["Action"]) == {"ec2:StopInstances", "ec2:TerminateInstances"}
    assert stop["Condition"] == THIS_ENV_UNPROTECTED
    delete = statements["DeleteThisEnvsUnprotectedEndpointsOnly"]
    assert _as_list(delete["Action"]) == ["sagemaker:DeleteEndpoint"]
    assert delete["Condition"] == THIS_ENV_UNPROTECTED
    acting = {"ec2:StopInstances", "ec2:TerminateInstances", "sagemaker:DeleteEndpoint"}
    assert not [s for s in statements.values() if "Condition" not in s and acting & set(_as_list(s["Action"]))]
    documents = [_policy(dev_platform, "ec2-ops")]
    instance = f"arn:aws:ec2:eu-west-1:{ACCOUNT}:instance/i-0123456789abcdef0"
    assert allows(documents, "ec2:TerminateInstances", instance, resource_tags(managed_tags(ENV)))
    assert not allows(documents, "ec2:TerminateInstances", instance, resource_tags(managed_tags("prod")))


def test_sagemaker_runner_may_tag_endpoints_only_with_the_kits_tags(dev_platform):
    """Row 7, as applied: AddTags only as part of CreateEndpoint with Tags (sagemaker:TaggingAction), only with the
    managed and protected keys, managed = dev, protected = true, on endpoints no other environment manages;
    ListTags/Create elsewhere unchanged."""
    statements = _statements(dev_platform, "sagemaker-runner")
    assert "sagemaker:AddTags" not in _as_list(statements["ManagePrefixedResources"]["Action"])
    tag = statements["TagEndpointsWithHousekeepingTagsOnly"]
    assert _as_list(tag["Action"]) == ["sagemaker:AddTags"]
    assert _as_list(tag["Resource"]) == [f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:endpoint/eksflow-{ENV}-*"]
    conditions = tag["Condition"]
    assert set(conditions) == {"StringEquals", "ForAllValues:StringEquals", "StringEqualsIfExists"}
    assert conditions["StringEquals"] == {"sagemaker:TaggingAction": "CreateEndpoint"}
    assert sorted(_as_list(conditions["ForAllValues:StringEquals"]["aws:TagKeys"])) == sorted(
        [MANAGED_TAG_KEY, PROTECTED_TAG_KEY]
    )
    assert conditions["StringEqualsIfExists"] == {
        f"aws:RequestTag/{MANAGED_TAG_KEY}": managed_tag_value(ENV),
        f"aws:RequestTag/{PROTECTED_TAG_KEY}": PROTECTED_TAG_VALUE,
        f"aws:ResourceTag/{MANAGED_TAG_KEY}": managed_tag_value(ENV),
    }
    documents = [_policy(dev_platform, "sagemaker-runner")]
    endpoint = f"arn:aws:sagemaker:eu-west-1:{ACCOUNT}:endpoint/eksflow-{ENV}-churn"
    kit_tags = endpoint_tags(ENV, managed=True, protected=True)  # what the ML pipeline creates its endpoint with
    at_create = {"sagemaker:TaggingAction": "CreateEndpoint"}  # the AddTags of CreateEndpoint with Tags
    assert allows(documents, "sagemaker:AddTags", endpoint, {**request_tags(kit_tags), **at_create})
    assert not allows(documents, "sagemaker:AddTags", endpoint, request_tags(kit_tags)), "a plain AddTags"
    assert not allows(
        documents, "sagemaker:AddTags", endpoint, {**request_tags({PROTECTED_TAG_KEY: "false"}), **at_create}
    )


def test_with_the_secrets_backend_on_every_role_may_read_only_airflows_secrets(dev_platform):
    """Row 13, as applied (the emulator's dev platform turns the backend on, see tests/dev_platform.py): each role
    of the role model has the secrets-backend policy, GetSecretValue on the role model's prefixes and nothing else;
    test_least_privilege.py probes it with IAM enforced."""
    iam = dev_platform.client("iam")
    names = [r.iam_role_name(ENV) for r in ROLES.values()] + [c.iam_role_name(ENV) for c in CONTROL_PLANE]
    expected = sorted(
        f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:{prefix}/*"
        for prefix in secrets_backend_prefixes(ENV).values()
    )
    kinds = ("connections", "variables")
    assert expected == sorted(f"arn:aws:secretsmanager:eu-west-1:{ACCOUNT}:secret:eksflow/{ENV}/{k}/*" for k in kinds)
    for name in names:
        policy = iam.get_role_policy(RoleName=name, PolicyName="secrets-backend")["PolicyDocument"]
        (statement,) = policy["Statement"]
        assert (statement["Effect"], _as_list(statement["Action"])) == ("Allow", ["secretsmanager:GetSecretValue"])
        assert sorted(_as_list(statement["Resource"])) == expected, name
        assert "Condition" not in statement


def test_every_sagemaker_grant_names_only_devs_prefix(dev_platform):
    """Environments may share an account: each SageMaker resource the sagemaker-runner, ec2-ops and triggerer roles
    are granted is named eksflow-dev-* (the kit's names, eksflow.kit.naming), never the eksflow-* of all."""
    iam = dev_platform.client("iam")
    names = {role: ROLES[role].iam_role_name(ENV) for role in ("sagemaker-runner", "ec2-ops")}
    names["triggerer"] = next(c.iam_role_name(ENV) for c in CONTROL_PLANE if c.name == "triggerer")
    for role, name in names.items():
        policy = iam.get_role_policy(RoleName=name, PolicyName="job")["PolicyDocument"]
        arns = [
            arn
            for statement in policy["Statement"]
            for arn in _as_list(statement["Resource"])
            if arn.startswith("arn:aws:sagemaker:")
        ]
        assert arns, role
        for arn in arns:
            assert arn.split(":", 5)[5].split("/", 1)[1] == f"{sagemaker_name_prefix(ENV)}*", (role, arn)


def _policy(platform, role: str, name: str = "job") -> dict:
    return platform.client("iam").get_role_policy(RoleName=ROLES[role].iam_role_name(ENV), PolicyName=name)[
        "PolicyDocument"
    ]


def test_buckets_and_repository_are_the_ones_dags_and_chart_use(dev_platform):
    assert dev_platform.outputs["bucket_names"] == bucket_names(ENV) == load_settings({"EKSFLOW_ENV": ENV}).buckets
    assert dev_platform.outputs["ecr_repository_url"].endswith(f"/{ecr_repository_name()}")
    created = {b["Name"] for b in dev_platform.client("s3").list_buckets()["Buckets"]}
    assert set(bucket_names(ENV).values()) <= created


def test_dev_example_values_match_what_terraform_generates(dev_platform):
    """values-dev.yaml carries example ARNs for account 123456789012 — the emulator's account — so they must
    equal the generated layer exactly; a renamed role or bucket breaks this test, not a deploy."""
    generated = yaml.safe_load(dev_platform.values_layer.read_text())
    example = yaml.safe_load(DEV_VALUES.read_text())
    assert example["region"] == generated["region"]
    assert example["image"]["repository"] == generated["image"]["repository"]
    assert example["controlPlane"] == generated["controlPlane"]
    assert {k: v["iamRoleArn"] for k, v in example["workers"]["roles"].items()} == {
        k: v["iamRoleArn"] for k, v in generated["workers"]["roles"].items()
    }
    assert example["airflow"]["remoteLogging"]["bucket"] == generated["airflow"]["remoteLogging"]["bucket"]
    assert example["networkPolicy"]["databaseCidrs"] == generated["networkPolicy"]["databaseCidrs"]
    assert example["networkPolicy"]["apiServerIngressFrom"] == generated["networkPolicy"]["apiServerIngressFrom"]


def test_the_generated_layer_starts_ecs_tasks_in_the_applied_subnets_and_task_security_group(dev_platform):
    """`make chart-values` takes the ecs jobs' network from the outputs: the VPC's private subnets and the tasks'
    security group, as they exist after the apply."""
    generated = yaml.safe_load(dev_platform.values_layer.read_text())["dagSettings"]
    outputs = dev_platform.outputs
    assert generated["ecsSubnets"] == outputs["ecs_task_subnet_ids"] and generated["ecsSubnets"]
    assert generated["ecsSecurityGroups"] == outputs["ecs_task_security_group_ids"] and generated["ecsSecurityGroups"]
    ec2 = dev_platform.client("ec2")
    subnets = ec2.describe_subnets(SubnetIds=generated["ecsSubnets"])["Subnets"]
    assert not any(subnet["MapPublicIpOnLaunch"] for subnet in subnets)
    (group,) = ec2.describe_security_groups(GroupIds=generated["ecsSecurityGroups"])["SecurityGroups"]
    assert {subnet["VpcId"] for subnet in subnets} == {group["VpcId"]}


def _statements(platform, role: str) -> dict[str, dict]:
    return {s["Sid"]: s for s in _policy(platform, role)["Statement"]}


def test_dag_settings_of_dev_are_what_the_roles_may_use(dev_platform):
    """The ECS cluster, task definition and SageMaker execution role the DAGs use in dev (their defaults) are
    the ones dev's tfvars let ecs-runner and sagemaker-runner touch."""
    settings = load_settings({"EKSFLOW_ENV": ENV})
    ecs = _statements(dev_platform, "ecs-runner")
    # One RunTask statement per ecs job's family: its revisions only when tagged with the job.
    run_tasks = {st["Resource"]: st for st in ecs.values() if st["Action"] == "ecs:RunTask"}
    families = {job.ecs_family(ENV): job.name for job in JOBS.values() if job.runs_on == "ecs"}
    assert set(run_tasks) == {f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{f}:*" for f in families}
    for arn, statement in run_tasks.items():
        job = families[arn.rsplit("/", 1)[-1].removesuffix(":*")]
        assert statement["Condition"]["StringEquals"] == {f"aws:ResourceTag/{JOB_TAG_KEY}": job}, statement
    run_task = run_tasks[f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{settings.ecs_task_definition}:*"]
    allowed_clusters = _as_list(run_task["Condition"]["ArnEquals"]["ecs:cluster"])
    assert any(arn.endswith(f":cluster/{settings.ecs_cluster}") for arn in allowed_clusters)
    tasks = _as_list(ecs["WatchAndStopTasks"]["Resource"])
    assert any(f":task/{settings.ecs_cluster}/" in arn for arn in tasks)
    pass_role = _statements(dev_platform, "sagemaker-runner")["PassExecutionRole"]
    assert _as_list(pass_role["Resource"]) == [settings.sagemaker_execution_role_arn]


def _as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_the_runners_may_run_what_the_job_repositories_released_with_the_role_models_names(dev_platform):
    """The "released" policies: ecs-runner reads and lists revisions (to find the one a release registered) and
    registers none — no RegisterTaskDefinition in any of its policies, and it passes roles only as RunTask does (the
    "job" policy); sagemaker-runner lists the images of exactly the SageMaker jobs' repositories."""
    ecs = {s["Sid"]: s for s in _policy(dev_platform, "ecs-runner", "released")["Statement"]}
    assert {sid: (st["Action"], st["Resource"]) for sid, st in ecs.items()} == {
        "ReadTaskDefinitions": ("ecs:DescribeTaskDefinition", "*"),
        "ListRevisionsToPinARun": ("ecs:ListTaskDefinitions", "*"),
    }  # no resource type: the revision to run is found by listing and reading its family's
    every = json.dumps([_policy(dev_platform, "ecs-runner", name) for name in ("job", "released")])
    assert "ecs:RegisterTaskDefinition" not in every
    sagemaker = {s["Sid"]: s for s in _policy(dev_platform, "sagemaker-runner", "released")["Statement"]}
    assert sorted(_as_list(sagemaker["FindReleasedJobImages"]["Resource"])) == sorted(
        f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{job.repository(ENV)}"
        for job in JOBS.values()
        if job.runs_on == "sagemaker"
    )


def test_devs_notification_topic_is_the_dag_settings_encrypted_with_its_own_key_for_its_publishers(dev_platform):
    """The topic the kit's notifier publishes to in dev (the DAG settings derive it from env, region and account) is
    the one Terraform made, encrypted with the notifications module's customer-managed key, whose policy lets the
    publishing roles (every task role and the dag-processor) use it through SNS only."""
    outputs = dev_platform.outputs
    settings = load_settings({"EKSFLOW_ENV": ENV, "EKSFLOW_AWS_ACCOUNT_ID": ACCOUNT, "EKSFLOW_AWS_REGION": REGION})
    assert outputs["notification_topic_arn"] == settings.notification_topic_arn
    attributes = dev_platform.client("sns").get_topic_attributes(TopicArn=settings.notification_topic_arn)["Attributes"]
    key_id = attributes["KmsMasterKeyId"]
    assert key_id.startswith("arn:aws:kms:"), key_id  # the module's key, not the AWS-managed alias/aws/sns
    policy = json.loads(dev_platform.client("kms").get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    (publishers,) = [s for s in policy["Statement"] if s["Sid"] == "PublishersEncryptThroughSns"]
    expected = {*outputs["task_role_arns"].values(), outputs["control_plane_role_arns"]["dag-processor"]}
    assert set(_as_list(publishers["Principal"]["AWS"])) == expected
    assert publishers["Condition"] == {"StringEquals": {"kms:ViaService": f"sns.{REGION}.amazonaws.com"}}


def test_database_alarms_notify_the_alarm_topic(dev_platform):
    alarms = dev_platform.client("cloudwatch").describe_alarms(AlarmNamePrefix=f"eksflow-{ENV}-metadata-db-")
    metrics = {alarm["MetricName"]: alarm for alarm in alarms["MetricAlarms"]}
    assert set(metrics) == {"CPUUtilization", "FreeStorageSpace", "FreeableMemory", "DatabaseConnections"}
    for alarm in metrics.values():
        assert alarm["AlarmActions"] == [dev_platform.outputs["alarm_topic_arn"]] == alarm["OKActions"]
        assert alarm["Dimensions"] == [{"Name": "DBInstanceIdentifier", "Value": f"eksflow-{ENV}-metadata"}]


def test_the_api_server_may_authorize_against_the_auth_managers_policy_store_only(dev_platform):
    """The AWS auth manager calls GetSchema at start-up and (Batch)IsAuthorized per request. The emulator
    serves no Verified Permissions, so this checks the applied policy, and that it names values-dev.yaml's store."""
    store = yaml.safe_load(DEV_VALUES.read_text())["auth"]["aws"]["avpPolicyStoreId"]
    role = f"eksflow-{ENV}-api-server"
    policy = dev_platform.client("iam").get_role_policy(RoleName=role, PolicyName="job")["PolicyDocument"]
    (statement,) = policy["Statement"]
    actions = {
        "verifiedpermissions:GetSchema",
        "verifiedpermissions:IsAuthorized",
        "verifiedpermissions:BatchIsAuthorized",
    }
    assert set(statement["Action"]) == actions
    resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
    assert resources == [f"arn:aws:verifiedpermissions::123456789012:policy-store/{store}"]


def test_the_clusters_vpc_cni_enforces_network_policies(dev_platform):
    """The chart's NetworkPolicies (default deny, the DB rule, no IMDS) are only enforced when the VPC CNI add-on
    runs its network policy agent."""
    cluster = dev_platform.outputs["cluster_name"]
    addon = dev_platform.client("eks").describe_addon(clusterName=cluster, addonName="vpc-cni")["addon"]
    assert json.loads(addon.get("configurationValues") or "{}").get("enableNetworkPolicy") == "true", addon


# ---------------------------------------------------------------------------------------------------------------
# Issue 14: the workloads (terraform/modules/workloads) as applied.


def test_every_job_of_the_role_model_has_its_immutable_scanned_repository(dev_platform):
    ecr = dev_platform.client("ecr")
    assert set(dev_platform.outputs["job_repository_urls"]) == set(JOBS)
    for name, job in JOBS.items():
        (repository,) = ecr.describe_repositories(repositoryNames=[job.repository(ENV)])["repositories"]
        assert dev_platform.outputs["job_repository_urls"][name] == repository["repositoryUri"]
        assert repository["imageTagMutability"] == "IMMUTABLE", name
        assert repository["imageScanningConfiguration"] == {"scanOnPush": True}, name
        assert repository["encryptionConfiguration"]["encryptionType"] == "KMS", name
        rules = json.loads(ecr.get_lifecycle_policy(repositoryName=job.repository(ENV))["lifecyclePolicyText"])["rules"]
        assert {(r["selection"]["tagStatus"], r["selection"]["countType"]) for r in rules} == {
            ("untagged", "sinceImagePushed"),
            ("any", "imageCountMoreThan"),
        }, name


def test_every_ecs_job_has_its_family_log_group_and_task_role_on_the_fargate_cluster(dev_platform):
    """The cluster (Fargate capacity, Container Insights on); per ecs job its family's latest revision (Terraform's,
    or a release's that copied it: test_deploy_roles.py) — Fargate, awsvpc, the role model's container logging to
    the job's log group, its task role and the execution role, the job's tag —, its log group (retention, the module's
    KMS key) and its task role, trusted by ECS tasks of this account."""
    ecs, logs, iam = (dev_platform.client(service) for service in ("ecs", "logs", "iam"))
    (cluster,) = ecs.describe_clusters(clusters=[ecs_cluster_name(ENV)], include=["SETTINGS"])["clusters"]
    assert cluster["status"] == "ACTIVE"
    assert dev_platform.outputs["ecs_cluster_name"] == cluster["clusterName"]
    assert {"name": "containerInsights", "value": "enabled"} in cluster["settings"]
    assert set(cluster["capacityProviders"]) == {"FARGATE", "FARGATE_SPOT"}
    ecs_jobs = {name: job for name, job in JOBS.items() if job.runs_on == "ecs"}
    assert dev_platform.outputs["ecs_task_definition_families"] == [job.ecs_family(ENV) for job in ecs_jobs.values()]
    for name, job in ecs_jobs.items():
        described = ecs.describe_task_definition(taskDefinition=job.ecs_family(ENV), include=["TAGS"])
        definition = described["taskDefinition"]
        assert (definition["requiresCompatibilities"], definition["networkMode"]) == (["FARGATE"], "awsvpc")
        assert definition["taskRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/{job.task_role_name(ENV)}"
        assert definition["executionRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/{ecs_execution_role_name(ENV)}"
        (container,) = definition["containerDefinitions"]
        assert container["name"] == job.container
        assert container["logConfiguration"]["logDriver"] == "awslogs"
        assert container["logConfiguration"]["options"]["awslogs-group"] == job.log_group(ENV)
        assert {"key": JOB_TAG_KEY, "value": name} in described["tags"]
        (group,) = logs.describe_log_groups(logGroupNamePrefix=job.log_group(ENV))["logGroups"]
        assert group["retentionInDays"] == 365 and group["kmsKeyId"].startswith("arn:aws:kms:"), group
        trust = iam.get_role(RoleName=job.task_role_name(ENV))["Role"]["AssumeRolePolicyDocument"]
        (statement,) = trust["Statement"]
        assert statement["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
        assert statement["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}


def test_the_release_queue_redrives_into_its_dlq_both_encrypted_with_their_key_and_tls_only(dev_platform):
    sqs = dev_platform.client("sqs")
    outputs = dev_platform.outputs
    queue = sqs.get_queue_attributes(QueueUrl=outputs["release_queue_url"], AttributeNames=["All"])["Attributes"]
    dlq = sqs.get_queue_attributes(QueueUrl=outputs["release_dlq_url"], AttributeNames=["All"])["Attributes"]
    assert queue["QueueArn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT}:{release_queue_name(ENV)}"
    assert dlq["QueueArn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT}:{release_dlq_name(ENV)}"
    assert json.loads(queue["RedrivePolicy"]) == {"deadLetterTargetArn": dlq["QueueArn"], "maxReceiveCount": 5}
    assert json.loads(dlq["RedriveAllowPolicy"]) == {
        "redrivePermission": "byQueue",
        "sourceQueueArns": [queue["QueueArn"]],
    }
    assert int(dlq["MessageRetentionPeriod"]) > int(queue["MessageRetentionPeriod"])
    assert queue["KmsMasterKeyId"] == dlq["KmsMasterKeyId"]
    assert queue["KmsMasterKeyId"].startswith("arn:aws:kms:"), "a customer-managed key, not alias/aws/sqs"
    for attributes in (queue, dlq):
        (statement,) = json.loads(attributes["Policy"])["Statement"]
        assert (statement["Effect"], statement["Principal"], statement["Action"]) == ("Deny", "*", "sqs:*")
        assert statement["Resource"] == attributes["QueueArn"]
        assert statement["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}


def test_every_family_cluster_repository_and_role_the_dag_settings_name_is_an_applied_output(dev_platform):
    """What the DAGs run in dev (load_settings with dev's env: the defaults the chart's settings carry) exists: the
    ECS cluster and family (with the container ecs_overrides names), the SageMaker execution role, and the
    repository of every job whose released image a DAG runs (released_image, ecs_run_task(job=...))."""
    settings = load_settings({"EKSFLOW_ENV": ENV, "EKSFLOW_AWS_ACCOUNT_ID": ACCOUNT, "EKSFLOW_AWS_REGION": REGION})
    outputs = dev_platform.outputs
    assert settings.ecs_cluster == outputs["ecs_cluster_name"]
    assert settings.ecs_task_definition in outputs["ecs_task_definition_families"]
    described = dev_platform.client("ecs").describe_task_definition(taskDefinition=settings.ecs_task_definition)
    assert settings.ecs_container in [c["name"] for c in described["taskDefinition"]["containerDefinitions"]]
    assert settings.sagemaker_execution_role_arn == outputs["sagemaker_execution_role_arn"]
    for job in JOBS.values():
        url = f"{ecr_registry(ACCOUNT, REGION)}/{job.repository(ENV)}"
        assert url in outputs["job_repository_urls"].values(), job.name
