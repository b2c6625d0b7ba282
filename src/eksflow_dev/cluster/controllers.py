"""The controllers the chart and `helm --wait` need, reconciling on every change of the store: namespaces
(default ServiceAccount, root CA ConfigMap), the scheduler (binds pods to the node if its selector and
taints allow), Deployments → ReplicaSets → Pods (rolling updates, status, progress deadline), Jobs → Pods
(backoff limit, deadline, TTL), Service → Endpoints, and the garbage collector (owner references,
foreground and orphan deletion)."""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import logging
import math
import threading
import time
import uuid
from datetime import UTC, datetime

from eksflow_dev.cluster.api.resources import BY_PATH, RESOURCES, Resource
from eksflow_dev.cluster.api.selectors import match_selector
from eksflow_dev.cluster.api.server import Api
from eksflow_dev.cluster.api.store import ApiError, now

log = logging.getLogger("eksflow.cluster.controllers")

PODS = BY_PATH[("", "v1", "pods")]
NAMESPACES = BY_PATH[("", "v1", "namespaces")]
ACCOUNTS = BY_PATH[("", "v1", "serviceaccounts")]
CONFIGMAPS = BY_PATH[("", "v1", "configmaps")]
SERVICES = BY_PATH[("", "v1", "services")]
ENDPOINTS = BY_PATH[("", "v1", "endpoints")]
EVENTS = BY_PATH[("", "v1", "events")]
NODES = BY_PATH[("", "v1", "nodes")]
DEPLOYMENTS = BY_PATH[("apps", "v1", "deployments")]
REPLICASETS = BY_PATH[("apps", "v1", "replicasets")]
JOBS = BY_PATH[("batch", "v1", "jobs")]
JOB_BACKOFF_SECONDS = 10.0  # the Job controller's first retry delay (doubles per failure, as upstream)


def _seconds_since(stamp: str | None) -> float:
    if not stamp:
        return 0.0
    return (datetime.now(UTC) - datetime.fromisoformat(stamp.replace("Z", "+00:00"))).total_seconds()


def pod_ready(pod: dict) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in (pod.get("status") or {}).get("conditions", []))


def _active(pod: dict) -> bool:
    return (pod.get("status") or {}).get("phase") not in ("Succeeded", "Failed") and not pod["metadata"].get(
        "deletionTimestamp"
    )


def _owned_by(obj: dict, owner: dict) -> bool:
    return any(ref.get("uid") == owner["metadata"]["uid"] for ref in obj["metadata"].get("ownerReferences") or [])


def _owner_ref(owner: dict, resource: Resource) -> dict:
    return {
        "apiVersion": resource.api_version,
        "kind": resource.kind,
        "name": owner["metadata"]["name"],
        "uid": owner["metadata"]["uid"],
        "controller": True,
        "blockOwnerDeletion": True,
    }


def _set_condition(
    conditions: list[dict], kind: str, status: str, reason: str, message: str = "", *, update_time: bool = False
) -> None:
    """Set a condition; `update_time`: the kind's conditions have lastUpdateTime (Deployment's do; Pod's and
    Job's do not, and the strict schema refuses the field on them at the next update)."""
    stamp = now()
    for condition in conditions:
        if condition["type"] == kind:
            if condition["status"] != status:
                condition["lastTransitionTime"] = stamp
            if update_time and (condition.get("reason") != reason or condition["status"] != status):
                condition["lastUpdateTime"] = stamp
            condition.update(status=status, reason=reason, message=message)
            return
    conditions.append(
        {
            "type": kind,
            "status": status,
            "reason": reason,
            "message": message,
            "lastTransitionTime": stamp,
            **({"lastUpdateTime": stamp} if update_time else {}),
        }
    )


def _resolve(value, total: int, round_up: bool) -> int:
    if isinstance(value, str) and value.endswith("%"):
        exact = total * int(value[:-1]) / 100
        return math.ceil(exact) if round_up else math.floor(exact)
    return int(value)


def template_hash(template: dict) -> str:
    return hashlib.sha256(json.dumps(template, sort_keys=True).encode()).hexdigest()[:10]


