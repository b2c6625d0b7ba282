"""What the release (`make deploy STAGE=release`) may do in the cluster, derived from the chart as the release
renders it and from the cluster's own discovery — and nothing more.

- In the platform namespace the release principal's EKS access entry holds AmazonEKSAdminPolicy (Terraform).
- At the cluster scope it needs RBAC, which `eksflow cluster-bootstrap` makes: a ClusterRole bound to the Kubernetes
  group the access entry maps to (the role model's release_kubernetes_group). A cluster admin applies it once, and
  again when the chart's cluster-scoped objects change: the release cannot grant itself rights.
- The platform Namespace and its restricted Pod Security labels are the bootstrap's too: the release may only read
  it. Were it allowed to patch it, it could label it privileged and run a host pod (node root).
- The deploy checks every right with `kubectl auth can-i` before anything in the cluster changes.

Every create is a server-side apply (kubectl --server-side, helm --server-side=true): kube-apiserver authorizes an
apply that creates an object as `patch` and `create` with the object's name, so `resourceNames` hold for create too.
A POST carries no name and is refused: the release can create the chart's admission policies, no other.
"""

from __future__ import annotations

import json
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import yaml

from eksflow.platform import NAMESPACE, RELEASE_KUBERNETES_GROUP

RBAC = "rbac.authorization.k8s.io"
CLUSTER_ROLE = RELEASE_KUBERNETES_GROUP  # the ClusterRole and its binding are named after the group they serve
FIELD_MANAGER = "eksflow-cluster-bootstrap"

# On each cluster-scoped object of the chart, by name: get (helm's ownership check before it applies), patch and
# create (an apply that creates), delete (an object the chart stops rendering; a failed first install rolled back).
NAMED_VERBS = ("get", "create", "patch", "delete")
# On the platform Namespace, which the bootstrap makes: get (the deploy checks its Pod Security labels).
NAMESPACE_VERBS = ("get",)
# helm's --wait (its kstatus watcher) lists and watches each kind it installed across the cluster, by no name.
KIND_VERBS = ("list", "watch")
# In the namespace (the access policy's part): helm applies each kind it renders, its release records are Secrets.
NAMESPACED_VERBS = ("create", "patch")


@dataclass(frozen=True)
class Right:
    verb: str
    group: str
    resource: str  # plural, as RBAC and discovery name it
    name: str = ""  # "" = any object of the resource
    namespace: str = ""  # "" = at the cluster scope

    @property
    def target(self) -> str:
        qualified = f"{self.resource}.{self.group}" if self.group else self.resource
        return f"{qualified}/{self.name}" if self.name else qualified

    def can_i(self) -> list[str]:
        """`kubectl auth can-i` arguments that ask for exactly this right (-A: at the cluster scope, where a
        RoleBinding of kubectl's default namespace counts for nothing)."""
        return ["auth", "can-i", self.verb, self.target, *(["-n", self.namespace] if self.namespace else ["-A"])]


@dataclass(frozen=True)
class Kind:
    group: str
    resource: str
    namespaced: bool


