"""The local emulator's patches, checked over HTTP with plain boto3."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from eksflow.platform import bucket_names
from eksflow_dev.emulator.control import control
from eksflow_dev.local.emulator import running_emulator
from eksflow_dev.local.offline import REGION

CLUSTER, FAMILY = "eksflow-local-batch", "eksflow-local-etl-step"


def run_task(emulator, environment=None, started_by="test"):
    ecs = emulator.client("ecs")
    return ecs.run_task(
        cluster=CLUSTER,
        taskDefinition=FAMILY,
        launchType="FARGATE",
        startedBy=started_by,
        networkConfiguration={
            "awsvpcConfiguration": {
                "subnets": [emulator.seeded.settings_env["EKSFLOW_ECS_SUBNETS"]],
                "securityGroups": [emulator.seeded.settings_env["EKSFLOW_ECS_SECURITY_GROUPS"]],
            }
        },
        overrides={"containerOverrides": [{"name": "etl", "environment": environment or []}]},
    )["tasks"][0]["taskArn"]


def test_ecs_containers_follow_the_task_and_write_their_output(fresh_emulator):
    arn = run_task(fresh_emulator, [{"name": "OUTPUT_URI", "value": "s3://eksflow-local-data/curated/x/"}])
    task = fresh_emulator.client("ecs").describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0]
    assert task["lastStatus"] == "STOPPED" and task["desiredStatus"] == "STOPPED"
    assert [(c["lastStatus"], c["exitCode"]) for c in task["containers"]] == [("STOPPED", 0)]
    body = fresh_emulator.client("s3").get_object(Bucket="eksflow-local-data", Key="curated/x/_SUCCESS")["Body"]
    assert arn.split("/")[-1] in body.read().decode()


def test_a_fargate_task_whose_containers_leave_memory_to_the_task_runs(fresh_emulator):
    """As Terraform's workloads module registers a family: memory on the task only (moto answered RunTask 500)."""
    registered = fresh_emulator.client("ecs").register_task_definition(
        family=FAMILY,
        requiresCompatibilities=["FARGATE"],
        networkMode="awsvpc",
        cpu="256",
        memory="512",
        containerDefinitions=[{"name": "etl", "image": "example/etl:bootstrap", "essential": True}],
    )["taskDefinition"]
    arn = run_task(fresh_emulator)
    task = fresh_emulator.client("ecs").describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0]
    assert task["taskDefinitionArn"] == registered["taskDefinitionArn"]
    assert [(c["lastStatus"], c["exitCode"]) for c in task["containers"]] == [("STOPPED", 0)]


def test_ecs_container_exit_code_comes_from_the_overrides(fresh_emulator):
    arn = run_task(fresh_emulator, [{"name": "EMULATED_EXIT_CODE", "value": "3"}])
    task = fresh_emulator.client("ecs").describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0]
    assert task["containers"][0]["exitCode"] == 3


def test_ecs_revisions_carry_their_registration_time_and_list_by_revision_in_pages(fresh_emulator):
    ecs = fresh_emulator.client("ecs")
    latest = ecs.describe_task_definition(taskDefinition=FAMILY)["taskDefinition"]
    request = {"family": FAMILY, "containerDefinitions": [{"name": "etl", "image": "x", "memory": 512}]}
    added = [ecs.register_task_definition(**request)["taskDefinition"] for _ in range(3)]
    registered = [latest["registeredAt"], *(revision["registeredAt"] for revision in added)]
    assert registered == sorted(registered), "registeredAt follows the registrations"
    assert (
        ecs.describe_task_definition(taskDefinition=added[0]["taskDefinitionArn"])["taskDefinition"]["registeredAt"]
        == added[0]["registeredAt"]
    )
    ecs.deregister_task_definition(taskDefinition=added[1]["taskDefinitionArn"])

    listed = ecs.list_task_definitions(familyPrefix=FAMILY, sort="DESC", maxResults=2)
    assert listed["taskDefinitionArns"] == [added[2]["taskDefinitionArn"], added[0]["taskDefinitionArn"]]
    pages = ecs.get_paginator("list_task_definitions").paginate(
        familyPrefix=FAMILY, status="ACTIVE", sort="DESC", PaginationConfig={"PageSize": 1}
    )
    arns = [page["taskDefinitionArns"] for page in pages]
    assert all(len(page) == 1 for page in arns) and arns[:2] == [
        [added[2]["taskDefinitionArn"]],
        [added[0]["taskDefinitionArn"]],
    ]
    revisions = [int(arn.rsplit(":", 1)[1]) for (arn,) in arns]
    assert revisions == sorted(revisions, reverse=True) and revisions[-1] == 1, revisions
    ascending = ecs.list_task_definitions(familyPrefix=FAMILY)["taskDefinitionArns"]
    assert ascending == [arn for (arn,) in reversed(arns)], "ASC (the default): oldest revision first"
    inactive = ecs.list_task_definitions(familyPrefix=FAMILY, status="INACTIVE")["taskDefinitionArns"]
    assert inactive == [added[1]["taskDefinitionArn"]]
    with pytest.raises(ClientError, match="maxResults"):
        ecs.list_task_definitions(familyPrefix=FAMILY, maxResults=101)


