"""Airflow connections per task role.

In the cluster every role's connection is an empty ``aws://`` connection: boto3 then takes the pod's
IRSA identity (web identity token + role ARN injected by EKS). Locally the same connection ids point at
the emulator. DAG code is the same in both places.
"""

from __future__ import annotations

import json

from eksflow.roles import ROLES


def _env_var(conn_id: str) -> str:
    return f"AIRFLOW_CONN_{conn_id.upper()}"


def cluster_connections(region: str) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` values for EKS: no credentials, region only."""
    value = json.dumps({"conn_type": "aws", "extra": {"region_name": region}})
    return {_env_var(role.conn_id): value for role in ROLES.values() if role.services}


def local_connections(endpoint_url: str, region: str) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` values for the local emulator (fixed dummy keys; the emulator accepts any)."""
    value = json.dumps(
        {
            "conn_type": "aws",
            "login": "testing",
            "password": "testing",
            "extra": {"region_name": region, "endpoint_url": endpoint_url},
        }
    )
    return {_env_var(role.conn_id): value for role in ROLES.values() if role.services}


def web_identity_connections(
    endpoint_url: str, region: str, role_arns: dict[str, str], token_files: dict[str, str]
) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` values that assume each role's IAM role with AssumeRoleWithWebIdentity and the role's
    own token file (``token_files``: role name -> path, like ``role_arns``) — the STS exchange IRSA makes in a
    pod with its service account's token — against an emulator that enforces IAM. No keys at all."""
    connections = {}
    for role in ROLES.values():
        if not role.services:
            continue
        extra = {
            "region_name": region,
            "endpoint_url": endpoint_url,
            "role_arn": role_arns[role.name],
            "assume_role_method": "assume_role_with_web_identity",
            "assume_role_with_web_identity_federation": "file",
            "assume_role_with_web_identity_token_file": token_files[role.name],
        }
        connections[_env_var(role.conn_id)] = json.dumps({"conn_type": "aws", "extra": extra})
    return connections


def assumed_role_connections(endpoint_url: str, region: str, role_arns: dict[str, str]) -> dict[str, str]:
    """``AIRFLOW_CONN_*`` values that assume each role's IAM role with sts:AssumeRole from the emulator's fixed
    keys, for an emulator that does not enforce IAM but audits it (`eksflow check`): every call is signed by
    the role's session, so the emulator can evaluate it against the role's policy."""
    connections = {}
    for role in ROLES.values():
        if role.services:
            extra = {"region_name": region, "endpoint_url": endpoint_url, "role_arn": role_arns[role.name]}
            connections[_env_var(role.conn_id)] = json.dumps(
                {"conn_type": "aws", "login": "testing", "password": "testing", "extra": extra}
            )
    return connections
