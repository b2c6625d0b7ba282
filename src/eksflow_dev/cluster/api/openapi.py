"""The OpenAPI v3 the local API server publishes: enough for clients to learn that every resource's PATCH
takes `fieldValidation` (helm and kubectl then leave validation to the server, which validates strictly
with kubernetes-validate). No schemas: `kubectl explain` is not served."""

from __future__ import annotations

import hashlib
import json

from eksflow_dev.cluster.api.resources import RESOURCES, groups

PARAMETERS = [
    {"name": name, "in": "query", "schema": {"type": "string"}, "uniqueItems": True}
    for name in ("dryRun", "fieldManager", "fieldValidation", "force")
]


def _gv_path(group: str, version: str) -> str:
    return f"api/{version}" if not group else f"apis/{group}/{version}"


def group_version_doc(group: str, version: str) -> dict:
    paths = {}
    for r in RESOURCES:
        if (r.group, r.version) != (group, version):
            continue
        base = "/" + _gv_path(group, version)
        item = f"{base}/namespaces/{{namespace}}/{r.plural}/{{name}}" if r.namespaced else f"{base}/{r.plural}/{{name}}"
        gvk = {"group": group, "version": version, "kind": r.kind}
        paths[item] = {
            "patch": {
                "operationId": f"patch{r.kind}",
                "x-kubernetes-action": "patch",
                "x-kubernetes-group-version-kind": gvk,
                "parameters": PARAMETERS,
                "responses": {"200": {"description": "OK"}},
            }
        }
    return {"openapi": "3.0.0", "info": {"title": "Kubernetes (eksflow local)", "version": "v1"}, "paths": paths}


def root() -> dict:
    out = {}
    for group, versions in groups().items():
        for version in versions:
            digest = hashlib.sha256(json.dumps(group_version_doc(group, version)).encode()).hexdigest()[:16]
            path = _gv_path(group, version)
            out[path] = {"serverRelativeURL": f"/openapi/v3/{path}?hash={digest}"}
    return {"paths": out}


def document(path: str) -> dict | None:
    """The document for a request path like /openapi/v3/apis/apps/v1 (None: not served)."""
    rest = path.removeprefix("/openapi/v3").strip("/")
    if not rest:
        return root()
    parts = rest.split("/")
    if parts[0] == "api" and len(parts) == 2:
        return group_version_doc("", parts[1])
    if parts[0] == "apis" and len(parts) == 3 and parts[1] in groups():
        return group_version_doc(parts[1], parts[2])
    return None