def render(helm_args: list[str], *, helm: str = "helm") -> list[dict]:
    """The chart's objects as `helm template` renders them (hooks and tests included: the release installs them)."""
    result = subprocess.run([helm, "template", *helm_args], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        last = (result.stderr.strip().splitlines() or ["(no output)"])[-1]
        raise ValueError(f"helm template {' '.join(helm_args)} failed: {last}")
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


def discover(api_versions: set[str], *, kubectl: str = "kubectl") -> dict[tuple[str, str], Kind]:
    """(apiVersion, kind) → its resource and scope, from the cluster's discovery (what helm's REST mapper reads)."""
    kinds: dict[tuple[str, str], Kind] = {}
    for api_version in sorted(api_versions | {"v1"}):
        path = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
        result = subprocess.run([kubectl, "get", "--raw", path], capture_output=True, text=True, check=False)
        if result.returncode != 0:
            continue  # not served: the object that needs it is named below
        group = api_version.rpartition("/")[0]
        for entry in json.loads(result.stdout).get("resources", []):
            if "/" not in entry["name"]:
                kinds[(api_version, entry["kind"])] = Kind(group, entry["name"], entry["namespaced"])
    return kinds


def release_rights(helm_args: list[str]) -> list[Right]:
    """The rights of a release of the chart with these `helm template` arguments, on the current cluster."""
    docs = render(helm_args)
    return required_rights(docs, discover({doc["apiVersion"] for doc in docs}))


def required_rights(docs: list[dict], kinds: dict[tuple[str, str], Kind]) -> list[Right]:
    """Every right the release uses: the cluster-scoped ones first (the bootstrap's), then the namespace's."""
    cluster: list[Right] = [Right(verb, "", "namespaces", NAMESPACE) for verb in NAMESPACE_VERBS]
    namespaced: list[Right] = []
    for doc in docs:
        kind = kinds.get((doc["apiVersion"], doc["kind"]))
        if kind is None:
            raise ValueError(
                f"the cluster does not serve {doc['apiVersion']} {doc['kind']} ({doc['metadata']['name']} in the "
                "chart): install what serves it (a CRD) or turn off the chart value that renders it"
            )
        if kind.namespaced:
            where = doc["metadata"].get("namespace") or NAMESPACE
            namespaced += [Right(verb, kind.group, kind.resource, namespace=where) for verb in NAMESPACED_VERBS]
        else:
            cluster += [Right(verb, kind.group, kind.resource, doc["metadata"]["name"]) for verb in NAMED_VERBS]
            cluster += [Right(verb, kind.group, kind.resource) for verb in KIND_VERBS]
    namespaced += [Right(verb, "", "secrets", namespace=NAMESPACE) for verb in NAMESPACED_VERBS]  # helm's records
    return list(dict.fromkeys(cluster + namespaced))


def cluster_role(rights: list[Right]) -> dict:
    """The release's ClusterRole from its cluster-scoped rights: one rule per resource and set of names."""
    names: dict[tuple[str, str, str], tuple[str, ...] | None] = {}  # (group, resource, verb) → names; None: any
    for right in (r for r in rights if not r.namespace):
        key = (right.group, right.resource, right.verb)
        listed = names.get(key, ())
        names[key] = None if listed is None or not right.name else tuple(dict.fromkeys((*listed, right.name)))
    rules: dict[tuple[str, str, tuple[str, ...] | None], list[str]] = {}
    for (group, resource, verb), listed in names.items():
        rules.setdefault((group, resource, listed), []).append(verb)
    return {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRole",
        "metadata": {"name": CLUSTER_ROLE, "labels": {"app.kubernetes.io/managed-by": FIELD_MANAGER}},
        "rules": [
            {
                "apiGroups": [group],
                "resources": [resource],
                **({"resourceNames": list(listed)} if listed else {}),
                "verbs": verbs,
            }
            for (group, resource, listed), verbs in rules.items()
        ],
    }


def bootstrap_manifests(rights: list[Right]) -> list[dict]:
    binding = {
        "apiVersion": f"{RBAC}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": CLUSTER_ROLE, "labels": {"app.kubernetes.io/managed-by": FIELD_MANAGER}},
        "roleRef": {"apiGroup": RBAC, "kind": "ClusterRole", "name": CLUSTER_ROLE},
        "subjects": [{"apiGroup": RBAC, "kind": "Group", "name": RELEASE_KUBERNETES_GROUP}],
    }
    return [cluster_role(rights), binding]


def missing_rights(rights: list[Right], *, kubectl: str = "kubectl") -> list[Right]:
    """The rights `kubectl auth can-i` denies to the current identity, in the order given."""

    def denied(right: Right) -> bool:
        result = subprocess.run([kubectl, *right.can_i()], capture_output=True, text=True, check=False)
        if result.stdout.strip() not in ("yes", "no"):
            raise ValueError(f"kubectl {' '.join(right.can_i())} failed: {result.stderr.strip()}")
        return result.stdout.strip() == "no"

    with ThreadPoolExecutor(max_workers=4) as pool:
        return [right for right, no in zip(rights, pool.map(denied, rights), strict=True) if no]


def refusal(missing: list[Right], env: str) -> str:
    """One line: the first missing right, how to ask for it again, and the fix."""
    first = missing[0]
    more = f"; {len(missing) - 1} more missing" if len(missing) > 1 else ""
    where = f" in the namespace {first.namespace}" if first.namespace else ""
    asked = f"`kubectl {' '.join(first.can_i())}` says no{more}"
    if first.namespace:
        fix = (
            "its EKS access entry lacks AmazonEKSAdminPolicy on the namespace (terraform/modules/eks "
            "namespace_admin_principal_arns: run the infra stage)"
        )
    else:
        fix = bootstrap_fix(env)
    return f"the release identity may not {first.verb} {first.target}{where} ({asked}): {fix}"


def bootstrap_fix(env: str) -> str:
    return (
        f"a cluster admin (terraform admin_principal_arns) runs `make cluster-bootstrap ENV={env} APPLY=1` once "
        "(terraform/README.md, Cluster bootstrap)"
    )


def apply(manifests: list[dict], *, kubectl: str = "kubectl") -> None:
    result = subprocess.run(
        [kubectl, "apply", "--server-side", "--field-manager", FIELD_MANAGER, "--force-conflicts", "-f", "-"],
        input=yaml.safe_dump_all(manifests, sort_keys=False),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise ValueError(f"kubectl apply of the release's namespace and cluster RBAC failed: {result.stderr.strip()}")
