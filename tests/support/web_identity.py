"""Web identity tokens as EKS projects them into a pod (iss = the cluster's OIDC issuer URL, sub = the service
account, aud = STS) and as GitHub Actions issues them to a job (iss = GitHub's issuer, sub = the repository and
the job's ref or environment), unsigned: the emulator decodes the claims and evaluates the role's trust policy
but does not verify signatures (src/eksflow_dev/emulator/trust.py)."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterable
from pathlib import Path

from eksflow.platform import CONTROL_PLANE, NAMESPACE
from eksflow.roles import ROLES

STS_AUDIENCE = "sts.amazonaws.com"
# Every platform role by the name Terraform's outputs use (task roles by role name, control plane by component).
SERVICE_ACCOUNTS = {
    **{role.name: role.service_account for role in ROLES.values()},
    **{component.name: component.service_account for component in CONTROL_PLANE},
}


def _segment(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _unsigned_jwt(claims: dict) -> str:
    now = int(time.time())
    claims = {**claims, "iat": now, "exp": now + 86400}
    return ".".join([_segment({"alg": "RS256", "kid": "x"}), _segment(claims), "bm90LXNpZ25lZA"])


def service_account_token(
    issuer_url: str, service_account: str, *, namespace: str = NAMESPACE, audience=STS_AUDIENCE
) -> str:
    """A JWT for ``system:serviceaccount:<namespace>:<service_account>``; its signature is a placeholder."""
    return _unsigned_jwt(
        {"iss": issuer_url, "sub": f"system:serviceaccount:{namespace}:{service_account}", "aud": audience}
    )


GITHUB_ISSUER_URL = "https://token.actions.githubusercontent.com"


def github_actions_token(repository: str, *, ref: str = "", environment: str = "", audience=STS_AUDIENCE) -> str:
    """The OIDC token of a GitHub Actions job of ``owner/name`` (what aws-actions/configure-aws-credentials sends):
    a job with an ``environment`` gets ``sub = repo:<repo>:environment:<name>``, others ``repo:<repo>:ref:<ref>``
    (a pull request: ``ref="pull_request"`` gives ``repo:<repo>:pull_request``)."""
    if environment:
        subject = f"repo:{repository}:environment:{environment}"
    elif ref == "pull_request":
        subject = f"repo:{repository}:pull_request"
    else:
        subject = f"repo:{repository}:ref:{ref}"
    return _unsigned_jwt(
        {"iss": GITHUB_ISSUER_URL, "sub": subject, "aud": audience, "repository": repository, "ref": ref}
    )


def token_files(directory: Path, issuer_url: str, role_names: Iterable[str]) -> dict[str, str]:
    """One token file per platform role (role name -> path), each for the role's own service account."""
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for name in role_names:
        path = directory / f"{name}.token"
        path.write_text(service_account_token(issuer_url, SERVICE_ACCOUNTS[name]))
        paths[name] = str(path)
    return paths


def irsa_trust_policy(provider_arn: str, service_account: str, *, namespace: str = NAMESPACE) -> dict:
    """The trust policy terraform/modules/irsa gives a role: web identity from the cluster's OIDC provider,
    StringEquals on the service account (``<issuer>:sub``) and the STS audience (``<issuer>:aud``)."""
    issuer = provider_arn.split(":oidc-provider/", 1)[1]
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Principal": {"Federated": provider_arn},
                "Condition": {
                    "StringEquals": {
                        f"{issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                        f"{issuer}:aud": STS_AUDIENCE,
                    }
                },
            }
        ],
    }