class Controllers:
    def __init__(self, api: Api):
        self.api, self.store = api, api.store
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="controllers", daemon=True)
        self._job_retry_at: dict[str, float] = {}  # "<job uid>/<failures>" -> when the next pod may start

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        seen, last_pass = "", 0.0
        while not self._stop.is_set():
            current = self.store.resource_version
            # a change, or time-driven work (deadlines, backoff, TTL): at least one pass a second
            if current == seen and time.monotonic() - last_pass < 1.0:
                self._stop.wait(0.1)
                continue
            seen, last_pass = current, time.monotonic()
            for step in (
                self.namespaces,
                self.garbage_collect,
                self.schedule,
                self.deployments,
                self.replicasets,
                self.jobs,
                self.endpoints,
            ):
                try:
                    step()
                except ApiError as error:  # a conflict or a race with a client: the next pass retries
                    log.debug("%s: %s", step.__name__, error.message)
                except Exception:
                    log.exception("controller step %s failed", step.__name__)

    # ------------------------------------------------------------------ events
    def event(self, obj: dict, kind: str, reason: str, message: str, component: str = "controller-manager") -> None:
        namespace = obj["metadata"].get("namespace") or "default"
        involved = {
            "kind": obj.get("kind"),
            "apiVersion": obj.get("apiVersion"),
            "name": obj["metadata"]["name"],
            "namespace": namespace,
            "uid": obj["metadata"].get("uid"),
        }
        with contextlib.suppress(ApiError):
            self.store.create(
                EVENTS,
                {
                    "apiVersion": "v1",
                    "kind": "Event",
                    "metadata": {"name": f"{obj['metadata']['name']}.{uuid.uuid4().hex[:12]}", "namespace": namespace},
                    "involvedObject": involved,
                    "reason": reason,
                    "message": message,
                    "type": kind,
                    "count": 1,
                    "firstTimestamp": now(),
                    "lastTimestamp": now(),
                    "source": {"component": component},
                },
            )

    # ------------------------------------------------------------------ namespaces
    def namespaces(self) -> None:
        ca = self.api.layout.pki_dir / "ca.crt"
        for namespace in self.store.list(NAMESPACES)[0]:
            name = namespace["metadata"]["name"]
            if namespace["metadata"].get("deletionTimestamp"):
                continue
            defaults = (
                (ACCOUNTS, {"kind": "ServiceAccount", "metadata": {"name": "default"}}),
                (
                    CONFIGMAPS,
                    {"kind": "ConfigMap", "metadata": {"name": "kube-root-ca.crt"}, "data": {"ca.crt": ca.read_text()}},
                ),
            )
            for resource, body in defaults:
                if self.store.find(resource, name, body["metadata"]["name"]) is None:
                    body["metadata"]["namespace"] = name
                    with contextlib.suppress(ApiError):
                        self.store.create(resource, {"apiVersion": "v1", **body})

    # ------------------------------------------------------------------ garbage collector
    def garbage_collect(self) -> None:
        uids: dict[str, dict] = {}
        everything: list[tuple[Resource, dict]] = []
        for resource in RESOURCES:
            if resource.plural in ("events", "selfsubjectaccessreviews"):
                continue
            for obj in self.store.list(resource)[0]:
                uids[obj["metadata"]["uid"]] = obj
                everything.append((resource, obj))
        for resource, obj in everything:
            meta = obj["metadata"]
            refs = meta.get("ownerReferences") or []
            if refs and not any(ref["uid"] in uids for ref in refs):
                with contextlib.suppress(ApiError):
                    self.api.delete(resource, meta.get("namespace", ""), meta["name"], {})
                continue
            finalizers = meta.get("finalizers") or []
            if not meta.get("deletionTimestamp") or not ({"foregroundDeletion", "orphan"} & set(finalizers)):
                continue
            dependents = [(r, o) for r, o in everything if _owned_by(o, obj)]
            if "orphan" in finalizers:
                for dep_resource, dep in dependents:
                    self.store.mutate(
                        dep_resource,
                        dep["metadata"].get("namespace", ""),
                        dep["metadata"]["name"],
                        lambda o, uid=meta["uid"]: o["metadata"].__setitem__(
                            "ownerReferences",
                            [r for r in o["metadata"].get("ownerReferences") or [] if r["uid"] != uid],
                        ),
                    )
                dependents = []
            for dep_resource, dep in dependents:
                if not dep["metadata"].get("deletionTimestamp"):
                    with contextlib.suppress(ApiError):
                        self.api.delete(
                            dep_resource,
                            dep["metadata"].get("namespace", ""),
                            dep["metadata"]["name"],
                            {"propagationPolicy": "Foreground"},
                        )
            if not dependents:
                self.store.mutate(
                    resource,
                    meta.get("namespace", ""),
                    meta["name"],
                    lambda o: o["metadata"].__setitem__(
                        "finalizers",
                        [f for f in o["metadata"].get("finalizers") or [] if f not in ("foregroundDeletion", "orphan")],
                    ),
                )

    # ------------------------------------------------------------------ scheduler
    def schedule(self) -> None:
        nodes = [
            n
            for n in self.store.list(NODES)[0]
            if any(
                c["type"] == "Ready" and c["status"] == "True" for c in (n.get("status") or {}).get("conditions", [])
            )
        ]
        for pod in self.store.list(PODS)[0]:
            if pod["spec"].get("nodeName") or not _active(pod):
                continue
            fits = [n for n in nodes if self._fits(pod, n)]
            meta = pod["metadata"]
            if not fits:
                conditions = (pod.get("status") or {}).get("conditions") or []
                if not any(c["type"] == "PodScheduled" for c in conditions):
                    message = (
                        f"0/{len(nodes)} nodes are available: the pod's nodeSelector or tolerations match no node"
                        if nodes
                        else "no nodes available to schedule pods"
                    )
                    self.store.mutate(
                        PODS,
                        meta["namespace"],
                        meta["name"],
                        lambda p, m=message: _set_condition(
                            p.setdefault("status", {}).setdefault("conditions", []),
                            "PodScheduled",
                            "False",
                            "Unschedulable",
                            m,
                        ),
                        status_only=True,
                    )
                    self.event(pod, "Warning", "FailedScheduling", message, "default-scheduler")
                continue
            node = fits[0]["metadata"]["name"]

            def bind(p, node=node):
                p["spec"]["nodeName"] = node
                _set_condition(p.setdefault("status", {}).setdefault("conditions", []), "PodScheduled", "True", "")

            self.store.mutate(PODS, meta["namespace"], meta["name"], bind)
            self.event(
                pod,
                "Normal",
                "Scheduled",
                f"Successfully assigned {meta['namespace']}/{meta['name']} to {node}",
                "default-scheduler",
            )

    @staticmethod
    def _fits(pod: dict, node: dict) -> bool:
        labels = node["metadata"].get("labels") or {}
        if any(labels.get(k) != v for k, v in (pod["spec"].get("nodeSelector") or {}).items()):
            return False
        tolerations = pod["spec"].get("tolerations") or []
        for taint in node["spec"].get("taints") or []:
            if taint.get("effect") not in ("NoSchedule", "NoExecute"):
                continue
            if not any(
                (t.get("operator") == "Exists" and t.get("key") in (None, taint["key"]))
                or (t.get("key") == taint["key"] and t.get("value") == taint.get("value"))
                for t in tolerations
                if t.get("effect") in (None, "", taint["effect"])
            ):
                return False
        return True

    # ------------------------------------------------------------------ pods of a controller
    def _create_pod(self, owner: dict, resource: Resource, template: dict, name: str, labels: dict) -> bool:
        meta = copy.deepcopy(template.get("metadata") or {})
        meta["labels"] = {**(meta.get("labels") or {}), **labels}
        meta.update(name=name, namespace=owner["metadata"]["namespace"], ownerReferences=[_owner_ref(owner, resource)])
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": copy.deepcopy(template["spec"])}
        try:
            self.api.create(PODS, owner["metadata"]["namespace"], pod)
        except ApiError as error:
            self.event(owner, "Warning", "FailedCreate", f"Error creating: {error.message}")
            return False
        self.event(owner, "Normal", "SuccessfulCreate", f"Created pod: {name}")
        return True

    def _delete_pod(self, pod: dict) -> None:
        with contextlib.suppress(ApiError):
            self.api.delete(PODS, pod["metadata"]["namespace"], pod["metadata"]["name"], {})

    # ------------------------------------------------------------------ replica sets
    def replicasets(self) -> None:
        pods = self.store.list(PODS)[0]
        for rs in self.store.list(REPLICASETS)[0]:
            if rs["metadata"].get("deletionTimestamp"):
                continue
            mine = [p for p in pods if _owned_by(p, rs)]
            active = [p for p in mine if _active(p)]
            want = rs["spec"].get("replicas", 1)
            if len(active) < want:
                labels = (rs["spec"]["template"].get("metadata") or {}).get("labels") or {}
                for _ in range(want - len(active)):
                    self._create_pod(
                        rs,
                        REPLICASETS,
                        rs["spec"]["template"],
                        f"{rs['metadata']['name']}-{uuid.uuid4().hex[:5]}",
                        labels,
                    )
            elif len(active) > want:
                for pod in sorted(active, key=pod_ready)[: len(active) - want]:
                    self._delete_pod(pod)
            for pod in mine:
                if (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed"):
                    self._delete_pod(pod)  # a finished pod of a ReplicaSet is replaced (restartPolicy Always)
            ready = sum(1 for p in active if pod_ready(p))
            status = {
                "replicas": len(active),
                "fullyLabeledReplicas": len(active),
                "readyReplicas": ready,
                "availableReplicas": ready,
                "observedGeneration": rs["metadata"].get("generation", 1),
            }
            if (rs.get("status") or {}) != status:
                self.store.mutate(
                    REPLICASETS,
                    rs["metadata"]["namespace"],
                    rs["metadata"]["name"],
                    lambda o, s=status: o.__setitem__("status", s),
                    status_only=True,
                )

    # ------------------------------------------------------------------ deployments
    def deployments(self) -> None:
        all_sets = self.store.list(REPLICASETS)[0]
        for deploy in self.store.list(DEPLOYMENTS)[0]:
            if deploy["metadata"].get("deletionTimestamp"):
                continue
            self._deployment(deploy, [rs for rs in all_sets if _owned_by(rs, deploy)])

    def _deployment(self, deploy: dict, sets: list[dict]) -> None:
        meta, spec = deploy["metadata"], deploy["spec"]
        namespace, desired = meta["namespace"], spec.get("replicas", 1)
        template = copy.deepcopy(spec["template"])
        digest = template_hash(template)
        name = f"{meta['name']}-{digest}"
        new = next((rs for rs in sets if rs["metadata"]["name"] == name), None)
        revisions = [
            int((rs["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision", 0)) for rs in sets
        ]
        if new is None:
            template.setdefault("metadata", {}).setdefault("labels", {})["pod-template-hash"] = digest
            selector = copy.deepcopy(spec["selector"])
            selector.setdefault("matchLabels", {})["pod-template-hash"] = digest
            rs = {
                "apiVersion": "apps/v1",
                "kind": "ReplicaSet",
                "metadata": {
                    "name": name,
                    "namespace": namespace,
                    "labels": {**(template["metadata"].get("labels") or {})},
                    "annotations": {"deployment.kubernetes.io/revision": str(max(revisions, default=0) + 1)},
                    "ownerReferences": [_owner_ref(deploy, DEPLOYMENTS)],
                },
                "spec": {"replicas": 0, "selector": selector, "template": template},
            }
            new = self.api.create(REPLICASETS, namespace, rs)
            self.event(deploy, "Normal", "ScalingReplicaSet", f"Scaled up replica set {name} from 0 to 0")
            sets = [*sets, new]
        elif int((new["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision", 0)) < max(
            revisions
        ):  # a rollback to an older template: that ReplicaSet becomes the newest revision
            revision = str(max(revisions) + 1)

            def bump(o):
                o["metadata"].setdefault("annotations", {})["deployment.kubernetes.io/revision"] = revision

            self.store.mutate(REPLICASETS, namespace, name, bump)
        old = [rs for rs in sets if rs["metadata"]["name"] != name]
        strategy = spec.get("strategy") or {}

        def scale(rs: dict, replicas: int) -> None:
            if rs["spec"].get("replicas", 0) != replicas:
                self.event(
                    deploy,
                    "Normal",
                    "ScalingReplicaSet",
                    f"Scaled {'up' if replicas > rs['spec'].get('replicas', 0) else 'down'} replica set "
                    f"{rs['metadata']['name']} from {rs['spec'].get('replicas', 0)} to {replicas}",
                )
                self.store.mutate(
                    REPLICASETS,
                    namespace,
                    rs["metadata"]["name"],
                    lambda o: o["spec"].__setitem__("replicas", replicas),
                )
                rs["spec"]["replicas"] = replicas

        def available(rs: dict) -> int:
            return (rs.get("status") or {}).get("availableReplicas", 0)

        if strategy.get("type") == "Recreate":
            for rs in old:
                scale(rs, 0)
            if all((rs.get("status") or {}).get("replicas", 0) == 0 for rs in old):
                scale(new, desired)
        else:
            rolling = strategy.get("rollingUpdate") or {}
            surge = _resolve(rolling.get("maxSurge", "25%"), desired, True)
            unavailable = _resolve(rolling.get("maxUnavailable", "25%"), desired, False)
            if surge == 0 and unavailable == 0:
                unavailable = 1
            old_total = sum(rs["spec"].get("replicas", 0) for rs in old)
            room = desired + surge - old_total - new["spec"].get("replicas", 0)
            target = min(desired, new["spec"].get("replicas", 0) + max(room, 0))
            if new["spec"].get("replicas", 0) > desired:
                target = desired
            scale(new, target)
            min_available = desired - unavailable
            total_available = available(new) + sum(available(rs) for rs in old)
            can_remove = total_available - min_available
            for rs in sorted(old, key=available):  # unavailable pods of old sets go first, at no cost
                current = rs["spec"].get("replicas", 0)
                unready = current - available(rs)
                remove = min(current, unready + max(can_remove, 0))
                if remove > 0:
                    scale(rs, current - remove)
                    can_remove -= max(0, remove - unready)
        self._deployment_status(deploy, new, old, desired)
        history = spec.get("revisionHistoryLimit", 10)
        idle = sorted(
            (rs for rs in old if rs["spec"].get("replicas", 0) == 0 and not (rs.get("status") or {}).get("replicas")),
            key=lambda rs: int(rs["metadata"].get("annotations", {}).get("deployment.kubernetes.io/revision", 0)),
        )
        for rs in idle[: max(0, len(idle) - history)]:
            with contextlib.suppress(ApiError):
                self.api.delete(REPLICASETS, namespace, rs["metadata"]["name"], {})

    def _deployment_status(self, deploy: dict, new: dict, old: list[dict], desired: int) -> None:
        meta = deploy["metadata"]
        sets = [new, *old]
        replicas = sum((rs.get("status") or {}).get("replicas", 0) for rs in sets)
        ready = sum((rs.get("status") or {}).get("readyReplicas", 0) for rs in sets)
        avail = sum((rs.get("status") or {}).get("availableReplicas", 0) for rs in sets)
        updated = (new.get("status") or {}).get("replicas", 0)
        current = copy.deepcopy((deploy.get("status") or {}).get("conditions") or [])
        complete = (
            updated == desired
            and replicas == desired
            and avail == desired
            and (new.get("status") or {}).get("observedGeneration", 0) >= new["metadata"].get("generation", 1)
        )
        rolling = deploy["spec"].get("strategy", {}).get("rollingUpdate") or {}
        min_available = desired - _resolve(rolling.get("maxUnavailable", "25%"), desired, False)
        _set_condition(
            current,
            "Available",
            "True" if avail >= min_available else "False",
            "MinimumReplicasAvailable" if avail >= min_available else "MinimumReplicasUnavailable",
            "Deployment has minimum availability."
            if avail >= min_available
            else "Deployment does not have minimum availability.",
            update_time=True,
        )
        progressing = next((c for c in current if c["type"] == "Progressing"), None)
        name = new["metadata"]["name"]
        if complete:
            _set_condition(
                current,
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{name}" has successfully progressed.',
                update_time=True,
            )
        elif (
            progressing
            and progressing["reason"] == "ProgressDeadlineExceeded"
            and progressing.get("message", "").startswith(f'ReplicaSet "{name}"')
        ):
            pass  # sticks for this rollout; a new template (a new ReplicaSet) starts a new clock
        elif (
            progressing
            and progressing["reason"] == "ReplicaSetUpdated"
            and progressing.get("message", "").startswith(f'ReplicaSet "{name}"')
            and _seconds_since(progressing.get("lastUpdateTime")) > deploy["spec"].get("progressDeadlineSeconds", 600)
        ):
            _set_condition(
                current,
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{name}" has timed out progressing.',
                update_time=True,
            )
        elif (
            not progressing
            or progressing.get("reason") != "ReplicaSetUpdated"
            or not progressing.get("message", "").startswith(f'ReplicaSet "{name}"')
        ):
            _set_condition(
                current,
                "Progressing",
                "True",
                "ReplicaSetUpdated",
                f'ReplicaSet "{name}" is progressing.',
                update_time=True,
            )
        status = {
            "observedGeneration": meta.get("generation", 1),
            "replicas": replicas,
            "updatedReplicas": updated,
            "readyReplicas": ready,
            "availableReplicas": avail,
            "unavailableReplicas": max(0, replicas - avail),
            "conditions": current,
        }
        status = {k: v for k, v in status.items() if v or k in ("observedGeneration", "conditions")}
        if (deploy.get("status") or {}) != status:
            revision = (new["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision", "1")

            def write(o):
                o["status"] = status

            self.store.mutate(DEPLOYMENTS, meta["namespace"], meta["name"], write, status_only=True)
            if (meta.get("annotations") or {}).get("deployment.kubernetes.io/revision") != revision:
                self.store.mutate(
                    DEPLOYMENTS,
                    meta["namespace"],
                    meta["name"],
                    lambda o: (
                        o["metadata"]
                        .setdefault("annotations", {})
                        .__setitem__("deployment.kubernetes.io/revision", revision)
                    ),
                )

    # ------------------------------------------------------------------ jobs
    def jobs(self) -> None:
        pods = self.store.list(PODS)[0]
        for job in self.store.list(JOBS)[0]:
            if not job["metadata"].get("deletionTimestamp"):
                self._job(job, [p for p in pods if _owned_by(p, job)])

    def _job(self, job: dict, pods: list[dict]) -> None:
        meta, spec = job["metadata"], job["spec"]
        namespace, name = meta["namespace"], meta["name"]
        status = copy.deepcopy(job.get("status") or {})
        conditions = status.setdefault("conditions", [])
        finished = next(
            (c["type"] for c in conditions if c["type"] in ("Complete", "Failed") and c["status"] == "True"), None
        )
        if finished:
            ttl = spec.get("ttlSecondsAfterFinished")
            ended = status.get("completionTime") or next(
                (c["lastTransitionTime"] for c in conditions if c["type"] == "Failed"), None
            )
            if ttl is not None and _seconds_since(ended) >= ttl:
                with contextlib.suppress(ApiError):
                    self.api.delete(JOBS, namespace, name, {"propagationPolicy": "Background"})
            return
        status.setdefault("startTime", now())
        succeeded = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Succeeded")
        failed = sum(1 for p in pods if (p.get("status") or {}).get("phase") == "Failed")
        active = [p for p in pods if _active(p)]
        deadline = spec.get("activeDeadlineSeconds")
        outcome = None
        if succeeded >= spec.get("completions", 1):
            outcome = ("Complete", "", "")
        elif failed > spec.get("backoffLimit", 6):
            outcome = ("Failed", "BackoffLimitExceeded", "Job has reached the specified backoff limit")
        elif deadline is not None and _seconds_since(status["startTime"]) > deadline:
            outcome = ("Failed", "DeadlineExceeded", "Job was active longer than specified deadline")
        if outcome:
            for pod in active:
                self._delete_pod(pod)
            kind, reason, message = outcome
            if kind == "Complete":
                _set_condition(
                    conditions,
                    "SuccessCriteriaMet",
                    "True",
                    "CompletionsReached",
                    "Reached expected number of succeeded pods",
                )
                status["completionTime"] = now()
            else:
                _set_condition(conditions, "FailureTarget", "True", reason, message)
            _set_condition(
                conditions,
                kind,
                "True",
                reason or "CompletionsReached",
                message or "Reached expected number of succeeded pods",
            )
            self.event(
                job,
                "Normal" if kind == "Complete" else "Warning",
                "Completed" if kind == "Complete" else reason,
                message or "Job completed",
            )
            active = []
        elif not active and self._job_may_retry(meta["uid"], failed):
            labels = (spec["template"].get("metadata") or {}).get("labels") or {}
            self._create_pod(job, JOBS, spec["template"], f"{name}-{uuid.uuid4().hex[:5]}", labels)
        status.update(
            active=len(active), succeeded=succeeded, failed=failed, ready=sum(1 for p in active if pod_ready(p))
        )
        status = {k: v for k, v in status.items() if v not in (0, None) or k == "ready"}
        if status != (job.get("status") or {}):
            self.store.mutate(JOBS, namespace, name, lambda o: o.__setitem__("status", status), status_only=True)

    def _job_may_retry(self, uid: str, failed: int) -> bool:
        """Upstream backoff: the n-th retry waits 10 s * 2^(n-1) after the failure that caused it."""
        if failed == 0:
            return True
        key = f"{uid}/{failed}"
        due = self._job_retry_at.setdefault(key, time.monotonic() + JOB_BACKOFF_SECONDS * 2 ** (failed - 1))
        return time.monotonic() >= due

    # ------------------------------------------------------------------ endpoints
    def endpoints(self) -> None:
        pods = self.store.list(PODS)[0]
        for service in self.store.list(SERVICES)[0]:
            selector = service["spec"].get("selector")
            if not selector:
                continue
            meta = service["metadata"]
            ready = [
                p
                for p in pods
                if p["metadata"]["namespace"] == meta["namespace"]
                and _active(p)
                and match_selector({"matchLabels": selector}, p["metadata"].get("labels") or {})
                and pod_ready(p)
                and (p.get("status") or {}).get("podIP")
            ]
            ports = []
            for port in service["spec"].get("ports") or []:
                target = port.get("targetPort", port["port"])
                if isinstance(target, str) and ready:
                    numbers = [
                        cp["containerPort"]
                        for c in ready[0]["spec"]["containers"]
                        for cp in c.get("ports") or []
                        if cp.get("name") == target
                    ]
                    target = numbers[0] if numbers else None
                if isinstance(target, int):
                    entry = {"port": target, "protocol": port.get("protocol", "TCP")}
                    if port.get("name"):
                        entry["name"] = port["name"]
                    ports.append(entry)
            subsets = []
            if ready and ports:
                addresses = [
                    {
                        "ip": p["status"]["podIP"],
                        "nodeName": p["spec"].get("nodeName"),
                        "targetRef": {
                            "kind": "Pod",
                            "name": p["metadata"]["name"],
                            "namespace": meta["namespace"],
                            "uid": p["metadata"]["uid"],
                        },
                    }
                    for p in ready
                ]
                subsets = [{"addresses": addresses, "ports": ports}]
            body = {
                "apiVersion": "v1",
                "kind": "Endpoints",
                "metadata": {
                    "name": meta["name"],
                    "namespace": meta["namespace"],
                    "labels": dict(meta.get("labels") or {}),
                },
                "subsets": subsets,
            }
            existing = self.store.find(ENDPOINTS, meta["namespace"], meta["name"])
            if existing is None:
                self.store.create(ENDPOINTS, body)
            elif existing.get("subsets") != subsets:
                self.store.mutate(
                    ENDPOINTS, meta["namespace"], meta["name"], lambda o, s=subsets: o.__setitem__("subsets", s)
                )