def test_sagemaker_update_endpoint_moves_to_the_new_config(fresh_emulator):
    sagemaker = fresh_emulator.client("sagemaker")
    sagemaker.create_endpoint_config(
        EndpointConfigName="eksflow-local-next",
        ProductionVariants=[
            {
                "VariantName": "primary",
                "ModelName": "eksflow-local-seed-model",
                "InstanceType": "ml.m5.large",
                "InitialInstanceCount": 2,
            }
        ],
    )
    sagemaker.update_endpoint(EndpointName="eksflow-local-idle", EndpointConfigName="eksflow-local-next")
    endpoint = sagemaker.describe_endpoint(EndpointName="eksflow-local-idle")
    assert (endpoint["EndpointConfigName"], endpoint["EndpointStatus"]) == ("eksflow-local-next", "InService")
    with pytest.raises(sagemaker.exceptions.ClientError, match="Could not find endpoint"):
        sagemaker.update_endpoint(EndpointName="eksflow-local-nope", EndpointConfigName="eksflow-local-next")


def test_training_jobs_report_the_configured_metrics(fresh_emulator):
    sagemaker = fresh_emulator.client("sagemaker")
    sagemaker.create_training_job(
        TrainingJobName="eksflow-metrics",
        AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "File"},
        RoleArn="arn:aws:iam::123456789012:role/eksflow-local-sagemaker-execution",
        OutputDataConfig={"S3OutputPath": "s3://eksflow-local-ml-artifacts/"},
        ResourceConfig={"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
    )
    metrics = sagemaker.describe_training_job(TrainingJobName="eksflow-metrics")["FinalMetricDataList"]
    assert {m["MetricName"]: m["Value"] for m in metrics} == {"validation:auc": 0.91, "train:auc": 0.95}


def test_ecs_tasks_take_the_configured_time(tmp_path):
    # Long enough that a busy machine cannot outrun it; then shortened at runtime, which running tasks follow.
    with running_emulator(tmp_path, {"EKSFLOW_EMULATOR_JOB_SECONDS": "600"}) as emulator:
        arn = run_task(emulator, started_by="slow")
        ecs = emulator.client("ecs")
        assert ecs.describe_tasks(cluster=CLUSTER, tasks=[arn])["tasks"][0]["lastStatus"] == "RUNNING"
        assert ecs.list_tasks(cluster=CLUSTER, startedBy="slow", desiredStatus="RUNNING")["taskArns"] == [arn]
        _control(emulator, "job-seconds", "1")
        waiter = ecs.get_waiter("tasks_stopped")
        waiter.wait(cluster=CLUSTER, tasks=[arn], WaiterConfig={"Delay": 1, "MaxAttempts": 30})


