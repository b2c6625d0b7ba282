"""Least privilege, enforced: terraform/envs/dev applied to the emulator (tests/dev_platform.py), IAM
enforcement on, and every role's Airflow connection assuming its Terraform-made role with
AssumeRoleWithWebIdentity and its own service account's token file — the STS exchange IRSA makes in a pod
(tokens unsigned, tests/support/web_identity.py; the emulator evaluates the trust policies, not signatures).
The three reference DAGs must succeed under their roles — with the policies' Conditions evaluated by the
emulator (the ec2-ops managed/protected-tag conditions, the sagemaker-runner's TaggingAction, tag-key and
request-tag conditions, ecs:cluster, the s3:prefix of log listing, iam:PassedToService); a role's token must not
assume another role; a permission taken away must fail the DAG with the AccessDenied message that names the
action; and every role is probed with calls inside and outside its job, the condition probes among them (table
in the test summary).
"""

from __future__ import annotations

import contextlib
import json
import shutil
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from eksflow.connections import web_identity_connections
from eksflow.jobs import JOB_TAG_KEY, JOBS, get_job
from eksflow.platform import bucket_names
from eksflow.revisions import register_fields
from eksflow.roles import ROLES
from eksflow_dev.dagcheck.home import AirflowHome
from eksflow_dev.local.offline import REGION
from tests.dev_platform import ENV
from tests.probes import (
    OTHER_JOBS,
    OTHER_SECRET,
    RELEASED,
    UNTAGGED,
    WORKLOAD_PROBES,
    WORKLOAD_ROLES,
    Context,
    probe_secrets,
    probes_for,
    run_probe,
    table,
    web_identity_session,
    workload_role_name,
)
from tests.support.web_identity import token_files

pytestmark = pytest.mark.slow

DAY = "2026-11-28"
ETL = get_job("etl-step")


@dataclass
class Enforced:
    platform: object
    token_files: dict[str, str]  # role name -> its service account's token file

    @property
    def role_arns(self) -> dict[str, str]:
        outputs = self.platform.outputs
        return {**outputs["task_role_arns"], **outputs["control_plane_role_arns"]}

    def token(self, role: str) -> str:
        return Path(self.token_files[role]).read_text()

    def dags_test(self, airflow_home, dag_id: str, conf: dict | None = None):
        url, task_roles = self.platform.url, self.platform.outputs["task_role_arns"]
        env = {
            **web_identity_connections(url, REGION, task_roles, self.token_files),
            **self.platform.seeded.settings_env,
            "AWS_ENDPOINT_URL": url,
        }
        args = ["dags", "test", dag_id] + (["--conf", json.dumps(conf)] if conf else [])
        result = airflow_home.run(*args, extra_env=env, timeout=600)
        return result.returncode, result.stdout + result.stderr


@pytest.fixture(scope="module")
def enforced(dev_platform, tmp_path_factory):
    outputs = dev_platform.outputs
    cluster = dev_platform.client("eks").describe_cluster(name=outputs["cluster_name"])["cluster"]
    issuer_url = cluster["identity"]["oidc"]["issuer"]  # what EKS puts in its service account tokens
    roles = {**outputs["task_role_arns"], **outputs["control_plane_role_arns"]}
    with dev_platform.enforcement():
        yield Enforced(dev_platform, token_files(tmp_path_factory.mktemp("irsa"), issuer_url, roles))


def test_enforcement_holds_the_admin_to_its_policy_and_refuses_unknown_keys(enforced, dev_platform):
    assert dev_platform.client("iam").get_role(RoleName=ROLES["ecs-runner"].iam_role_name(ENV))
    with pytest.raises(ClientError) as refused:
        dev_platform.emulator.client("s3").list_buckets()  # the emulator's dummy keys: no such IAM user
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


def test_a_roles_token_assumes_only_its_own_role(enforced, dev_platform):
    """Each role trusts exactly its service account: e.g. the ecs-runner pod's token cannot become the
    sagemaker-runner role (its own token assumes it: every probe below runs with one)."""
    roles = enforced.role_arns
    for role, arn in roles.items():
        for token_of in sorted(roles.keys() - {role}):
            with pytest.raises(ClientError) as refused:
                web_identity_session(dev_platform.url, REGION, arn, enforced.token(token_of))
            error = refused.value.response["Error"]
            assert (error["Code"], error["Message"]) == (
                "AccessDenied",
                "Not authorized to perform sts:AssumeRoleWithWebIdentity",
            ), f"{token_of}'s token for the {role} role"


REFERENCE_RUNS = {
    "batch_data_pipeline": {"partitions": 2, "day": DAY},
    "ml_pipeline": None,
    "aws_housekeeping": {"dry_run_terminate": False, "dry_run_delete": False},
}


