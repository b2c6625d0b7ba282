"""The local cluster's API server checks every write like a real one: strict schema, restricted Pod Security,
RBAC from the chart's own Roles; helm and kubectl talk to it and every call is on record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from eksflow_dev.cluster.api.access_entries import ADMIN, AccessPolicy
from eksflow_dev.cluster.client import Client, ClientError
from tests.helm import rendered_templates
from tests.support.cluster import as_access_entry, audit, chart_render, client_as, control_plane, kubectl

NAMESPACE = "eksflow"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    with control_plane(tmp_path_factory.mktemp("local-api")) as running:
        kubectl(running, "create", "namespace", NAMESPACE)
        kubectl(running, "label", "namespace", NAMESPACE, "pod-security.kubernetes.io/enforce=restricted")
        accounts = _chart_objects({"ServiceAccount"})  # task pods run as their role's account, which must exist
        kubectl(running, "apply", "-n", NAMESPACE, "-f", "-", stdin=yaml.safe_dump_all(accounts))
        yield running


def _chart_objects(kinds: set[str], *sets: str) -> list[dict]:
    return [d for d in chart_render(NAMESPACE, *sets) if d["kind"] in kinds]


def _worker_pod(name: str) -> dict:
    pod = rendered_templates(_chart_objects({"ConfigMap"}))["default.yaml"]
    pod["metadata"]["name"] = name
    return pod


def _as(cluster, account: str) -> Client:
    """A client holding a token of this service account (TokenRequest), as a pod of it would."""
    return client_as(cluster, NAMESPACE, account)


def test_the_chart_roles_let_the_scheduler_create_worker_pods_and_nobody_else(cluster):
    objects = _chart_objects({"ServiceAccount", "Role", "RoleBinding"})
    kubectl(cluster, "apply", "-n", NAMESPACE, "-f", "-", stdin=yaml.safe_dump_all(objects))
    pods = f"/api/v1/namespaces/{NAMESPACE}/pods"

    created = _as(cluster, "eksflow-scheduler").create(pods, _worker_pod("task-as-scheduler"))
    assert created["metadata"]["name"] == "task-as-scheduler"

    with pytest.raises(ClientError) as refused:
        _as(cluster, "eksflow-triggerer").create(pods, _worker_pod("task-as-triggerer"))
    assert refused.value.code == 403
    assert 'User "system:serviceaccount:eksflow:eksflow-triggerer" cannot create resource "pods"' in str(refused.value)

    (role,) = [o for o in objects if o["kind"] == "Role" and o["metadata"]["name"] == "eksflow-scheduler"]
    role["rules"][0]["verbs"].remove("create")
    kubectl(cluster, "apply", "-n", NAMESPACE, "-f", "-", stdin=yaml.safe_dump(role))
    with pytest.raises(ClientError, match="cannot create resource"):
        _as(cluster, "eksflow-scheduler").create(pods, _worker_pod("task-after-role-edit"))


def test_a_pod_that_breaks_the_restricted_profile_is_refused_naming_what_it_breaks(cluster):
    pod = _worker_pod("privileged-task")
    pod["spec"]["containers"][0]["securityContext"]["allowPrivilegeEscalation"] = True
    result = kubectl(cluster, "create", "-n", NAMESPACE, "-f", "-", stdin=json.dumps(pod), check=False)
    assert result.returncode != 0
    assert 'violates PodSecurity "restricted:latest": allowPrivilegeEscalation != false' in result.stderr


def test_an_unknown_field_is_refused_by_the_strict_schema_of_the_pinned_kubernetes(cluster):
    (deployment,) = [d for d in _chart_objects({"Deployment"}) if d["metadata"]["name"] == "eksflow-scheduler"]
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {}
    result = kubectl(cluster, "create", "-n", NAMESPACE, "-f", "-", stdin=json.dumps(deployment), check=False)
    assert result.returncode != 0
    assert "securityContex" in result.stderr


def test_kubectl_reads_what_the_runbook_uses_and_its_calls_are_on_record(cluster):
    kubectl(cluster, "create", "-n", NAMESPACE, "-f", "-", stdin=json.dumps(_worker_pod("listed-task")))
    listed = kubectl(cluster, "get", "pods", "-n", NAMESPACE, "-l", "app.kubernetes.io/component=worker").stdout
    assert "listed-task" in listed and "STATUS" in listed
    described = kubectl(cluster, "describe", "pod", "-n", NAMESPACE, "listed-task").stdout
    assert "eksflow-task-default" in described
    calls = [c for c in audit(cluster) if c["userAgent"].startswith("kubectl")]
    assert any(c["verb"] == "list" and c["resource"] == "pods" and "labelSelector" in c["query"] for c in calls)
    assert all(c["code"] < 500 for c in audit(cluster))


def test_a_second_server_side_apply_keeps_what_the_server_defaulted(cluster):
    """helm 4 applies server-side on every upgrade: a Service must keep its cluster IP (clients hold it)."""
    (service,) = [d for d in _chart_objects({"Service"}) if d["metadata"]["name"] == "eksflow-api-server"]
    apply = ("apply", "--server-side", "--field-manager", "helm", "-n", NAMESPACE, "-f", "-")
    kubectl(cluster, *apply, stdin=json.dumps(service))
    first = json.loads(kubectl(cluster, "get", "service", "eksflow-api-server", "-n", NAMESPACE, "-o", "json").stdout)
    service["metadata"]["labels"]["changed"] = "yes"
    kubectl(cluster, *apply, stdin=json.dumps(service))
    second = json.loads(kubectl(cluster, "get", "service", "eksflow-api-server", "-n", NAMESPACE, "-o", "json").stdout)
    assert second["spec"]["clusterIP"] == first["spec"]["clusterIP"]
    assert second["metadata"]["labels"]["changed"] == "yes"


def test_pod_level_settings_are_checked_even_when_every_container_overrides_them(cluster):
    pod = _worker_pod("root-by-default")
    pod["spec"]["securityContext"]["runAsUser"] = 0
    pod["spec"]["containers"][0]["securityContext"]["runAsUser"] = 50000
    result = kubectl(cluster, "create", "-n", NAMESPACE, "-f", "-", stdin=json.dumps(pod), check=False)
    assert result.returncode != 0
    assert "runAsUser=0 (pod must not set securityContext.runAsUser=0)" in result.stderr


def test_a_force_deleted_pod_reaches_watchers_marked_deleted_as_the_kubernetes_executor_expects(cluster):
    """kube-apiserver records the deletion (deletionTimestamp, grace 0) before it removes a pod bound to a node,
    even with --grace-period=0 --force. The KubernetesExecutor's watcher tells a lost worker pod (fail the task)
    from one another scheduler adopted (only free the slot) by that timestamp on the DELETED event."""
    pods = f"/api/v1/namespaces/{NAMESPACE}/pods"
    admin = cluster.client()
    accounts = _chart_objects({"ServiceAccount"})
    kubectl(cluster, "apply", "-n", NAMESPACE, "-f", "-", stdin=yaml.safe_dump_all(accounts))
    pod = _worker_pod("lost-worker")
    pod["spec"]["nodeName"] = "a-node-that-died"
    created = admin.create(pods, pod)
    kubectl(cluster, "delete", "pod", "lost-worker", "-n", NAMESPACE, "--grace-period=0", "--force")
    events = []
    for event in admin.watch(pods, created["metadata"]["resourceVersion"], timeout=5):
        if event["object"]["metadata"]["name"] == "lost-worker":
            events.append(event)
        if event["type"] == "DELETED":
            break
    assert [e["type"] for e in events] == ["MODIFIED", "DELETED"]
    for event in events:
        meta = event["object"]["metadata"]
        assert meta.get("deletionTimestamp") and meta.get("deletionGracePeriodSeconds") == 0, event["type"]


def test_the_cleanup_account_may_list_and_delete_pods_and_nothing_else(cluster):
    objects = _chart_objects({"ServiceAccount", "Role", "RoleBinding"}, "cleanup.enabled=true")
    kubectl(cluster, "apply", "-n", NAMESPACE, "-f", "-", stdin=yaml.safe_dump_all(objects))
    pods = f"/api/v1/namespaces/{NAMESPACE}/pods"
    cluster.client().create(pods, _worker_pod("finished-worker"))
    cleanup = _as(cluster, "eksflow-cleanup")
    assert "finished-worker" in {p["metadata"]["name"] for p in cleanup.get(pods)["items"]}
    cleanup.delete(f"{pods}/finished-worker")
    for refused in (
        lambda: cleanup.create(pods, _worker_pod("made-by-cleanup")),
        lambda: cleanup.get(f"/api/v1/namespaces/{NAMESPACE}/secrets"),
        lambda: cleanup.get(f"{pods}/finished-worker/log"),
    ):
        with pytest.raises(ClientError) as denied:
            refused()
        assert denied.value.code == 403


RELEASER = "arn:aws:iam::123456789012:role/eksflow-test-releaser"


def _grant_group(cluster, group: str, rules: list[dict]) -> None:
    """A ClusterRole with these rules bound to a Kubernetes group, applied by the admin."""
    rbac = "rbac.authorization.k8s.io"
    role = {"apiVersion": f"{rbac}/v1", "kind": "ClusterRole", "metadata": {"name": group}, "rules": rules}
    binding = {
        "apiVersion": f"{rbac}/v1",
        "kind": "ClusterRoleBinding",
        "metadata": {"name": group},
        "roleRef": {"apiGroup": rbac, "kind": "ClusterRole", "name": group},
        "subjects": [{"apiGroup": rbac, "kind": "Group", "name": group}],
    }
    kubectl(cluster, "apply", "-f", "-", stdin=yaml.safe_dump_all([role, binding]))


def test_an_access_entry_authenticates_as_its_principal_with_its_groups_and_only_its_policy_scope(cluster):
    """EKS access entries: the token maps to the entry's username and Kubernetes groups (which RBAC bindings name);
    AmazonEKSAdminPolicy scoped to a namespace allows what lives there and nothing at the cluster scope."""
    as_releaser = as_access_entry(cluster, RELEASER, ["test-releasers"], [AccessPolicy(ADMIN, (NAMESPACE,))])
    created = kubectl(cluster, "create", "configmap", "by-releaser", "-n", NAMESPACE, env=as_releaser)
    assert "configmap/by-releaser created" in created.stdout
    for refused in (("get", "configmaps", "-n", "default"), ("get", "namespaces"), ("get", "clusterroles")):
        result = kubectl(cluster, *refused, env=as_releaser, check=False)
        assert result.returncode != 0 and f'User "{RELEASER}" cannot' in result.stderr, refused

    _grant_group(cluster, "test-releasers", [{"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list"]}])
    assert NAMESPACE in kubectl(cluster, "get", "namespaces", env=as_releaser).stdout

    unknown = Path(as_releaser["KUBECONFIG"] + "-unknown-token")
    unknown.write_text(Path(as_releaser["KUBECONFIG"]).read_text().replace("k8s-aws-v1.", "k8s-aws-v1.x"))
    result = kubectl(
        cluster, "get", "pods", "-n", NAMESPACE, env={**as_releaser, "KUBECONFIG": str(unknown)}, check=False
    )
    assert "Unauthorized" in result.stderr


def test_kubectl_auth_can_i_answers_what_the_authorizer_decides_names_included(cluster):
    as_releaser = as_access_entry(cluster, RELEASER + "-can-i", ["test-can-i"])
    rules = [{"apiGroups": [""], "resources": ["namespaces"], "resourceNames": ["one"], "verbs": ["patch"]}]
    _grant_group(cluster, "test-can-i", rules)

    def can_i(*args: str, env=as_releaser) -> str:
        return kubectl(cluster, "auth", "can-i", *args, env=env, check=False).stdout.strip()

    assert can_i("patch", "namespaces/one") == "yes"
    assert can_i("patch", "namespaces/two") == "no"
    assert can_i("delete", "namespaces/one") == "no"
    assert can_i("patch", "namespaces") == "no"  # no name: any namespace
    assert can_i("delete", "namespaces/one", env=cluster.kubectl_env()) == "yes"  # the admin


def test_an_apply_that_creates_needs_create_for_that_name_and_a_post_never_matches_names(cluster):
    """kube-apiserver authorizes a server-side apply of a missing object as `patch` and then `create`, both with
    the object's name; a POST carries no name, so rules limited by resourceNames never allow it."""
    as_releaser = as_access_entry(cluster, RELEASER + "-apply", ["test-apply"])
    rules = [{"apiGroups": [""], "resources": ["namespaces"], "resourceNames": ["applied"], "verbs": ["get", "patch"]}]
    _grant_group(cluster, "test-apply", rules)
    manifest = json.dumps({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "applied"}})
    apply = ("apply", "--server-side", "--field-manager", "test", "-f", "-")

    refused = kubectl(cluster, *apply, stdin=manifest, env=as_releaser, check=False)
    assert refused.returncode != 0
    assert f'User "{RELEASER}-apply" cannot create resource "namespaces"' in refused.stderr

    rules[0]["verbs"].append("create")
    _grant_group(cluster, "test-apply", rules)
    assert "serverside-applied" in kubectl(cluster, *apply, stdin=manifest, env=as_releaser).stdout
    posted = kubectl(cluster, "create", "namespace", "applied-by-post", env=as_releaser, check=False)
    assert posted.returncode != 0 and "cannot create resource" in posted.stderr
