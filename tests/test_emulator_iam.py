"""IAM enforcement in the emulator along the IRSA path: an unsigned AssumeRoleWithWebIdentity (as a pod's SDK
sends it) returns the role's session only if the role's trust policy admits the token's service account,
issuer (an existing OIDC provider) and audience; that session is held to the role's policy — allowed calls
pass, anything else is denied naming the action; statements scoped to resources (SageMaker names, EC2
instances) and the implicit iam:PassRole (and sagemaker:AddTags of a create with Tags) are checked per
request, Secrets Manager calls against the secret's ARN, as AWS does; and the policies' Conditions hold or
deny per request (tags, tag keys, sagemaker:TaggingAction, iam:PassedToService, ecs:cluster, s3:prefix) — the
platform's own roles, made by terraform/modules/irsa as `make up IAM=1` makes them, on the seeded emulator.
Runs its own emulators: enforcement stays on once switched on."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from eksflow.jobs import JOB_TAG_KEY, ecs_execution_role_name, get_job
from eksflow.platform import PROTECTED_TAG_KEY, bucket_names, endpoint_tags, managed_tags
from eksflow.roles import ROLES
from eksflow_dev.cluster import iam_roles
from eksflow_dev.cluster.pki import ISSUER as LOCAL_CLUSTER_ISSUER
from eksflow_dev.emulator.control import bootstrap_admin, control, set_iam_enforcement
from eksflow_dev.emulator.seed import emulator_client, other_env
from eksflow_dev.local.emulator import running_emulator
from eksflow_dev.local.offline import REGION
from tests.probes import web_identity_session
from tests.support.web_identity import SERVICE_ACCOUNTS, irsa_trust_policy, service_account_token
from tests.terraform_cli import terraform_binary

ISSUER = "oidc.eks.eu-west-1.amazonaws.com/id/EKSFLOWTEST"
UNREGISTERED_ISSUER = "oidc.eks.eu-west-1.amazonaws.com/id/NOPROVIDER"  # no IAM OIDC provider for it
SERVICE_ACCOUNT = ROLES["default"].service_account
OTHER_SERVICE_ACCOUNT = ROLES["ecs-runner"].service_account
ACCOUNT = "123456789012"
OTHER_ROLE, UNREGISTERED_ROLE = "eksflow-test-task-ecs-runner", "eksflow-test-unregistered-issuer"
SAGEMAKER = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"
SECRETS = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}"
ECS_TASK_ROLE, TRAINING_ROLE = "eksflow-test-etl-task", "eksflow-test-training"
PASSED_TO_ECS = {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
PASSED_TO_SAGEMAKER = {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
# A family whose revisions are tagged with a job (revision -> the tag's value; None: untagged).
TAGGED_FAMILY = "eksflow-test-job"
REVISION_TAGS = {1: "etl-step", 2: None, 3: "train"}


@pytest.fixture(scope="module")
def enforced(tmp_path_factory):
    with running_emulator(tmp_path_factory.mktemp("emulator-iam"), seeded=False) as emulator:
        iam, s3 = emulator.client("iam"), emulator.client("s3")
        provider = iam.create_open_id_connect_provider(
            Url=f"https://{ISSUER}", ClientIDList=["sts.amazonaws.com"], ThumbprintList=["9" * 40]
        )["OpenIDConnectProviderArn"]
        unregistered = f"arn:aws:iam::{ACCOUNT}:oidc-provider/{UNREGISTERED_ISSUER}"
        trusts = {  # as terraform/modules/irsa writes them
            "eksflow-test-task-default": irsa_trust_policy(provider, SERVICE_ACCOUNT),
            OTHER_ROLE: irsa_trust_policy(provider, OTHER_SERVICE_ACCOUNT),
            UNREGISTERED_ROLE: irsa_trust_policy(unregistered, SERVICE_ACCOUNT),
        }
        for name, trust in trusts.items():
            iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))
        role = iam.get_role(RoleName="eksflow-test-task-default")
        s3.create_bucket(Bucket="eksflow-test-logs", CreateBucketConfiguration={"LocationConstraint": REGION})
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::eksflow-test-logs"}],
        }
        ec2 = emulator.client("ec2")
        image = ec2.describe_images(Owners=["amazon"])["Images"][0]["ImageId"]
        instances = [
            ec2.run_instances(ImageId=image, InstanceType="t3.micro", MinCount=1, MaxCount=1)["Instances"][0][
                "InstanceId"
            ]
            for _ in range(2)
        ]
        allow = lambda action, resource: {"Effect": "Allow", "Action": action, "Resource": resource}  # noqa: E731
        policy["Statement"] += [
            allow("sagemaker:DescribeTrainingJob", f"{SAGEMAKER}:training-job/eksflow-test-*"),
            allow("sagemaker:CreateTrainingJob", f"{SAGEMAKER}:training-job/eksflow-test-*"),
            allow("ec2:StopInstances", f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{instances[0]}"),
            allow("cloudwatch:GetMetricStatistics", "*"),
            allow(
                "sagemaker:CreateEndpoint",
                [f"{SAGEMAKER}:{kind}/eksflow-test-*" for kind in ("endpoint", "endpoint-config")],
            ),
            allow("sagemaker:AddTags", f"{SAGEMAKER}:endpoint/eksflow-test-tagged"),
            allow("secretsmanager:GetSecretValue", f"{SECRETS}:secret:eksflow/connections/*"),
            allow("eks:DescribeCluster", f"arn:aws:eks:{REGION}:{ACCOUNT}:cluster/eksflow-test"),
            allow("iam:GetRole", f"arn:aws:iam::{ACCOUNT}:role/eksflow-test-*"),
            allow("ecr:DescribeImages", f"arn:aws:ecr:{REGION}:{ACCOUNT}:repository/eksflow/test"),
            # As terraform/modules/irsa's PassTaskRoles and PassExecutionRole: each role only to its service.
            {**allow("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/{ECS_TASK_ROLE}"), "Condition": PASSED_TO_ECS},
            {**allow("iam:PassRole", f"arn:aws:iam::{ACCOUNT}:role/{TRAINING_ROLE}"), "Condition": PASSED_TO_SAGEMAKER},
            # As terraform/modules/irsa's RunTaggedRevisions*: a revision of the family only when tagged with its job.
            {
                **allow("ecs:RunTask", f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{TAGGED_FAMILY}:*"),
                "Condition": {"StringEquals": {f"aws:ResourceTag/{JOB_TAG_KEY}": "etl-step"}},
            },
        ]
        ecs = emulator.client("ecs")
        for tags in REVISION_TAGS.values():  # revisions 1, 2, 3 in this order
            ecs.register_task_definition(
                family=TAGGED_FAMILY,
                containerDefinitions=[{"name": "etl", "image": "probe", "memory": 64}],
                **({"tags": [{"key": JOB_TAG_KEY, "value": tags}]} if tags else {}),
            )
        secrets = emulator.client("secretsmanager")
        for name in ("eksflow/connections/probe", "eksflow/elsewhere/probe"):
            secrets.create_secret(Name=name, SecretString="aws://")
        iam.put_role_policy(RoleName="eksflow-test-task-default", PolicyName="job", PolicyDocument=json.dumps(policy))
        set_iam_enforcement(emulator.url, True)
        yield emulator, role["Role"]["Arn"], instances


def _token(service_account: str = SERVICE_ACCOUNT, issuer: str = ISSUER, **claims) -> str:
    return service_account_token(f"https://{issuer}", service_account, **claims)


def _session(url: str, role_arn: str, token: str | None = None):
    return web_identity_session(url, REGION, role_arn, token or _token(), session_name="pod")


def test_unsigned_web_identity_exchange_returns_the_role_session(enforced):
    emulator, role_arn, _ = enforced
    session = _session(emulator.url, role_arn)
    identity = session.client("sts", endpoint_url=emulator.url).get_caller_identity()
    assert ":assumed-role/eksflow-test-task-default/pod" in identity["Arn"]


def test_a_kubernetes_token_with_an_audience_list_assumes_its_role(enforced):
    emulator, role_arn, _ = enforced
    session = _session(emulator.url, role_arn, _token(audience=["sts.amazonaws.com"]))
    assert session.client("sts", endpoint_url=emulator.url).get_caller_identity()["Arn"].endswith("/pod")


def _refused(url: str, role_arn: str, token: str) -> ClientError:
    with pytest.raises(ClientError) as refused:
        _session(url, role_arn, token)
    return refused.value


def _assert_not_authorized(error: ClientError) -> None:
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    assert error.response["Error"]["Code"] == "AccessDenied"
    assert error.response["Error"]["Message"] == "Not authorized to perform sts:AssumeRoleWithWebIdentity"


def test_a_service_accounts_token_is_refused_for_another_role(enforced):
    emulator, role_arn, _ = enforced
    other_role = role_arn.replace("eksflow-test-task-default", OTHER_ROLE)
    _assert_not_authorized(_refused(emulator.url, other_role, _token()))
    assert _session(emulator.url, other_role, _token(OTHER_SERVICE_ACCOUNT)), "its own token assumes it"


def test_a_token_for_another_audience_is_refused(enforced):
    emulator, role_arn, _ = enforced
    _assert_not_authorized(_refused(emulator.url, role_arn, _token(audience="https://kubernetes.default.svc")))


def test_an_unknown_issuer_or_an_issuer_without_oidc_provider_is_refused(enforced):
    emulator, role_arn, _ = enforced
    _assert_not_authorized(_refused(emulator.url, role_arn, _token(issuer="oidc.example.com/id/ELSEWHERE")))
    unregistered_role = role_arn.replace("eksflow-test-task-default", UNREGISTERED_ROLE)
    _assert_not_authorized(_refused(emulator.url, unregistered_role, _token(issuer=UNREGISTERED_ISSUER)))


def test_a_role_that_does_not_exist_is_refused(enforced):
    emulator, role_arn, _ = enforced
    _assert_not_authorized(_refused(emulator.url, role_arn.replace("task-default", "task-missing"), _token()))


def test_a_token_that_is_no_jwt_is_an_invalid_identity_token(enforced):
    emulator, role_arn, _ = enforced
    error = _refused(emulator.url, role_arn, "a-projected-service-account-token")
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert error.response["Error"]["Code"] == "InvalidIdentityToken"


def test_without_enforcement_any_token_assumes_any_role(emulator):
    """The session emulator does not enforce IAM: as before, trust is not evaluated."""
    role_arn = f"arn:aws:iam::{ACCOUNT}:role/{OTHER_ROLE}"
    for token in ("a-projected-service-account-token", _token(issuer="oidc.example.com/id/ELSEWHERE")):
        assert _session(emulator.url, role_arn, token)


def test_the_session_is_held_to_the_role_policy(enforced):
    emulator, role_arn, _ = enforced
    session = _session(emulator.url, role_arn)
    s3 = session.client("s3", endpoint_url=emulator.url)
    assert s3.list_objects_v2(Bucket="eksflow-test-logs")["KeyCount"] == 0
    with pytest.raises(ClientError) as denied:
        s3.put_object(Bucket="eksflow-test-logs", Key="x", Body=b"x")
    assert denied.value.response["Error"]["Code"] == "AccessDenied"
    with pytest.raises(ClientError) as denied:
        session.client("ec2", endpoint_url=emulator.url).describe_instances()
    assert "ec2:DescribeInstances" in str(denied.value)


def test_the_admin_keys_of_the_unenforced_emulator_no_longer_work(enforced):
    emulator, _, _ = enforced
    with pytest.raises(ClientError) as denied:
        emulator.client("s3").list_buckets()
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def _denial(call) -> dict:
    with pytest.raises(ClientError) as denied:
        call()
    return denied.value.response["Error"]


def test_statements_scoped_to_resources_are_checked_per_request(enforced):
    emulator, role_arn, _ = enforced
    sagemaker = _session(emulator.url, role_arn).client("sagemaker", endpoint_url=emulator.url)
    inside = _denial(lambda: sagemaker.describe_training_job(TrainingJobName="eksflow-test-train"))
    assert inside["Code"] != "AccessDeniedException", "allowed by the scoped statement: only 'not found' is left"
    outside = _denial(lambda: sagemaker.describe_training_job(TrainingJobName="other-train"))
    assert outside["Code"] == "AccessDeniedException"
    assert outside["Message"].endswith(
        f"is not authorized to perform: sagemaker:DescribeTrainingJob on resource: {SAGEMAKER}:training-job/other-train"
    ), "a JSON service's denial is readable JSON naming action and resource"


def _create_training_job(sagemaker, name: str, role_arn: str):
    return sagemaker.create_training_job(
        TrainingJobName=name,
        RoleArn=role_arn,
        AlgorithmSpecification={"TrainingImage": "img", "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": "s3://eksflow-test-logs/out"},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 10},
        StoppingCondition={"MaxRuntimeInSeconds": 60},
    )


def test_passing_a_role_needs_iam_pass_role(enforced):
    emulator, role_arn, _ = enforced
    sagemaker = _session(emulator.url, role_arn).client("sagemaker", endpoint_url=emulator.url)
    execution_role = f"arn:aws:iam::{ACCOUNT}:role/eksflow-test-sagemaker-execution"
    denied = _denial(lambda: _create_training_job(sagemaker, "eksflow-test-train", execution_role))
    assert denied["Code"] == "AccessDeniedException"
    assert f"iam:PassRole on resource: {execution_role}" in denied["Message"]


def test_a_role_passes_only_to_the_service_its_pass_role_statement_names(enforced):
    """iam:PassedToService: CreateTrainingJob passes its role to sagemaker.amazonaws.com, so a role the policy lets
    pass only to ECS tasks (as the ecs-runner's task roles) is refused there."""
    emulator, role_arn, _ = enforced
    sagemaker = _session(emulator.url, role_arn).client("sagemaker", endpoint_url=emulator.url)
    ecs_task_role = f"arn:aws:iam::{ACCOUNT}:role/{ECS_TASK_ROLE}"
    denied = _denial(lambda: _create_training_job(sagemaker, "eksflow-test-wrong-service", ecs_task_role))
    assert denied["Code"] == "AccessDeniedException"
    assert f"iam:PassRole on resource: {ecs_task_role}" in denied["Message"]
    training_role = f"arn:aws:iam::{ACCOUNT}:role/{TRAINING_ROLE}"
    created = _create_training_job(sagemaker, "eksflow-test-right-service", training_role)
    assert created["TrainingJobArn"].endswith("/eksflow-test-right-service")


def test_ec2_instance_actions_are_checked_per_instance(enforced):
    emulator, role_arn, (allowed, other) = enforced
    ec2 = _session(emulator.url, role_arn).client("ec2", endpoint_url=emulator.url)
    assert ec2.stop_instances(InstanceIds=[allowed])["StoppingInstances"][0]["InstanceId"] == allowed
    denied = _denial(lambda: ec2.stop_instances(InstanceIds=[other]))
    assert denied["Code"] == "AccessDenied"
    assert f"ec2:StopInstances on resource: arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{other}" in denied["Message"]


def test_actions_carry_the_iam_prefix_not_the_signing_name(enforced):
    """CloudWatch signs its requests as "monitoring"; IAM calls its actions cloudwatch:*."""
    emulator, role_arn, _ = enforced
    cloudwatch = _session(emulator.url, role_arn).client("cloudwatch", endpoint_url=emulator.url)
    statistics = cloudwatch.get_metric_statistics(
        Namespace="AWS/EC2",
        MetricName="CPUUtilization",
        StartTime="2026-11-28T00:00:00Z",
        EndTime="2026-11-28T01:00:00Z",
        Period=3600,
        Statistics=["Average"],
    )
    assert statistics["Datapoints"] == []
    denied = _denial(lambda: cloudwatch.describe_alarms())
    assert "not authorized to perform: cloudwatch:DescribeAlarms" in denied["Message"]


def test_a_sagemaker_create_with_tags_needs_add_tags_on_what_it_creates(enforced):
    emulator, role_arn, _ = enforced
    sagemaker = _session(emulator.url, role_arn).client("sagemaker", endpoint_url=emulator.url)
    tags = [{"Key": "eksflow:managed", "Value": "test"}]
    untagged = _denial(
        lambda: sagemaker.create_endpoint(EndpointName="eksflow-test-plain", EndpointConfigName="eksflow-test-config")
    )
    assert untagged["Code"] != "AccessDeniedException", "past IAM: only the missing config is left"
    tagged = _denial(
        lambda: sagemaker.create_endpoint(
            EndpointName="eksflow-test-tagged", EndpointConfigName="eksflow-test-config", Tags=tags
        )
    )
    assert tagged["Code"] != "AccessDeniedException", tagged
    denied = _denial(
        lambda: sagemaker.create_endpoint(
            EndpointName="eksflow-test-other", EndpointConfigName="eksflow-test-config", Tags=tags
        )
    )
    assert denied["Code"] == "AccessDeniedException"
    assert f"sagemaker:AddTags on resource: {SAGEMAKER}:endpoint/eksflow-test-other" in denied["Message"]


def test_run_task_is_checked_against_the_tags_of_the_revision_it_runs(enforced):
    """aws:ResourceTag on RunTask is the tags of the task-definition revision it runs: a revision tagged with the
    allowed job gets past IAM (only the missing cluster is left), an untagged one or one tagged with another job is
    denied naming the revision."""
    emulator, role_arn, _ = enforced
    ecs = _session(emulator.url, role_arn).client("ecs", endpoint_url=emulator.url)
    for revision, tag in REVISION_TAGS.items():
        arn = f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/{TAGGED_FAMILY}:{revision}"
        outcome = _denial(lambda revision=revision: ecs.run_task(taskDefinition=f"{TAGGED_FAMILY}:{revision}"))
        if tag == "etl-step":
            assert outcome["Code"] == "ClusterNotFoundException", outcome  # past IAM: ECS's own answer
        else:
            assert outcome["Code"] == "AccessDeniedException", (tag, outcome)
            assert f"ecs:RunTask on resource: {arn}" in outcome["Message"], outcome


def test_secrets_are_checked_against_their_arn(enforced):
    emulator, role_arn, _ = enforced
    secrets = _session(emulator.url, role_arn).client("secretsmanager", endpoint_url=emulator.url)
    assert secrets.get_secret_value(SecretId="eksflow/connections/probe")["SecretString"] == "aws://"
    denied = _denial(lambda: secrets.get_secret_value(SecretId="eksflow/elsewhere/probe"))
    assert denied["Code"] == "AccessDeniedException"
    assert f"secretsmanager:GetSecretValue on resource: {SECRETS}:secret:eksflow/elsewhere/probe-" in denied["Message"]
    assert _denial(lambda: secrets.list_secrets())["Code"] == "AccessDeniedException"


def test_eks_calls_pass_the_signature_check_and_are_held_to_the_cluster(enforced):
    """A body-less EKS GET used to fail SignatureDoesNotMatch under enforcement (moto hashed the request's headers
    as its payload), and the emulated access-entry routes were not authorized at all."""
    emulator, role_arn, _ = enforced
    eks = _session(emulator.url, role_arn).client("eks", endpoint_url=emulator.url)
    assert _denial(lambda: eks.describe_cluster(name="eksflow-test"))["Code"] == "ResourceNotFoundException"
    other = _denial(lambda: eks.describe_cluster(name="eksflow-other"))
    assert other["Code"] == "AccessDeniedException"
    assert other["Message"].endswith(
        f"eks:DescribeCluster on resource: arn:aws:eks:{REGION}:{ACCOUNT}:cluster/eksflow-other"
    )
    assert _denial(lambda: eks.list_clusters())["Code"] == "AccessDeniedException"
    entries = _denial(lambda: eks.list_access_entries(clusterName="eksflow-test"))
    assert entries["Code"] == "AccessDeniedException" and "eks:ListAccessEntries" in entries["Message"]


def test_iam_and_ecr_calls_are_checked_against_what_they_name(enforced):
    emulator, role_arn, _ = enforced
    session = _session(emulator.url, role_arn)
    iam, ecr = session.client("iam", endpoint_url=emulator.url), session.client("ecr", endpoint_url=emulator.url)
    assert iam.get_role(RoleName=OTHER_ROLE)["Role"]["RoleName"] == OTHER_ROLE
    denied = _denial(lambda: iam.get_role(RoleName="eksflow-prod-task-default"))
    assert denied["Code"] == "AccessDenied"
    assert f"iam:GetRole on resource: arn:aws:iam::{ACCOUNT}:role/eksflow-prod-task-default" in denied["Message"]
    assert _denial(lambda: ecr.describe_images(repositoryName="eksflow/test"))["Code"] == "RepositoryNotFoundException"
    assert _denial(lambda: ecr.describe_images(repositoryName="eksflow/other"))["Code"] == "AccessDeniedException"


def test_every_authorization_check_is_logged_with_its_principal_action_resource_and_outcome(enforced):
    emulator, role_arn, _ = enforced
    control(emulator.url, "authorizations/reset", "")
    session = _session(emulator.url, role_arn)
    iam, s3 = session.client("iam", endpoint_url=emulator.url), session.client("s3", endpoint_url=emulator.url)
    iam.get_role(RoleName=OTHER_ROLE)
    _denial(lambda: iam.get_role(RoleName="eksflow-prod-task-default"))
    s3.list_objects_v2(Bucket="eksflow-test-logs", Prefix="task-logs/")
    _denial(lambda: s3.put_object(Bucket="eksflow-test-logs", Key="x", Body=b"x"))  # S3's own AccessDenied
    checks = control(emulator.url, "authorizations")["authorizations"]
    assert [(c["action"], c["resource"].rsplit(":", 1)[1], c["allowed"]) for c in checks] == [
        ("iam:GetRole", f"role/{OTHER_ROLE}", True),
        ("iam:GetRole", "role/eksflow-prod-task-default", False),
        ("s3:ListBucket", "eksflow-test-logs", True),
        ("s3:PutObject", "eksflow-test-logs/x", False),
    ]
    assert checks[2]["context"]["s3:prefix"] == "task-logs/", "the request's condition keys come along"
    assert all(":assumed-role/eksflow-test-task-default/pod" in c["principal"] for c in checks)


# ---------------------------------------------------------------------------------------------------------------
# Conditions, with the platform's roles: terraform/modules/irsa applied for env local (eksflow_dev.cluster.iam_roles,
# what `make up IAM=1` does) to an emulator seeded for local — managed instances and endpoints of this env and of
# another, unmanaged ones, and a protected endpoint made here (the seed protects an instance only).

ENV = "local"
OTHER_ENV = other_env(ENV)
PROTECTED_ENDPOINT = f"eksflow-{ENV}-protected"
SEED_CONFIG = f"eksflow-{ENV}-seed-config"


class Platform:
    def __init__(self, emulator, role_arns: dict[str, str], admin: dict[str, str]):
        self.emulator, self.role_arns, self.admin = emulator, role_arns, admin

    def client(self, role: str, service: str):
        """A client with the role's web-identity session, as the role's pods get it."""
        token = service_account_token(LOCAL_CLUSTER_ISSUER, SERVICE_ACCOUNTS[role])
        session = web_identity_session(self.emulator.url, REGION, self.role_arns[role], token, session_name=role)
        return session.client(service, endpoint_url=self.emulator.url)

    def admin_client(self, service: str):
        return boto3.client(
            service,
            endpoint_url=self.emulator.url,
            region_name=REGION,
            aws_access_key_id=self.admin["AccessKeyId"],
            aws_secret_access_key=self.admin["SecretAccessKey"],
        )

    def instance(self, name: str) -> str:
        return self.emulator.seeded.instances[name]

    def state(self, name: str) -> str:
        (reservation,) = self.admin_client("ec2").describe_instances(InstanceIds=[self.instance(name)])["Reservations"]
        return reservation["Instances"][0]["State"]["Name"]


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    terraform_binary()  # skips, saying how to get it, when terraform is missing
    with running_emulator(tmp_path_factory.mktemp("emulator-irsa")) as emulator:
        tags = [{"Key": k, "Value": v} for k, v in endpoint_tags(ENV, managed=True, protected=True).items()]
        sagemaker = emulator_client(emulator.url, "sagemaker", REGION)
        sagemaker.create_endpoint(EndpointName=PROTECTED_ENDPOINT, EndpointConfigName=SEED_CONFIG, Tags=tags)
        admin = bootstrap_admin(emulator.url, "eksflow-test-admin", REGION)
        outputs = iam_roles.apply(tmp_path_factory.mktemp("irsa"), emulator.url, emulator.seeded.settings_env)
        set_iam_enforcement(emulator.url, True)
        yield Platform(emulator, outputs["task_role_arns"], admin)


def _instance_arn(instance_id: str) -> str:
    return f"arn:aws:ec2:{REGION}:{ACCOUNT}:instance/{instance_id}"


NOT_THIS_ENVS_TO_TOUCH = ["other-env-idle", "unmanaged-idle", "managed-protected"]


@pytest.mark.parametrize("name", NOT_THIS_ENVS_TO_TOUCH)
def test_ec2_ops_may_not_stop_or_terminate_an_instance_another_env_or_nobody_manages_or_that_is_protected(
    platform, name
):
    ec2 = platform.client("ec2-ops", "ec2")
    instance = platform.instance(name)
    for action, call in (("StopInstances", ec2.stop_instances), ("TerminateInstances", ec2.terminate_instances)):
        denied = _denial(lambda call=call: call(InstanceIds=[instance]))
        assert denied["Code"] == "AccessDenied", denied
        assert f"ec2:{action} on resource: {_instance_arn(instance)}" in denied["Message"]
    assert platform.state(name) == "running"


def test_ec2_ops_stops_its_envs_managed_instances_and_several_only_all_together(platform):
    ec2 = platform.client("ec2-ops", "ec2")
    idle = platform.instance("managed-idle")
    assert ec2.stop_instances(InstanceIds=[idle])["StoppingInstances"][0]["InstanceId"] == idle
    busy, other = platform.instance("managed-busy"), platform.instance("other-env-idle")
    denied = _denial(lambda: ec2.stop_instances(InstanceIds=[busy, other]))
    assert f"ec2:StopInstances on resource: {_instance_arn(other)}" in denied["Message"]
    assert platform.state("managed-busy") == "running", "all or nothing: the allowed instance was not stopped"


def test_ec2_ops_deletes_its_envs_managed_endpoint_but_none_another_env_or_nobody_manages_or_that_is_protected(
    platform,
):
    sagemaker = platform.client("ec2-ops", "sagemaker")
    for endpoint in (f"eksflow-{OTHER_ENV}-idle", f"eksflow-{ENV}-unmanaged", PROTECTED_ENDPOINT):
        denied = _denial(lambda endpoint=endpoint: sagemaker.delete_endpoint(EndpointName=endpoint))
        assert denied["Code"] == "AccessDeniedException", (endpoint, denied)
        assert f"sagemaker:DeleteEndpoint on resource: {SAGEMAKER}:endpoint/{endpoint}" in denied["Message"]
        assert platform.admin_client("sagemaker").describe_endpoint(EndpointName=endpoint)
    sagemaker.delete_endpoint(EndpointName=f"eksflow-{ENV}-idle")
    names = {e["EndpointName"] for e in platform.admin_client("sagemaker").list_endpoints()["Endpoints"]}
    assert f"eksflow-{ENV}-idle" not in names


def _tags(tags: dict[str, str]) -> list[dict[str, str]]:
    return [{"Key": key, "Value": value} for key, value in tags.items()]


KIT_TAGS = endpoint_tags(ENV, managed=True, protected=True)  # what the ML pipeline creates its endpoint with


def test_sagemaker_runner_may_not_tag_an_existing_endpoint(platform):
    """A plain AddTags carries no sagemaker:TaggingAction: not even the kit's tags on this env's endpoint."""
    sagemaker = platform.client("sagemaker-runner", "sagemaker")
    endpoint = f"{SAGEMAKER}:endpoint/eksflow-{ENV}-in-use"
    denied = _denial(lambda: sagemaker.add_tags(ResourceArn=endpoint, Tags=_tags(KIT_TAGS)))
    assert denied["Code"] == "AccessDeniedException"
    assert f"sagemaker:AddTags on resource: {endpoint}" in denied["Message"]


OTHER_TAGS = {
    "another key": {**KIT_TAGS, "owner": "ml"},
    "another env": {**KIT_TAGS, **managed_tags(OTHER_ENV)},
    "unprotected": {**KIT_TAGS, PROTECTED_TAG_KEY: "false"},
}


def test_sagemaker_runner_creates_endpoints_only_with_the_kits_tags(platform):
    sagemaker = platform.client("sagemaker-runner", "sagemaker")
    name = f"eksflow-{ENV}-churn"
    for why, tags in OTHER_TAGS.items():
        denied = _denial(
            lambda tags=tags: sagemaker.create_endpoint(
                EndpointName=name, EndpointConfigName=SEED_CONFIG, Tags=_tags(tags)
            )
        )
        assert denied["Code"] == "AccessDeniedException", why
        assert f"sagemaker:AddTags on resource: {SAGEMAKER}:endpoint/{name}" in denied["Message"], why
    sagemaker.create_endpoint(EndpointName=name, EndpointConfigName=SEED_CONFIG, Tags=_tags(KIT_TAGS))
    tags = platform.admin_client("sagemaker").list_tags(ResourceArn=f"{SAGEMAKER}:endpoint/{name}")["Tags"]
    assert {t["Key"]: t["Value"] for t in tags} == KIT_TAGS


def test_ecs_runner_runs_and_lists_tasks_only_on_its_cluster(platform):
    ecs = platform.client("ecs-runner", "ecs")
    family = f"eksflow-{ENV}-etl-step"
    other = f"arn:aws:ecs:{REGION}:{ACCOUNT}:cluster/other-cluster"
    run_elsewhere = _denial(lambda: ecs.run_task(cluster=other, taskDefinition=family))
    assert run_elsewhere["Code"] == "AccessDeniedException", run_elsewhere
    latest = platform.emulator.seeded.task_definitions["etl-step"]  # the seeded release's revision
    assert f"ecs:RunTask on resource: {latest}" in run_elsewhere["Message"]
    assert "ecs:ListTasks" in _denial(lambda: ecs.list_tasks(cluster="other-cluster"))["Message"]
    assert ecs.list_tasks(cluster=f"eksflow-{ENV}-batch")["taskArns"] == []
    # Its own cluster, passing its task role (iam:PassedToService = ecs-tasks.amazonaws.com): past IAM.
    task_role = f"arn:aws:iam::{ACCOUNT}:role/{get_job('etl-step').task_role_name(ENV)}"
    network = {
        "awsvpcConfiguration": {
            "subnets": [platform.emulator.seeded.settings_env["EKSFLOW_ECS_SUBNETS"]],
            "securityGroups": [platform.emulator.seeded.settings_env["EKSFLOW_ECS_SECURITY_GROUPS"]],
        }
    }
    started = ecs.run_task(
        cluster=f"eksflow-{ENV}-batch",
        taskDefinition=family,
        launchType="FARGATE",
        networkConfiguration=network,
        overrides={"taskRoleArn": task_role},
    )
    assert started["tasks"], started


def _etl_revision_request() -> dict:
    """A revision of the etl-step family as a release registers it: its container, its task and execution roles."""
    job = get_job("etl-step")
    return {
        "family": job.ecs_family(ENV),
        "taskRoleArn": f"arn:aws:iam::{ACCOUNT}:role/{job.task_role_name(ENV)}",
        "executionRoleArn": f"arn:aws:iam::{ACCOUNT}:role/{ecs_execution_role_name(ENV)}",
        "networkMode": "awsvpc",
        "requiresCompatibilities": ["FARGATE"],
        "cpu": "256",
        "memory": "512",
        "containerDefinitions": [{"name": job.container, "image": "public.ecr.aws/hostile/image:latest"}],
    }


def test_ecs_runner_may_not_register_a_revision(platform):
    """No RegisterTaskDefinition: not with the job's own roles, not untagged, not tagged with the job."""
    ecs = platform.client("ecs-runner", "ecs")
    request = _etl_revision_request()
    for tags in ({}, {"tags": [{"key": JOB_TAG_KEY, "value": "etl-step"}]}):
        denied = _denial(lambda tags=tags: ecs.register_task_definition(**request, **tags))
        assert denied["Code"] == "AccessDeniedException", denied
        assert "is not authorized to perform: ecs:RegisterTaskDefinition" in denied["Message"], denied


@pytest.mark.parametrize("tag", [None, "train"], ids=["untagged", "tagged-with-another-job"])
def test_ecs_runner_may_not_run_a_revision_of_its_family_not_tagged_with_the_families_job(platform, tag):
    """A revision of a platform family someone else registered (a job's task role, any image) — untagged, or tagged
    with another job — is not runnable under ecs-runner (condition: aws:ResourceTag/eksflow:job on the revision);
    the family's released revision is (on its own cluster, passing the job's roles: past IAM)."""
    admin = platform.admin_client("ecs")
    tags = {"tags": [{"key": JOB_TAG_KEY, "value": tag}]} if tag else {}
    hostile = admin.register_task_definition(**_etl_revision_request(), **tags)["taskDefinition"]["taskDefinitionArn"]
    try:
        ecs = platform.client("ecs-runner", "ecs")
        settings = platform.emulator.seeded.settings_env
        network = {
            "awsvpcConfiguration": {
                "subnets": [settings["EKSFLOW_ECS_SUBNETS"]],
                "securityGroups": [settings["EKSFLOW_ECS_SECURITY_GROUPS"]],
            }
        }
        run = {"cluster": f"eksflow-{ENV}-batch", "launchType": "FARGATE", "networkConfiguration": network}
        denied = _denial(lambda: ecs.run_task(taskDefinition=hostile, **run))
        assert denied["Code"] == "AccessDeniedException", denied
        assert f"ecs:RunTask on resource: {hostile}" in denied["Message"], denied
        released = platform.emulator.seeded.task_definitions["etl-step"]
        assert ecs.run_task(taskDefinition=released, **run)["tasks"]
    finally:
        admin.deregister_task_definition(taskDefinition=hostile)


def test_sagemaker_runner_reads_the_image_lists_of_the_sagemaker_jobs_repositories_only(platform):
    ecr = platform.client("sagemaker-runner", "ecr")
    (detail,) = ecr.describe_images(repositoryName=f"eksflow-{ENV}-train")["imageDetails"]
    assert detail["imageDigest"] in platform.emulator.seeded.released["train"]
    for repository in (f"eksflow-{ENV}-etl-step", f"eksflow-{OTHER_ENV}-train"):
        denied = _denial(lambda repository=repository: ecr.describe_images(repositoryName=repository))
        assert (
            f"ecr:DescribeImages on resource: arn:aws:ecr:{REGION}:{ACCOUNT}:repository/{repository}"
            in (denied["Message"])
        ), denied


def test_task_logs_are_listed_only_under_the_log_prefix(platform):
    s3 = platform.client("default", "s3")
    bucket = bucket_names(ENV)["logs"]
    assert s3.list_objects_v2(Bucket=bucket, Prefix="task-logs/dag_id=x/")["KeyCount"] == 0
    for prefix in ({"Prefix": "elsewhere/"}, {}):
        denied = _denial(lambda prefix=prefix: s3.list_objects_v2(Bucket=bucket, **prefix))
        assert denied["Code"] == "AccessDenied", (prefix, denied)