@pytest.fixture(scope="module")
def reference_runs(enforced, dev_platform, airflow_home, tmp_path_factory) -> dict[str, tuple[int, str]]:
    """The three DAGs at once, each `airflow dags test` in its own copy of the migrated Airflow home (SQLite
    takes one writer)."""
    # The ML pipeline's input, as the data pipeline leaves it.
    dev_platform.client("s3").put_object(Bucket=bucket_names(ENV)["data"], Key="curated/_SUCCESS", Body=b"")

    def run(dag_id: str) -> tuple[int, str]:
        home = tmp_path_factory.mktemp(f"airflow-{dag_id}")
        shutil.copytree(airflow_home.path, home, dirs_exist_ok=True)
        env = {"AIRFLOW_HOME": str(home), "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}"}
        return enforced.dags_test(AirflowHome(home, {**airflow_home.env, **env}), dag_id, REFERENCE_RUNS[dag_id])

    with ThreadPoolExecutor(max_workers=len(REFERENCE_RUNS)) as pool:
        return dict(zip(REFERENCE_RUNS, pool.map(run, REFERENCE_RUNS), strict=True))


@pytest.mark.parametrize("dag_id", list(REFERENCE_RUNS))
def test_reference_dags_succeed_under_their_roles(reference_runs, dag_id):
    returncode, output = reference_runs[dag_id]
    assert returncode == 0, output[-6000:]
    assert "is not authorized to perform" not in output, "a denied call was retried into success"


def test_a_missing_permission_fails_the_dag_with_the_denied_action(enforced, dev_platform, airflow_home):
    iam = dev_platform.client("iam")
    role = ROLES["ec2-ops"].iam_role_name(ENV)
    original = iam.get_role_policy(RoleName=role, PolicyName="job")["PolicyDocument"]
    weakened = json.loads(json.dumps(original))
    for statement in weakened["Statement"]:
        if statement.get("Sid") == "Discover":
            statement["Action"] = [a for a in statement["Action"] if a != "ec2:DescribeInstances"]
    iam.put_role_policy(RoleName=role, PolicyName="job", PolicyDocument=json.dumps(weakened))
    try:
        returncode, output = enforced.dags_test(airflow_home, "aws_housekeeping")
    finally:
        iam.put_role_policy(RoleName=role, PolicyName="job", PolicyDocument=json.dumps(original))
    assert returncode != 0
    assert f":assumed-role/{role}/" in output
    assert "is not authorized to perform: ec2:DescribeInstances" in output


@contextlib.contextmanager
def _etl_revisions(ecs) -> Iterator[dict[str, str]]:
    """The etl-step family's latest revision (a release's or Terraform's: tagged with its job) and two copies of it
    someone with RegisterTaskDefinition could register — untagged, tagged with another job — by kind (tests.probes:
    RELEASED, UNTAGGED, OTHER_JOBS). Afterwards the copies are deregistered and a copy of the released one with its
    tags (as a release registers it) is the family's latest again: later tests and Terraform's plan see a release."""
    family = ETL.ecs_family(ENV)
    described = ecs.describe_task_definition(taskDefinition=family, include=["TAGS"])
    released, tags = described["taskDefinition"], described.get("tags") or []
    assert {"key": JOB_TAG_KEY, "value": ETL.name} in tags, f"precondition: {family}'s latest is tagged: {tags}"
    request = {key: value for key, value in released.items() if key in register_fields(ecs)}
    other = next(name for name in JOBS if name != ETL.name)
    register = lambda **extra: ecs.register_task_definition(**request, **extra)["taskDefinition"]["taskDefinitionArn"]  # noqa: E731
    hostile = {UNTAGGED: register(), OTHER_JOBS: register(tags=[{"key": JOB_TAG_KEY, "value": other}])}
    try:
        yield {RELEASED: released["taskDefinitionArn"], **hostile}
    finally:
        for arn in hostile.values():
            ecs.deregister_task_definition(taskDefinition=arn)
        register(tags=tags)


