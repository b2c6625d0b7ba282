"""The resources the local API server serves: what discovery lists and what the store keys by."""

from __future__ import annotations

from dataclasses import dataclass, field

ALL_VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]


@dataclass(frozen=True)
class Resource:
    group: str  # "" = core
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    short_names: tuple[str, ...] = ()
    subresources: tuple[str, ...] = ()
    verbs: tuple[str, ...] = tuple(ALL_VERBS)
    categories: tuple[str, ...] = field(default=())

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular(self) -> str:
        return self.kind.lower()


def _r(group, version, plural, kind, **kw) -> Resource:
    return Resource(group, version, plural, kind, **kw)


RESOURCES: tuple[Resource, ...] = (
    _r("", "v1", "namespaces", "Namespace", namespaced=False, short_names=("ns",), subresources=("status",)),
    _r("", "v1", "nodes", "Node", namespaced=False, short_names=("no",), subresources=("status",)),
    _r("", "v1", "pods", "Pod", short_names=("po",), subresources=("status", "log"), categories=("all",)),
    _r("", "v1", "services", "Service", short_names=("svc",), subresources=("status",), categories=("all",)),
    _r("", "v1", "endpoints", "Endpoints", short_names=("ep",)),
    _r("", "v1", "configmaps", "ConfigMap", short_names=("cm",)),
    _r("", "v1", "secrets", "Secret"),
    _r("", "v1", "serviceaccounts", "ServiceAccount", short_names=("sa",), subresources=("token",)),
    _r("", "v1", "events", "Event", short_names=("ev",)),
    _r("", "v1", "persistentvolumeclaims", "PersistentVolumeClaim", short_names=("pvc",)),
    _r("", "v1", "limitranges", "LimitRange", short_names=("limits",)),
    _r("", "v1", "resourcequotas", "ResourceQuota", short_names=("quota",)),
    _r(
        "apps",
        "v1",
        "deployments",
        "Deployment",
        short_names=("deploy",),
        subresources=("status", "scale"),
        categories=("all",),
    ),
    _r(
        "apps",
        "v1",
        "replicasets",
        "ReplicaSet",
        short_names=("rs",),
        subresources=("status", "scale"),
        categories=("all",),
    ),
    _r("apps", "v1", "statefulsets", "StatefulSet", short_names=("sts",), subresources=("status", "scale")),
    _r("apps", "v1", "daemonsets", "DaemonSet", short_names=("ds",), subresources=("status",)),
    _r("batch", "v1", "jobs", "Job", subresources=("status",), categories=("all",)),
    _r("batch", "v1", "cronjobs", "CronJob", short_names=("cj",), subresources=("status",), categories=("all",)),
    _r("rbac.authorization.k8s.io", "v1", "roles", "Role"),
    _r("rbac.authorization.k8s.io", "v1", "rolebindings", "RoleBinding"),
    _r("rbac.authorization.k8s.io", "v1", "clusterroles", "ClusterRole", namespaced=False),
    _r("rbac.authorization.k8s.io", "v1", "clusterrolebindings", "ClusterRoleBinding", namespaced=False),
    _r("policy", "v1", "poddisruptionbudgets", "PodDisruptionBudget", short_names=("pdb",), subresources=("status",)),
    _r("networking.k8s.io", "v1", "networkpolicies", "NetworkPolicy", short_names=("netpol",)),
    _r("networking.k8s.io", "v1", "ingresses", "Ingress", short_names=("ing",), subresources=("status",)),
    _r("networking.k8s.io", "v1", "ingressclasses", "IngressClass", namespaced=False),
    _r("discovery.k8s.io", "v1", "endpointslices", "EndpointSlice"),
    _r("coordination.k8s.io", "v1", "leases", "Lease"),
    _r("scheduling.k8s.io", "v1", "priorityclasses", "PriorityClass", namespaced=False, short_names=("pc",)),
    _r("storage.k8s.io", "v1", "storageclasses", "StorageClass", namespaced=False, short_names=("sc",)),
    _r(
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicies",
        "ValidatingAdmissionPolicy",
        namespaced=False,
        subresources=("status",),
    ),
    _r(
        "admissionregistration.k8s.io",
        "v1",
        "validatingadmissionpolicybindings",
        "ValidatingAdmissionPolicyBinding",
        namespaced=False,
    ),
    _r(
        "authorization.k8s.io",
        "v1",
        "selfsubjectaccessreviews",
        "SelfSubjectAccessReview",
        namespaced=False,
        verbs=("create",),
    ),
)

BY_PATH: dict[tuple[str, str, str], Resource] = {(r.group, r.version, r.plural): r for r in RESOURCES}
BY_KIND: dict[tuple[str, str], Resource] = {(r.api_version, r.kind): r for r in RESOURCES}


def groups() -> dict[str, list[str]]:
    """API group -> its versions, in discovery order."""
    out: dict[str, list[str]] = {}
    for r in RESOURCES:
        versions = out.setdefault(r.group, [])
        if r.version not in versions:
            versions.append(r.version)
    return out


def resource_list(group: str, version: str) -> dict:
    """The APIResourceList discovery answers for one group version."""
    items = []
    for r in RESOURCES:
        if (r.group, r.version) != (group, version):
            continue
        entry = {
            "name": r.plural,
            "singularName": r.singular,
            "namespaced": r.namespaced,
            "kind": r.kind,
            "verbs": list(r.verbs),
        }
        if r.short_names:
            entry["shortNames"] = list(r.short_names)
        if r.categories:
            entry["categories"] = list(r.categories)
        items.append(entry)
        for sub in r.subresources:
            verbs = {
                "status": ["get", "patch", "update"],
                "log": ["get"],
                "scale": ["get", "patch", "update"],
                "token": ["create"],
            }[sub]
            kind = {"log": "Pod", "scale": "Scale", "token": "TokenRequest"}.get(sub, r.kind)
            items.append(
                {
                    "name": f"{r.plural}/{sub}",
                    "singularName": "",
                    "namespaced": r.namespaced,
                    "kind": kind,
                    "verbs": verbs,
                }
            )
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": items,
    }
