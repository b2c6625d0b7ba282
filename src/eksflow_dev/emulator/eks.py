"""EKS for the local emulator, where moto 5.2.5 falls short of what the Terraform ``eks`` module manages:

- add-ons and access entries (aws_eks_addon, aws_eks_access_entry, aws_eks_access_policy_association):
  moto has neither API;
- a cluster's ``accessConfig`` (moto drops it, so every plan would replace the cluster);
- a node group without ``remoteAccess`` (moto invents an SSH key, so every plan would replace it), and its
  ``updateConfig`` (moto drops it).

For add-ons and access entries, just enough of the REST API for Terraform's create / read / delete cycle:
objects become ACTIVE at once, live beside the cluster in moto's EKS backend (so a moto reset clears them),
and anything else under these paths answers 400 naming the unsupported call instead of pretending.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any
from urllib.parse import unquote, urlsplit

ADDON_VERSION = "v0.0.0-eksflow-emulated"


class _NotFound(Exception):
    pass


class _Unsupported(Exception):
    pass


def emulated_objects(backend: Any) -> dict[str, dict]:
    """The add-ons, access entries and access policy associations of a region's EKS backend, by (cluster, name)."""
    return backend.__dict__.setdefault("eksflow_objects", {"addons": {}, "access_entries": {}, "policies": {}})


def _addon(cluster: str, body: dict, region: str, account: str) -> dict:
    now = time.time()
    name = body["addonName"]
    return {
        "addonName": name,
        "clusterName": cluster,
        "status": "ACTIVE",
        "addonVersion": body.get("addonVersion") or ADDON_VERSION,
        "health": {"issues": []},
        "addonArn": f"arn:aws:eks:{region}:{account}:addon/{cluster}/{name}/{uuid.uuid4()}",
        "createdAt": now,
        "modifiedAt": now,
        "serviceAccountRoleArn": body.get("serviceAccountRoleArn"),
        "configurationValues": body.get("configurationValues"),
        "tags": body.get("tags") or {},
    }


def _access_entry(cluster: str, body: dict, region: str, account: str) -> dict:
    now = time.time()
    principal = body["principalArn"]
    return {
        "clusterName": cluster,
        "principalArn": principal,
        "kubernetesGroups": body.get("kubernetesGroups") or [],
        "accessEntryArn": f"arn:aws:eks:{region}:{account}:access-entry/{cluster}/{uuid.uuid4()}",
        "createdAt": now,
        "modifiedAt": now,
        "tags": body.get("tags") or {},
        "username": body.get("username") or principal,
        "type": body.get("type") or "STANDARD",
    }


def _addons(state: dict, method: str, cluster: str, rest: list[str], body: dict, where: tuple[str, str]) -> dict:
    addons = state["addons"]
    if not rest and method == "POST":
        if (cluster, body["addonName"]) in addons:
            raise _Unsupported(f"add-on {body['addonName']} already exists")
        addon = addons[(cluster, body["addonName"])] = _addon(cluster, body, *where)
        return {"addon": addon}
    if not rest and method == "GET":
        return {"addons": sorted(name for (c, name) in addons if c == cluster)}
    if len(rest) == 1 and method in ("GET", "DELETE"):
        key = (cluster, rest[0])
        if key not in addons:
            raise _NotFound(f"No addon: {rest[0]} found in cluster: {cluster}")
        if method == "GET":
            return {"addon": addons[key]}
        return {"addon": {**addons.pop(key), "status": "DELETING"}}
    raise _Unsupported(f"{method} addons/{'/'.join(rest)}")


