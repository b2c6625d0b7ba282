"""A task's executor_config pod_override may not leave its role: the kit refuses one that sets the service account,
labels, Secret volumes or env, the API token, host namespaces or a security context, at definition time, naming
the field and the fix (the cluster's admission policy refuses the same pods: tests/test_worker_admission_policy.py);
the DAG check reports such an override however the task was built."""

from __future__ import annotations

import pytest
from kubernetes.client import models as k8s

from eksflow import kit
from eksflow.checks.role_fit import describe, violations
from eksflow.kit import KitArgumentError


def _pod(**spec) -> k8s.V1Pod:
    return k8s.V1Pod(spec=k8s.V1PodSpec(containers=spec.pop("containers", []), **spec))


def _base(**container) -> k8s.V1Pod:
    return _pod(containers=[k8s.V1Container(name="base", **container)])


SECRET = k8s.V1EnvVarSource(secret_key_ref=k8s.V1SecretKeySelector(name="eksflow-airflow-secrets", key="fernet-key"))
REFUSED = [
    ("the scheduler's account", _pod(service_account_name="eksflow-scheduler"), "spec.serviceAccountName", "role_task"),
    (
        "another role's label",
        k8s.V1Pod(metadata=k8s.V1ObjectMeta(labels={"eksflow.io/role": "ec2-ops"})),
        "metadata.labels",
        "annotations",
    ),
    (
        "the DB Secret",
        _pod(volumes=[k8s.V1Volume(name="db", secret=k8s.V1SecretVolumeSource(secret_name="eksflow-metadata-db"))]),
        "spec.volumes[0].secret",
        "Secrets Manager",
    ),
    (
        "a hostPath",
        _pod(volumes=[k8s.V1Volume(name="root", host_path=k8s.V1HostPathVolumeSource(path="/"))]),
        "spec.volumes[0].hostPath",
        "only emptyDir, configMap and downwardAPI",
    ),
    (
        "env from the fernet Secret",
        _base(env=[k8s.V1EnvVar(name="F", value_from=SECRET)]),
        "spec.containers[0].env[0].valueFrom.secretKeyRef",
        "Secrets Manager",
    ),
    (
        "envFrom a Secret",
        _base(env_from=[k8s.V1EnvFromSource(secret_ref=k8s.V1SecretEnvSource(name="eksflow-metadata-db"))]),
        "spec.containers[0].envFrom[0].secretRef",
        "Secrets Manager",
    ),
    ("the API token", _pod(automount_service_account_token=True), "spec.automountServiceAccountToken", "no Kubernetes"),
    ("the host network", _pod(host_network=True), "spec.hostNetwork", "no host namespace"),
    (
        "root",
        _base(security_context=k8s.V1SecurityContext(run_as_user=0)),
        "spec.containers[0].securityContext",
        "restricted context",
    ),
]


@pytest.mark.parametrize(("case", "override", "field", "fix"), REFUSED, ids=[c[0] for c in REFUSED])
def test_executor_config_refuses_a_pod_override_that_leaves_the_role(case, override, field, fix):
    with pytest.raises(KitArgumentError) as refused:
        kit.executor_config("default", pod_override=override)
    message = str(refused.value)
    assert message.startswith(f"executor_config(): argument 'executor_config' pod_override sets {field}; "), message
    assert fix in message
    assert refused.value.argument == "executor_config"


def test_role_task_checks_the_executor_config_it_is_given():
    with pytest.raises(KitArgumentError, match=r"role_task\(\): argument 'executor_config' pod_override sets spec"):
        kit.role_task("default", executor_config={"pod_override": _pod(service_account_name="eksflow-scheduler")})
    with pytest.raises(KitArgumentError, match="sets another role's pod_template_file"):
        kit.role_task("default", executor_config={"pod_template_file": "/opt/airflow/pod_templates/ec2-ops.yaml"})
    with pytest.raises(KitArgumentError, match="sets 'namespace'"):
        kit.role_task("default", executor_config={"namespace": "kube-system"})


def test_a_pod_override_within_the_role_is_kept():
    override = _base(resources=k8s.V1ResourceRequirements(limits={"memory": "256Mi"}))
    override.metadata = k8s.V1ObjectMeta(annotations={"team": "data-eng"})
    config = kit.executor_config("ecs-runner", pod_override=override)
    assert config["pod_override"] is override and config["pod_template_file"].endswith("/ecs-runner.yaml")

    @kit.role_task("default", executor_config={"pod_override": override})
    def small():
        return 1

    assert small().operator.executor_config["pod_override"] is override


def test_the_dag_check_reports_a_pod_override_however_the_task_was_built():
    from airflow.providers.standard.operators.empty import EmptyOperator
    from airflow.sdk import DAG

    with DAG("hand_built", schedule=None):
        task = EmptyOperator(
            task_id="t",
            executor_config={
                **kit.executor_config("default"),
                "pod_override": _pod(service_account_name="eksflow-scheduler"),
            },
        )
    (problem,) = violations(describe("hand_built", task))
    assert problem.startswith("hand_built.t: executor_config pod_override sets spec.serviceAccountName; ")