def _cluster(emulator, name="eksflow-test"):
    eks = emulator.client("eks")
    eks.create_cluster(
        name=name,
        roleArn="arn:aws:iam::123456789012:role/cluster",
        resourcesVpcConfig={"subnetIds": []},
        accessConfig={"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False},
    )
    return eks


def test_eks_addons_have_a_create_read_delete_cycle(fresh_emulator):
    eks = _cluster(fresh_emulator)
    created = eks.create_addon(clusterName="eksflow-test", addonName="coredns", tags={"a": "b"})["addon"]
    assert created["status"] == "ACTIVE" and created["tags"] == {"a": "b"}
    assert eks.describe_addon(clusterName="eksflow-test", addonName="coredns")["addon"] == created
    assert eks.list_addons(clusterName="eksflow-test")["addons"] == ["coredns"]
    eks.delete_addon(clusterName="eksflow-test", addonName="coredns")
    with pytest.raises(eks.exceptions.ResourceNotFoundException):
        eks.describe_addon(clusterName="eksflow-test", addonName="coredns")
    with pytest.raises(eks.exceptions.InvalidRequestException, match="not emulated by eksflow: POST addons/x/update"):
        eks.update_addon(clusterName="eksflow-test", addonName="x")


def test_eks_access_entries_and_policies_keep_arn_paths_apart(fresh_emulator):
    eks = _cluster(fresh_emulator)
    principal = "arn:aws:iam::123456789012:role/path/deployer"
    policy = "arn:aws:eks::aws:cluster-access-policy/AmazonEKSAdminPolicy"
    eks.create_access_entry(clusterName="eksflow-test", principalArn=principal)
    scope = {"type": "namespace", "namespaces": ["eksflow"]}
    eks.associate_access_policy(clusterName="eksflow-test", principalArn=principal, policyArn=policy, accessScope=scope)
    listed = eks.list_associated_access_policies(clusterName="eksflow-test", principalArn=principal)
    assert [(p["policyArn"], p["accessScope"]) for p in listed["associatedAccessPolicies"]] == [(policy, scope)]
    assert eks.describe_access_entry(clusterName="eksflow-test", principalArn=principal)["accessEntry"]["type"] == (
        "STANDARD"
    )
    eks.disassociate_access_policy(clusterName="eksflow-test", principalArn=principal, policyArn=policy)
    eks.delete_access_entry(clusterName="eksflow-test", principalArn=principal)
    assert eks.list_access_entries(clusterName="eksflow-test")["accessEntries"] == []
    with pytest.raises(eks.exceptions.ResourceNotFoundException):
        eks.create_addon(clusterName="no-such-cluster", addonName="coredns")


def test_eks_cluster_and_nodegroup_read_back_what_was_written(fresh_emulator):
    eks = _cluster(fresh_emulator)
    cluster = eks.describe_cluster(name="eksflow-test")["cluster"]
    assert cluster["accessConfig"] == {"authenticationMode": "API", "bootstrapClusterCreatorAdminPermissions": False}
    eks.create_nodegroup(
        clusterName="eksflow-test",
        nodegroupName="tasks",
        subnets=["subnet-1"],
        nodeRole="arn:aws:iam::123456789012:role/node",
        updateConfig={"maxUnavailable": 1},
    )
    nodegroup = eks.describe_nodegroup(clusterName="eksflow-test", nodegroupName="tasks")["nodegroup"]
    assert "remoteAccess" not in nodegroup and nodegroup["updateConfig"] == {"maxUnavailable": 1}


def test_revoking_an_unknown_security_group_rule_is_not_found_as_in_aws(fresh_emulator):
    ec2 = fresh_emulator.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName="rules", Description="rules", VpcId=vpc)["GroupId"]
    with pytest.raises(ec2.exceptions.ClientError, match=r"InvalidSecurityGroupRuleId\.NotFound"):
        ec2.revoke_security_group_ingress(GroupId=group, SecurityGroupRuleIds=["sgr-00000000000000000"])


def test_deleting_a_launch_template_already_gone_is_not_found_by_id_as_in_aws(fresh_emulator):
    """The provider reads InvalidLaunchTemplateId.NotFound as "already gone" (a retried delete under load)."""
    ec2 = fresh_emulator.client("ec2")
    template = ec2.create_launch_template(LaunchTemplateName="gone", LaunchTemplateData={})["LaunchTemplate"]
    ec2.delete_launch_template(LaunchTemplateId=template["LaunchTemplateId"])
    with pytest.raises(ec2.exceptions.ClientError, match=r"InvalidLaunchTemplateId\.NotFound"):
        ec2.delete_launch_template(LaunchTemplateId=template["LaunchTemplateId"])


def test_bucket_policies_see_secure_transport_and_skip_statements_whose_condition_fails(fresh_emulator):
    """The platform's buckets deny requests without TLS (Deny when aws:SecureTransport is false). moto used to
    deny every object call under such a policy; the emulator stands in for AWS's HTTPS endpoints."""
    s3 = fresh_emulator.client("s3")
    bucket = "eksflow-local-data"

    def policy(secure_transport: str) -> str:
        return json.dumps({"Version": "2012-10-17", "Statement": [{
            "Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "s3:*",
            "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": secure_transport}},
        }]})  # fmt: skip

    s3.put_bucket_policy(Bucket=bucket, Policy=policy("false"))
    s3.put_object(Bucket=bucket, Key="tls-only/ok", Body=b"x")
    s3.put_bucket_policy(Bucket=bucket, Policy=policy("true"))  # the condition now holds: the Deny applies
    with pytest.raises(ClientError) as denied:
        s3.put_object(Bucket=bucket, Key="tls-only/denied", Body=b"x")
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def _control(emulator, path: str, body: str | None = None) -> dict:
    return control(emulator.url, path, body)


