"""IAM enforcement in the emulator along the IRSA path: an unsigned AssumeRoleWithWebIdentity (as a pod's SDK
sends it) returns the role's session, and that session is held to the role's policy — allowed calls pass,
anything else is denied naming the action. Runs its own emulator: enforcement stays on once switched on."""

from __future__ import annotations

import json
import urllib.request

import boto3
import pytest
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from tests.conftest import REGION, running_emulator

ISSUER = "oidc.eks.eu-west-1.amazonaws.com/id/EKSFLOWTEST"
SUBJECT = "system:serviceaccount:eksflow:eksflow-task-default"


def _enforce(url: str) -> None:
    request = urllib.request.Request(  # noqa: S310 - loopback emulator
        f"{url}/moto-api/reset-auth", data=b"0", headers={"Content-Type": "text/plain"}, method="POST"
    )
    urllib.request.urlopen(request, timeout=30).close()  # noqa: S310


@pytest.fixture(scope="module")
def enforced(tmp_path_factory):
    with running_emulator(tmp_path_factory.mktemp("emulator-iam"), seeded=False) as emulator:
        iam, s3 = emulator.client("iam"), emulator.client("s3")
        provider = iam.create_open_id_connect_provider(
            Url=f"https://{ISSUER}", ClientIDList=["sts.amazonaws.com"], ThumbprintList=["9" * 40]
        )["OpenIDConnectProviderArn"]
        trust = {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Federated": provider},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {"StringEquals": {f"{ISSUER}:sub": SUBJECT}},
                }
            ],
        }
        role = iam.create_role(RoleName="eksflow-test-task-default", AssumeRolePolicyDocument=json.dumps(trust))
        s3.create_bucket(Bucket="eksflow-test-logs", CreateBucketConfiguration={"LocationConstraint": REGION})
        policy = {
            "Version": "2012-10-17",
            "Statement": [{"Effect": "Allow", "Action": "s3:ListBucket", "Resource": "arn:aws:s3:::eksflow-test-logs"}],
        }
        iam.put_role_policy(RoleName="eksflow-test-task-default", PolicyName="job", PolicyDocument=json.dumps(policy))
        _enforce(emulator.url)
        yield emulator, role["Role"]["Arn"]


def _session(url: str, role_arn: str) -> boto3.Session:
    sts = boto3.client("sts", endpoint_url=url, region_name=REGION, config=Config(signature_version=UNSIGNED))
    credentials = sts.assume_role_with_web_identity(
        RoleArn=role_arn, RoleSessionName="pod", WebIdentityToken="a-projected-service-account-token"
    )["Credentials"]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=REGION,
    )


def test_unsigned_web_identity_exchange_returns_the_role_session(enforced):
    emulator, role_arn = enforced
    session = _session(emulator.url, role_arn)
    identity = session.client("sts", endpoint_url=emulator.url).get_caller_identity()
    assert ":assumed-role/eksflow-test-task-default/pod" in identity["Arn"]


def test_the_session_is_held_to_the_role_policy(enforced):
    emulator, role_arn = enforced
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
    emulator, _ = enforced
    with pytest.raises(ClientError) as denied:
        emulator.client("s3").list_buckets()
    assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
