"""RBAC authorization from the Roles, ClusterRoles and their bindings in the store (the chart's own), the
way the real authorizer evaluates them; plus the built-in discovery rights of every authenticated user and the
access policies of EKS access entries (access_entries.py)."""

from __future__ import annotations

from dataclasses import dataclass

from eksflow_dev.cluster.api.resources import BY_PATH
from eksflow_dev.cluster.api.store import Store

RBAC = "rbac.authorization.k8s.io"
PUBLIC_PATHS = ("/version", "/healthz", "/livez", "/readyz")  # system:public-info-viewer: anyone
DISCOVERY_PATHS = ("/api", "/apis", "/openapi")  # system:discovery: authenticated users


@dataclass(frozen=True)
class Attributes:
    user: str
    groups: tuple[str, ...]
    verb: str
    group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    name: str = ""
    path: str = ""

    def describe(self) -> str:
        what = self.resource + (f"/{self.subresource}" if self.subresource else "")
        scope = f' in the namespace "{self.namespace}"' if self.namespace else " at the cluster scope"
        group = f'in API group "{self.group}"' if self.resource else ""
        return f'User "{self.user}" cannot {self.verb} resource "{what}" {group}{scope}'


def _subject_matches(subject: dict, attrs: Attributes, binding_namespace: str) -> bool:
    kind = subject.get("kind")
    if kind == "User":
        return subject.get("name") == attrs.user
    if kind == "Group":
        return subject.get("name") in attrs.groups
    if kind == "ServiceAccount":
        namespace = subject.get("namespace") or binding_namespace
        return attrs.user == f"system:serviceaccount:{namespace}:{subject.get('name')}"
    return False


def _rule_allows(rule: dict, attrs: Attributes) -> bool:
    verbs = rule.get("verbs") or []
    if "*" not in verbs and attrs.verb not in verbs:
        return False
    if not attrs.resource:
        return any(
            p == attrs.path or (p.endswith("*") and attrs.path.startswith(p[:-1]))
            for p in rule.get("nonResourceURLs") or []
        )
    groups = rule.get("apiGroups") or []
    if "*" not in groups and attrs.group not in groups:
        return False
    wanted = attrs.resource + (f"/{attrs.subresource}" if attrs.subresource else "")
    resources = rule.get("resources") or []
    if not any(r in ("*", wanted) or (r.startswith("*/") and attrs.subresource == r[2:]) for r in resources):
        return False
    names = rule.get("resourceNames") or []
    return not names or attrs.name in names


class Authorizer:
    def __init__(self, store: Store, access_entries=None):
        self.store = store
        self.access_entries = access_entries  # EKS access policies, allowed beside RBAC (access_entries.py)

    def allowed(self, attrs: Attributes) -> bool:
        if "system:masters" in attrs.groups:
            return True
        if self.access_entries is not None and self.access_entries.allows(attrs):
            return True
        authenticated = "system:authenticated" in attrs.groups
        if not attrs.resource:
            paths = PUBLIC_PATHS + (DISCOVERY_PATHS if authenticated else ())
            return any(attrs.path == p or attrs.path.startswith(p + "/") for p in paths)
        if attrs.group == "authorization.k8s.io" and attrs.resource.startswith("selfsubject"):
            return authenticated
        role = BY_PATH[(RBAC, "v1", "roles")]
        cluster_role = BY_PATH[(RBAC, "v1", "clusterroles")]
        bindings, _ = self.store.list(BY_PATH[(RBAC, "v1", "clusterrolebindings")])
        if attrs.namespace:
            local, _ = self.store.list(BY_PATH[(RBAC, "v1", "rolebindings")], attrs.namespace)
            bindings += local
        for binding in bindings:
            binding_ns = binding["metadata"].get("namespace", "")
            if not any(_subject_matches(s, attrs, binding_ns) for s in binding.get("subjects") or []):
                continue
            ref = binding["roleRef"]
            if ref["kind"] == "Role":
                rules = (self.store.find(role, binding_ns, ref["name"]) or {}).get("rules")
            else:
                rules = (self.store.find(cluster_role, "", ref["name"]) or {}).get("rules")
            if any(_rule_allows(rule, attrs) for rule in rules or []):
                return True
        return False
