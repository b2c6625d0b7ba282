"""Server-side printing: the Table kubectl asks for (`kubectl get`), with the columns the real server sends
for the kinds an SRE looks at, and NAME/AGE for the rest."""

from __future__ import annotations

from datetime import UTC, datetime


def _age(obj: dict) -> str:
    created = obj["metadata"].get("creationTimestamp")
    if not created:
        return "<unknown>"
    seconds = int((datetime.now(UTC) - datetime.fromisoformat(created.replace("Z", "+00:00"))).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def _pod_cells(pod: dict) -> list:
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    containers = pod["spec"].get("containers") or []
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(s.get("restartCount", 0) for s in statuses)
    phase = (pod.get("status") or {}).get("phase", "Pending")
    reason = phase
    for status in (pod.get("status") or {}).get("initContainerStatuses") or []:
        state = status.get("state") or {}
        if "terminated" in state and state["terminated"].get("exitCode"):
            reason = "Init:" + state["terminated"].get("reason", "Error")
            break
        if "running" in state or "waiting" in state:
            reason = "Init:" + (state.get("waiting") or {}).get("reason", "Running")
            if reason == "Init:PodInitializing":
                reason = "PodInitializing"
            break
    else:
        for status in statuses:
            state = status.get("state") or {}
            if "waiting" in state and state["waiting"].get("reason"):
                reason = state["waiting"]["reason"]
            elif "terminated" in state and state["terminated"].get("reason"):
                reason = state["terminated"]["reason"]
    if pod["metadata"].get("deletionTimestamp"):
        reason = "Terminating"
    return [
        f"{ready}/{len(containers)}",
        reason,
        restarts,
        _age(pod),
        (pod.get("status") or {}).get("podIP", "<none>"),
        pod["spec"].get("nodeName", "<none>"),
    ]


COLUMNS = {
    "Pod": (["Ready", "Status", "Restarts", "Age", "IP", "Node"], _pod_cells),
    "Deployment": (
        ["Ready", "Up-to-date", "Available", "Age"],
        lambda d: [
            f"{d.get('status', {}).get('readyReplicas', 0)}/{d['spec'].get('replicas', 1)}",
            d.get("status", {}).get("updatedReplicas", 0),
            d.get("status", {}).get("availableReplicas", 0),
            _age(d),
        ],
    ),
    "ReplicaSet": (
        ["Desired", "Current", "Ready", "Age"],
        lambda r: [
            r["spec"].get("replicas", 1),
            r.get("status", {}).get("replicas", 0),
            r.get("status", {}).get("readyReplicas", 0),
            _age(r),
        ],
    ),
    "Job": (
        ["Status", "Completions", "Age"],
        lambda j: [
            next(
                (
                    c["type"]
                    for c in j.get("status", {}).get("conditions") or []
                    if c.get("status") == "True" and c["type"] in ("Complete", "Failed")
                ),
                "Running",
            ),
            f"{j.get('status', {}).get('succeeded', 0)}/{j['spec'].get('completions', 1)}",
            _age(j),
        ],
    ),
    "Service": (
        ["Type", "Cluster-IP", "Ports", "Age"],
        lambda s: [
            s["spec"].get("type", "ClusterIP"),
            s["spec"].get("clusterIP", "<none>"),
            ",".join(f"{p['port']}/{p.get('protocol', 'TCP')}" for p in s["spec"].get("ports") or []) or "<none>",
            _age(s),
        ],
    ),
    "Event": (
        ["Type", "Reason", "Object", "Message", "Last Seen"],
        lambda e: [
            e.get("type", ""),
            e.get("reason", ""),
            f"{e.get('involvedObject', {}).get('kind', '').lower()}/{e.get('involvedObject', {}).get('name', '')}",
            e.get("message", ""),
            _age(e),
        ],
    ),
}


def table(kind: str, objects: list[dict], resource_version: str) -> dict:
    names, cells = COLUMNS.get(kind, (["Age"], lambda o: [_age(o)]))
    columns = [{"name": "Name", "type": "string", "format": "name", "description": "Name", "priority": 0}]
    columns += [{"name": n, "type": "string", "format": "", "description": n, "priority": 0} for n in names]
    return {
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns,
        "rows": [{"cells": [o["metadata"]["name"], *cells(o)], "object": o} for o in objects],
    }
