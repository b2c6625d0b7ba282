"""The emulator's evaluation of web-identity trust policies (src/eksflow_dev/emulator/trust.py), as a pure
function: token claims + trust policy + the account's OIDC providers -> may assume or not. Over HTTP:
tests/test_emulator_iam.py."""

from __future__ import annotations

import base64
import json
from urllib.parse import quote

import pytest

from eksflow.roles import ROLES
from eksflow_dev.cluster.pki import ISSUER as LOCAL_CLUSTER_ISSUER
from eksflow_dev.cluster.pki import Pki, Tokens
from eksflow_dev.emulator.seed import ACCOUNT_ID
from eksflow_dev.emulator.trust import InvalidToken, token_claims, trust_allows, trust_document
from tests.support.web_identity import irsa_trust_policy, service_account_token

ISSUER = "oidc.eks.eu-west-1.amazonaws.com/id/EKSFLOWTEST"
PROVIDER = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{ISSUER}"
ACCOUNT = ROLES["default"].service_account
OTHER_ACCOUNT = ROLES["ecs-runner"].service_account
SUB = f"system:serviceaccount:eksflow:{ACCOUNT}"


def claims(account: str = ACCOUNT, issuer_url: str = f"https://{ISSUER}", **changes) -> dict:
    return {**token_claims(service_account_token(issuer_url, account)), **changes}


def statement(effect="Allow", action="sts:AssumeRoleWithWebIdentity", condition=None, principal=PROVIDER) -> dict:
    return {
        "Effect": effect,
        "Action": action,
        "Principal": {"Federated": principal},
        "Condition": condition if condition is not None else {"StringEquals": {f"{ISSUER}:sub": SUB}},
    }


def allows(claimed: dict, *statements: dict, providers=(PROVIDER,)) -> bool:
    return trust_allows(claimed, {"Version": "2012-10-17", "Statement": list(statements)}, providers)


IRSA = irsa_trust_policy(PROVIDER, ACCOUNT)


def test_the_irsa_trust_admits_exactly_its_service_account_with_the_sts_audience():
    assert trust_allows(claims(), IRSA, [PROVIDER])
    assert not trust_allows(claims(OTHER_ACCOUNT), IRSA, [PROVIDER])
    assert not trust_allows(claims(aud="another-audience"), IRSA, [PROVIDER])
    assert not trust_allows(claims(sub=f"system:serviceaccount:other-namespace:{ACCOUNT}"), IRSA, [PROVIDER])


def test_an_audience_list_matches_when_any_of_its_values_does():
    assert trust_allows(claims(aud=["other", "sts.amazonaws.com"]), IRSA, [PROVIDER])
    assert not trust_allows(claims(aud=["other", "another"]), IRSA, [PROVIDER])
    assert not trust_allows(claims(aud=[]), IRSA, [PROVIDER])