def test_every_role_is_denied_outside_its_job(enforced, dev_platform, record_property):
    ec2 = dev_platform.client("ec2")
    with _etl_revisions(dev_platform.client("ecs")) as revisions:
        context = Context(
            env=ENV,
            account=dev_platform.outputs["task_role_arns"]["default"].split(":")[4],
            region=REGION,
            buckets=bucket_names(ENV),
            role_arns=enforced.role_arns,
            db_secret_arn=dev_platform.outputs["db_secret_arn"],
            instance_id=dev_platform.seeded.instances["managed-busy"],
            instances=dev_platform.seeded.instances,
            release_queue_url=dev_platform.outputs["release_queue_url"],
            release_dlq_url=dev_platform.outputs["release_dlq_url"],
            revisions=revisions,
        )
        assert ec2.describe_instances(InstanceIds=[context.instance_id])["Reservations"]
        secrets = dev_platform.client("secretsmanager")
        for name in [*probe_secrets(context.env).values(), *probe_secrets(context.other_env).values(), OTHER_SECRET]:
            secrets.create_secret(Name=name, SecretString="aws://")
        outcomes = []
        for role, arn in enforced.role_arns.items():
            session = web_identity_session(dev_platform.url, REGION, arn, enforced.token(role))
            outcomes += [run_probe(session, dev_platform.url, context, role, probe) for probe in probes_for(role)]
        record_property("table: least privilege — probes per role under IAM enforcement", table(outcomes))
        assert set(enforced.role_arns) == {*ROLES, "scheduler", "api-server", "triggerer", "dag-processor"}
        for role in enforced.role_arns:
            assert sum(o.probe.expect == "deny" for o in outcomes if o.role == role) >= 10, role
            assert any(o.probe.condition for o in outcomes if o.role == role), f"{role}: no condition probe"
        wrong = [o.line() for o in outcomes if not o.ok]
        assert not wrong, "\n".join(wrong)


@contextlib.contextmanager
def _assumed_by_the_admin(dev_platform, role_arn: str) -> Iterator[boto3.Session]:
    """A session of a role trusted by an AWS service only (which refuses the administrator: first asserted), its trust
    replaced by the administrator's for the session's creation, then restored."""
    iam, sts = dev_platform.client("iam"), dev_platform.client("sts")
    name = role_arn.rsplit("/", 1)[1]
    with pytest.raises(ClientError, match="AccessDenied"):
        sts.assume_role(RoleArn=role_arn, RoleSessionName="probe")
    trust = iam.get_role(RoleName=name)["Role"]["AssumeRolePolicyDocument"]
    admin = {"Effect": "Allow", "Principal": {"AWS": sts.get_caller_identity()["Arn"]}, "Action": "sts:AssumeRole"}
    iam.update_assume_role_policy(
        RoleName=name, PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [admin]})
    )
    try:
        keys = sts.assume_role(RoleArn=role_arn, RoleSessionName="probe")["Credentials"]
    finally:
        iam.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust))
    yield boto3.Session(
        aws_access_key_id=keys["AccessKeyId"],
        aws_secret_access_key=keys["SecretAccessKey"],
        aws_session_token=keys["SessionToken"],
        region_name=REGION,
    )


def test_every_workload_role_is_held_to_its_job(enforced, dev_platform, record_property):
    """The roles ECS and SageMaker run the workloads as (terraform/modules/workloads): each ecs job's task role, the
    task execution role, the SageMaker execution role, probed with calls inside and outside their job. ECS hands a
    container its task role's credentials and SageMaker assumes its execution role, which the emulator cannot do: the
    administrator assumes each role instead, its trust widened to the administrator for the test and restored after
    (the service trust itself — ECS tasks or SageMaker of this account — is read in test_terraform.py and
    test_terraform_apply.py, and refuses the administrator). Each session is then held to the role's own policies."""
    account = dev_platform.outputs["task_role_arns"]["default"].split(":")[4]
    roles = {role: f"arn:aws:iam::{account}:role/{workload_role_name(role, ENV)}" for role in WORKLOAD_ROLES}
    context = Context(
        env=ENV,
        account=account,
        region=REGION,
        buckets=bucket_names(ENV),
        role_arns={**enforced.role_arns, **roles},
        db_secret_arn=dev_platform.outputs["db_secret_arn"],
        instance_id=dev_platform.seeded.instances["managed-busy"],
        instances=dev_platform.seeded.instances,
        release_queue_url=dev_platform.outputs["release_queue_url"],
        release_dlq_url=dev_platform.outputs["release_dlq_url"],
    )
    outcomes = []
    for role, arn in roles.items():
        with _assumed_by_the_admin(dev_platform, arn) as session:
            outcomes += [run_probe(session, dev_platform.url, context, role, probe) for probe in WORKLOAD_PROBES[role]]
    record_property("table: least privilege — the workloads' roles (ECS tasks, SageMaker) under IAM enforcement",
                    table(outcomes))  # fmt: skip
    for role in roles:
        assert sum(o.probe.expect == "deny" for o in outcomes if o.role == role) >= 10, role
    wrong = [o.line() for o in outcomes if not o.ok]
    assert not wrong, "\n".join(wrong)