def _entries(state: dict, method: str, cluster: str, rest: list[str], body: dict, where: tuple[str, str]) -> dict:
    entries, policies = state["access_entries"], state["policies"]
    if not rest and method == "POST":
        entry = _access_entry(cluster, body, *where)
        entries[(cluster, entry["principalArn"])] = entry
        return {"accessEntry": entry}
    if not rest and method == "GET":
        return {"accessEntries": sorted(p for (c, p) in entries if c == cluster)}
    principal, policy_part = rest[0], rest[1:]
    key = (cluster, principal)
    if key not in entries:
        raise _NotFound(f"The specified access entry resource is not found: {principal}")
    if not policy_part and method == "GET":
        return {"accessEntry": entries[key]}
    if not policy_part and method == "DELETE":
        entries.pop(key)
        for policy_key in [k for k in policies if k[:2] == key]:
            policies.pop(policy_key)
        return {}
    if policy_part[:1] == ["access-policies"]:
        scope = {"clusterName": cluster, "principalArn": principal}
        if len(policy_part) == 1 and method == "POST":
            now = time.time()
            association = {
                "policyArn": body["policyArn"],
                "accessScope": body.get("accessScope") or {"type": "cluster"},
                "associatedAt": now,
                "modifiedAt": now,
            }
            policies[(*key, body["policyArn"])] = association
            return {**scope, "associatedAccessPolicy": association}
        if len(policy_part) == 1 and method == "GET":
            found = [policy for k, policy in sorted(policies.items()) if k[:2] == key]
            return {**scope, "associatedAccessPolicies": found}
        if len(policy_part) == 2 and method == "DELETE":
            if policies.pop((*key, policy_part[1]), None) is None:
                raise _NotFound(f"The specified access policy is not associated: {policy_part[1]}")
            return {}
    raise _Unsupported(f"{method} access-entries/{'/'.join(rest)}")


def handle(request: Any, full_url: str, headers: Any) -> tuple[int, dict[str, str], str]:
    from moto.eks.models import eks_backends
    from moto.eks.responses import EKSResponse
    from werkzeug.exceptions import HTTPException

    response = EKSResponse()
    response.setup_class(request, full_url, headers)
    try:  # these routes bypass moto's dispatch, which is where IAM enforcement checks a request
        response._authenticate_and_authorize_normal_action()
    except HTTPException as refused:
        return refused.code, dict(refused.get_headers()), refused.get_body()
    backend = eks_backends[response.current_account][response.region]
    # The raw path keeps principal and policy ARNs percent-encoded, so splitting on "/" is safe.
    segments = [unquote(part) for part in urlsplit(full_url).path.strip("/").split("/")]
    _, cluster, kind, *rest = segments
    body = json.loads(response.body or "{}")
    where = (response.region, response.current_account)
    try:
        if cluster not in backend.clusters:
            raise _NotFound(f"No cluster found for name: {cluster}.")
        route = _addons if kind == "addons" else _entries
        result = route(emulated_objects(backend), request.method, cluster, rest, body, where)
    except _NotFound as missing:
        return _error(404, "ResourceNotFoundException", str(missing))
    except _Unsupported as unsupported:
        return _error(400, "InvalidRequestException", f"not emulated by eksflow: {unsupported}")
    return 200, {"Content-Type": "application/json"}, json.dumps(result)


def _error(status: int, code: str, message: str) -> tuple[int, dict[str, str], str]:
    headers = {"Content-Type": "application/json", "x-amzn-ErrorType": code}
    return status, headers, json.dumps({"__type": code, "message": message})


def _keep_access_config() -> None:
    from moto.eks.responses import EKSResponse

    original = EKSResponse.create_cluster

    def create_cluster(self):
        result = original(self)
        cluster = self.eks_backend.clusters[self._get_param("name")]
        access = self._get_param("accessConfig") or {}
        cluster.access_config = {
            "authenticationMode": access.get("authenticationMode", "CONFIG_MAP"),
            "bootstrapClusterCreatorAdminPermissions": access.get("bootstrapClusterCreatorAdminPermissions", True),
        }
        return result

    EKSResponse.create_cluster = create_cluster


def _faithful_nodegroups() -> None:
    from moto.eks.models import Nodegroup
    from moto.eks.responses import EKSResponse

    original_init = Nodegroup.__init__
    original_create = EKSResponse.create_nodegroup

    def init(self, *args, remote_access=None, **kwargs):
        original_init(self, *args, remote_access=remote_access, **kwargs)
        self.remote_access = remote_access

    def create_nodegroup(self):
        result = original_create(self)
        cluster = self.eks_backend.clusters[self._get_param("name")]
        cluster.nodegroups[self._get_param("nodegroupName")].update_config = self._get_param("updateConfig")
        return result

    Nodegroup.__init__ = init
    EKSResponse.create_nodegroup = create_nodegroup


def patch_eks() -> None:
    from moto.eks import urls

    _keep_access_config()
    _faithful_nodegroups()

    for kind in ("addons", "access-entries"):
        urls.url_paths[f"{{0}}/clusters/(?P<name>[^/]+)/{kind}$"] = handle
        urls.url_paths[f"{{0}}/clusters/(?P<name>[^/]+)/{kind}/(?P<eksflow_rest>.+)$"] = handle