def test_the_issuer_must_be_the_principals_oidc_provider_and_that_provider_must_exist():
    assert not trust_allows(claims(issuer_url="https://oidc.eks.eu-west-1.amazonaws.com/id/OTHER"), IRSA, [PROVIDER])
    assert not trust_allows(claims(issuer_url=f"http://{ISSUER}"), IRSA, [PROVIDER])
    assert not trust_allows(claims(), IRSA, []), "no such OIDC provider in the account"
    assert not trust_allows(claims(), IRSA, [f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/other.example.com"])


@pytest.mark.parametrize(
    ("action", "allowed"),
    [
        (["sts:AssumeRole", "sts:AssumeRoleWithWebIdentity"], True),
        ("sts:*", True),
        ("*", True),
        ("STS:assumerolewithwebidentity", True),
        ("sts:AssumeRole", False),
        (["sts:AssumeRoleWithSAML", "sts:TagSession"], False),
    ],
)
def test_the_statement_must_cover_the_action(action, allowed):
    assert allows(claims(), statement(action=action)) is allowed


@pytest.mark.parametrize(
    ("condition", "allowed"),
    [
        ({"StringLike": {f"{ISSUER}:sub": "system:serviceaccount:eksflow:*"}}, True),
        ({"StringLike": {f"{ISSUER}:sub": "system:serviceaccount:eksflow:eksflow-task-defaul?"}}, True),
        ({"StringLike": {f"{ISSUER}:sub": "system:serviceaccount:other:*"}}, False),
        ({"StringEquals": {f"{ISSUER}:sub": ["x", SUB]}}, True),
        ({"ForAnyValue:StringEquals": {f"{ISSUER}:aud": ["sts.amazonaws.com"]}}, True),
        ({"ForAnyValue:StringLike": {f"{ISSUER}:aud": "other*"}}, False),
        ({"StringEquals": {f"{ISSUER}:amr": "authenticated"}}, False),  # the token has no amr
        ({}, True),
    ],
)
def test_string_conditions(condition, allowed):
    assert allows(claims(), statement(condition=condition)) is allowed


@pytest.mark.parametrize(
    "condition",
    [
        {"StringNotEquals": {f"{ISSUER}:sub": "system:serviceaccount:eksflow:someone-else"}},
        {"ForAllValues:StringEquals": {f"{ISSUER}:aud": "sts.amazonaws.com"}},
        {"StringEquals": {"aws:SourceIp": "10.0.0.1"}},
        {"StringEquals": {"oidc.eks.eu-west-1.amazonaws.com/id/OTHER:sub": SUB}},
        {"StringEquals": {f"{ISSUER}:email": "a@example.com"}},
    ],
)
def test_an_unknown_operator_or_key_fails_closed(condition):
    assert not allows(claims(), statement(condition=condition))
    assert not allows(claims(), statement(), statement("Deny", condition=condition)), "a Deny then applies"


def test_a_matching_deny_wins():
    deny_other = statement("Deny", condition={"StringEquals": {f"{ISSUER}:sub": "system:serviceaccount:x:y"}})
    assert allows(claims(), statement(), deny_other), "a Deny whose condition does not hold does not apply"
    assert not allows(claims(), statement(), statement("Deny"))
    assert not allows(claims(), statement(), statement("Deny", action="sts:*", condition={}))


def test_a_url_encoded_trust_document_is_read():
    assert trust_document(quote(json.dumps(IRSA))) == IRSA
    assert trust_document(json.dumps(IRSA)) == IRSA
    assert trust_document("not a policy") == {}


@pytest.mark.parametrize(
    "token",
    [
        "a-projected-service-account-token",
        "eyJhbGciOiJSUzI1NiJ9.eksflow-projected-service-account-token.signature",
        "a.b.c.d",
        "eyJhbGciOiJSUzI1NiJ9." + base64.urlsafe_b64encode(b"[1, 2]").decode() + ".sig",
        "eyJhbGciOiJSUzI1NiJ9." + base64.urlsafe_b64encode(b'{"sub": "no issuer"}').decode() + ".sig",
    ],
)
def test_a_token_that_is_no_jwt_with_an_issuer_is_invalid(token):
    with pytest.raises(InvalidToken):
        token_claims(token)


def test_the_local_clusters_service_account_tokens_assume_their_terraform_roles(tmp_path):
    """The local cluster (eksflow_dev.cluster) signs its tokens (HS256) with iss ISSUER and aud as a list;
    eksflow_dev.cluster.iam_roles makes its OIDC provider from ISSUER and the roles with terraform/modules/irsa."""
    pki = Pki(tmp_path / "pki")
    pki.create(["127.0.0.1"], ["localhost"])
    token, _ = Tokens(pki).issue("eksflow", ACCOUNT, "uid", ["sts.amazonaws.com"], 3600)
    provider = f"arn:aws:iam::{ACCOUNT_ID}:oidc-provider/{LOCAL_CLUSTER_ISSUER.removeprefix('https://')}"
    assert trust_allows(token_claims(token), irsa_trust_policy(provider, ACCOUNT), [provider])
    assert not trust_allows(token_claims(token), irsa_trust_policy(provider, OTHER_ACCOUNT), [provider])