def _train(sagemaker, name: str) -> None:
    sagemaker.create_training_job(
        TrainingJobName=name,
        RoleArn="arn:aws:iam::123456789012:role/eksflow-local-sagemaker-execution",
        AlgorithmSpecification={"TrainingImage": "train:1", "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": "s3://eksflow-local-ml-artifacts/models/"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
    )


def test_job_seconds_make_training_jobs_and_endpoints_take_that_long(fresh_emulator):
    import time

    sagemaker = fresh_emulator.client("sagemaker")
    try:
        assert _control(fresh_emulator, "job-seconds", "600") == {"job_seconds": 600.0}  # no busy machine outruns it
        _train(sagemaker, "eksflow-slow-train")
        sagemaker.create_endpoint(EndpointName="eksflow-slow", EndpointConfigName="eksflow-local-seed-config")
        assert (
            sagemaker.describe_training_job(TrainingJobName="eksflow-slow-train")["TrainingJobStatus"] == "InProgress"
        )
        assert sagemaker.describe_endpoint(EndpointName="eksflow-slow")["EndpointStatus"] == "Creating"

        _control(fresh_emulator, "job-seconds", "1.5")
        _train(sagemaker, "eksflow-short-train")
        sagemaker.create_endpoint(EndpointName="eksflow-short", EndpointConfigName="eksflow-local-seed-config")
        time.sleep(1.6)
        assert sagemaker.describe_training_job(TrainingJobName="eksflow-short-train")["TrainingJobStatus"] == (
            "Completed"
        )
        assert sagemaker.describe_endpoint(EndpointName="eksflow-short")["EndpointStatus"] == "InService"
    finally:
        _control(fresh_emulator, "job-seconds", "0")
    _train(sagemaker, "eksflow-fast-train")
    assert sagemaker.describe_training_job(TrainingJobName="eksflow-fast-train")["TrainingJobStatus"] == "Completed"


def test_fault_windows_refuse_like_aws_and_botocore_retries_ride_them_out(fresh_emulator):
    from botocore.config import Config

    from eksflow_dev.emulator.seed import emulator_client

    def client(service: str, attempts: int):
        retries = Config(retries={"mode": "adaptive", "max_attempts": attempts})
        return emulator_client(fresh_emulator.url, service, config=retries)

    once = {service: client(service, 1) for service in ("sagemaker", "ec2", "s3", "ecs")}
    patient = {service: client(service, 10) for service in ("sagemaker", "ecs")}  # the platform's config
    # Each refusal check runs in a window no busy machine outlives (30 s); each ride-out starts a fresh short
    # window right before its call (a new window replaces the open one), so its first attempt is surely refused.
    _control(fresh_emulator, "stats/reset", "")
    window = {"kind": "throttle", "seconds": 30, "services": ["sagemaker", "ec2"]}
    _control(fresh_emulator, "faults", json.dumps(window))
    with pytest.raises(ClientError) as throttled:
        once["sagemaker"].list_endpoints()
    assert throttled.value.response["Error"]["Code"] == "ThrottlingException"
    with pytest.raises(ClientError) as throttled:
        once["ec2"].describe_instances()
    assert throttled.value.response["Error"]["Code"] == "RequestLimitExceeded"
    once["s3"].list_buckets()  # other services are served
    _control(fresh_emulator, "faults", json.dumps({**window, "seconds": 2}))
    assert patient["sagemaker"].list_endpoints()["Endpoints"], "the platform's retry config rides it out"
    stats = _control(fresh_emulator, "stats")
    assert stats["faults_injected"] >= 3
    assert stats["calls"]["sagemaker:ListEndpoints"] >= 3 and stats["calls"]["s3"] == 1

    _control(fresh_emulator, "faults", json.dumps({"kind": "unavailable", "seconds": 30}))
    with pytest.raises(ClientError) as unavailable:
        once["ecs"].list_clusters()
    assert unavailable.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503
    _control(fresh_emulator, "faults", json.dumps({"kind": "unavailable", "seconds": 1}))
    assert patient["ecs"].list_clusters()["clusterArns"]


def test_control_api_refuses_bad_input_naming_it(fresh_emulator):
    import urllib.error

    with pytest.raises(urllib.error.HTTPError) as refused:
        _control(fresh_emulator, "faults", json.dumps({"kind": "flood"}))
    assert refused.value.code == 400 and b"kind must be 'throttle' or 'unavailable'" in refused.value.read()


def test_a_retried_invocation_gets_the_first_attempts_answer_instead_of_running_twice(fresh_emulator):
    """Under load a client may give up on a queued request and retry it (same amz-sdk-invocation-id): the
    Terraform AWS provider's retried CreateRole then failed with EntityAlreadyExists on what the first made."""
    import urllib.parse
    import urllib.request

    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    def create_role(invocation: str, attempt: int) -> tuple[int, str]:
        body = urllib.parse.urlencode(
            {
                "Action": "CreateRole",
                "Version": "2010-05-08",
                "RoleName": "eksflow-retried",
                "AssumeRolePolicyDocument": json.dumps({"Version": "2012-10-17", "Statement": []}),
            }
        )
        headers = {
            "Content-Type": "application/x-www-form-urlencoded",
            "amz-sdk-invocation-id": invocation,
            "amz-sdk-request": f"attempt={attempt}; max=3",
        }
        signed = AWSRequest(method="POST", url=fresh_emulator.url + "/", data=body, headers=headers)
        SigV4Auth(Credentials("testing", "testing"), "iam", "us-east-1").add_auth(signed)
        request = urllib.request.Request(  # noqa: S310 - the local emulator
            fresh_emulator.url + "/", data=body.encode(), headers=dict(signed.headers)
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - the local emulator
                return response.status, response.read().decode()
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode()

    first = create_role("5f0e-invocation-1", 1)
    assert first[0] == 200
    assert create_role("5f0e-invocation-1", 2) == first  # the retry: the same answer, nothing made twice
    again = create_role("5f0e-invocation-2", 1)  # a new invocation still runs, and fails as AWS would
    assert again[0] == 409 and "EntityAlreadyExists" in again[1]


def test_iam_audit_lets_every_call_through_and_records_each_one_outside_the_callers_policy_with_its_task(
    fresh_emulator,
):
    """`eksflow check`'s action-level role fit: enforcement off, the emulator evaluates calls signed by a role's
    session anyway and records the would-be denials with the X-Eksflow-Task header; the fixed keys are not audited."""
    iam = fresh_emulator.client("iam")
    trust = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}],
    }
    role = iam.create_role(RoleName="audited", AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "*"}]}
    iam.put_role_policy(RoleName="audited", PolicyName="p", PolicyDocument=json.dumps(policy))
    keys = fresh_emulator.client("sts").assume_role(RoleArn=role, RoleSessionName="probe")["Credentials"]
    session = boto3.session.Session(
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
        region_name=REGION,
    )
    s3 = session.client("s3", endpoint_url=fresh_emulator.url)
    s3.meta.events.register("before-send.s3.*", lambda request, **_: request.headers.update({"X-Eksflow-Task": "d.t"}))
    control(fresh_emulator.url, "iam-audit", "on")
    try:
        bucket = bucket_names("local")["data"]
        s3.list_objects_v2(Bucket=bucket)  # allowed
        assert "Buckets" in s3.list_buckets()  # outside the policy: recorded, not refused
        fresh_emulator.client("s3").list_buckets()  # the fixed keys: no principal to evaluate
        denials = control(fresh_emulator.url, "iam-audit")["denials"]
    finally:
        control(fresh_emulator.url, "iam-audit", "off")
    assert denials == [
        {
            "principal": "arn:aws:sts::123456789012:assumed-role/audited/probe",
            "action": "s3:ListAllMyBuckets",
            "resource": "arn:aws:s3:::*",
            "task": "d.t",
        }
    ]


