"""EKS access entries on the local API server, as EKS's authenticator and authorizer treat them: the token of an
IAM principal (what `aws eks get-token` hands kubectl) authenticates as the entry's username with its Kubernetes
groups (which RBAC bindings name), and the entry's access policies allow requests beside RBAC within their scope.

Whoever stands in for Terraform (a test) adds entries to a file in the state directory; the API server reads it
when it changes. Only the two access policies the platform associates are known; any other grants nothing."""

from __future__ import annotations

import json
import os
import secrets
import threading
from dataclasses import dataclass
from pathlib import Path

from eksflow_dev.cluster.api.rbac import Attributes

POLICY_PREFIX = "arn:aws:eks::aws:cluster-access-policy/"
# terraform/modules/eks: admin_principal_arns get the first at cluster scope, the release principal the second
# scoped to the platform namespace. AmazonEKSAdminPolicy is close to Kubernetes' `admin` ClusterRole; here it
# allows every request for what lives in its namespaces (a superset: nothing at the cluster scope).
CLUSTER_ADMIN = POLICY_PREFIX + "AmazonEKSClusterAdminPolicy"
ADMIN = POLICY_PREFIX + "AmazonEKSAdminPolicy"
KNOWN_POLICIES = (CLUSTER_ADMIN, ADMIN)
RESERVED_PREFIXES = ("system:", "eks:", "aws:", "amazon:", "iam:")


@dataclass(frozen=True)
class AccessPolicy:
    arn: str
    namespaces: tuple[str, ...] | None = None  # None: access scope "cluster"

    def allows(self, attrs: Attributes) -> bool:
        in_scope = self.namespaces is None or attrs.namespace in self.namespaces
        if self.arn == CLUSTER_ADMIN:
            return in_scope
        if self.arn == ADMIN:
            return bool(attrs.namespace) and in_scope
        return False


@dataclass(frozen=True)
class AccessEntry:
    principal_arn: str
    username: str
    kubernetes_groups: tuple[str, ...]
    policies: tuple[AccessPolicy, ...]


def add_access_entry(
    path: Path,
    principal_arn: str,
    username: str,
    kubernetes_groups: list[str],
    policies: list[AccessPolicy],
) -> str:
    """Adds an entry (CreateAccessEntry + AssociateAccessPolicy) and returns the token that authenticates as it."""
    if username.startswith(RESERVED_PREFIXES):
        raise ValueError(f"username {username!r}: EKS refuses names starting with {', '.join(RESERVED_PREFIXES)}")
    for group in kubernetes_groups:
        if group.startswith("system:"):
            raise ValueError(f"kubernetes_groups: {group!r} starts with 'system:', which EKS refuses")
    for policy in policies:
        if policy.arn not in KNOWN_POLICIES:
            raise ValueError(f"access policy {policy.arn!r} is not emulated: use one of {', '.join(KNOWN_POLICIES)}")
    entries = json.loads(path.read_text()) if path.exists() else []
    token = "k8s-aws-v1." + secrets.token_urlsafe(32)
    entries.append(
        {
            "token": token,
            "principalArn": principal_arn,
            "username": username,
            "kubernetesGroups": list(kubernetes_groups),
            "accessPolicies": [
                {
                    "policyArn": p.arn,
                    "accessScope": {"type": "cluster"}
                    if p.namespaces is None
                    else {"type": "namespace", "namespaces": list(p.namespaces)},
                }
                for p in policies
            ],
        }
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_suffix(".partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # holds tokens
    with os.fdopen(fd, "w") as out:
        json.dump(entries, out, indent=2)
    partial.replace(path)
    return token


class AccessEntries:
    def __init__(self, path: Path):
        self.path = path
        self._lock = threading.Lock()
        self._stamp: tuple[int, int] | None = None
        self._by_token: dict[str, AccessEntry] = {}
        self._by_user: dict[str, AccessEntry] = {}

    def _current(self) -> tuple[dict[str, AccessEntry], dict[str, AccessEntry]]:
        with self._lock:
            try:
                stat = self.path.stat()
            except FileNotFoundError:
                self._stamp, self._by_token, self._by_user = None, {}, {}
                return self._by_token, self._by_user
            stamp = (stat.st_mtime_ns, stat.st_size)
            if stamp != self._stamp:
                by_token = {}
                for raw in json.loads(self.path.read_text()):
                    policies = tuple(
                        AccessPolicy(
                            p["policyArn"],
                            None if p["accessScope"]["type"] == "cluster" else tuple(p["accessScope"]["namespaces"]),
                        )
                        for p in raw.get("accessPolicies", [])
                    )
                    by_token[raw["token"]] = AccessEntry(
                        raw["principalArn"], raw["username"], tuple(raw.get("kubernetesGroups", [])), policies
                    )
                self._stamp, self._by_token = stamp, by_token
                self._by_user = {entry.username: entry for entry in by_token.values()}
            return self._by_token, self._by_user

    def user_of(self, token: str) -> tuple[str, list[str]] | None:
        by_token, _ = self._current()
        entry = next((e for t, e in by_token.items() if secrets.compare_digest(t, token)), None)
        if entry is None:
            return None
        return entry.username, [*entry.kubernetes_groups, "system:authenticated"]

    def allows(self, attrs: Attributes) -> bool:
        _, by_user = self._current()
        entry = by_user.get(attrs.user)
        return entry is not None and any(policy.allows(attrs) for policy in entry.policies)