def test_ecr_digests_hash_the_manifest_and_blobs_are_served_where_ecr_points(fresh_emulator):
    """An image's revision label lives in its config blob: reading it needs ECR's digests (SHA-256 of the manifest;
    moto hashed the layer digests, so two configs on the same layers shared one) and GetDownloadUrlForLayer."""
    import urllib.request

    from tests.support.ecr import REVISION_LABEL, create_repository, digest, image_config, push_image

    ecr = fresh_emulator.client("ecr")
    repository = create_repository(ecr)
    first = push_image(ecr, "a", {REVISION_LABEL: "a"}, layer=b"same layer")
    second = push_image(ecr, "b", {REVISION_LABEL: "b"}, layer=b"same layer")
    assert first != second
    (image,) = ecr.batch_get_image(repositoryName=repository, imageIds=[{"imageTag": "a"}])["images"]
    assert digest(image["imageManifest"].encode()) == first
    config = json.loads(image["imageManifest"])["config"]["digest"]
    url = ecr.get_download_url_for_layer(repositoryName=repository, layerDigest=config)["downloadUrl"]
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - the emulator
        assert response.read() == image_config({REVISION_LABEL: "a"})
    with pytest.raises(ClientError, match="LayersNotFoundException"):
        ecr.get_download_url_for_layer(repositoryName=repository, layerDigest="sha256:" + "0" * 64)
