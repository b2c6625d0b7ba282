"""What a task's ``executor_config`` ``pod_override`` may change in its role's worker pod, checked where the DAG is
written. Airflow merges the override into the role's pod template; the chart's ValidatingAdmissionPolicy refuses
a pod that leaves the role model when the scheduler creates it (helm/eksflow/README.md). This check refuses the
same overrides at parse time, naming the field and the fix, so that the task never reaches the cluster.

Allowed: annotations, container image/args/env values, resources within the role's limit, emptyDir, configMap and
downwardAPI volumes, placement. Refused: the service account, labels, Secret/projected/hostPath/CSI/persistent
volumes, env from Secrets, the API token, host namespaces and security contexts (the role's template sets them)."""

from __future__ import annotations

from typing import Any

ALLOWED_VOLUMES = {"name", "emptyDir", "configMap", "downwardAPI"}
ROLE_FIX = "choose the role with the kit (role_kwargs('<role>'), role_task('<role>'), executor_config('<role>'))"
SECRET_FIX = "read secrets through the role's AWS access (Secrets Manager), not from the cluster's Secrets"  # noqa: S105


def _as_dict(pod: Any) -> dict:
    """A V1Pod (or its dict) in the API's camelCase form."""
    if isinstance(pod, dict):
        return pod
    if hasattr(pod, "to_dict"):
        from kubernetes.client import ApiClient  # the override is a V1Pod: the client is imported already

        return ApiClient().sanitize_for_serialization(pod)
    raise TypeError(type(pod).__name__)


def problems(pod_override: Any) -> list[tuple[str, str]]:
    """(field, fix) for each thing this pod_override may not change; empty when it stays in its role."""
    try:
        pod = _as_dict(pod_override)
    except TypeError as error:
        return [("pod_override", f"must be a kubernetes.client V1Pod (or its dict), got {error}")]
    found: list[tuple[str, str]] = []
    metadata, spec = pod.get("metadata") or {}, pod.get("spec") or {}
    if metadata.get("labels"):
        found.append(("metadata.labels", "the role's pod template sets the labels; put your own in annotations"))
    for key in ("serviceAccountName", "serviceAccount"):
        if spec.get(key):
            found.append((f"spec.{key}", ROLE_FIX))
    if spec.get("automountServiceAccountToken"):
        found.append(("spec.automountServiceAccountToken", "task pods get no Kubernetes API token; drop it"))
    for key in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(key):
            found.append((f"spec.{key}", "task pods share no host namespace; drop it"))
    if spec.get("securityContext"):
        found.append(("spec.securityContext", "the role's pod template sets the restricted context; drop it"))
    for i, volume in enumerate(spec.get("volumes") or []):
        kinds = sorted(set(volume) - ALLOWED_VOLUMES)
        if kinds:
            found.append(
                (
                    f"spec.volumes[{i}].{kinds[0]}",
                    f"only emptyDir, configMap and downwardAPI volumes may be added; {SECRET_FIX}",
                )
            )
    for group in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(group) or []):
            where = f"spec.{group}[{i}]"
            if container.get("securityContext"):
                found.append(
                    (f"{where}.securityContext", "the role's pod template sets the restricted context; drop it")
                )
            for j, env in enumerate(container.get("env") or []):
                if (env.get("valueFrom") or {}).get("secretKeyRef"):
                    found.append((f"{where}.env[{j}].valueFrom.secretKeyRef", SECRET_FIX))
            for j, source in enumerate(container.get("envFrom") or []):
                if source.get("secretRef"):
                    found.append((f"{where}.envFrom[{j}].secretRef", SECRET_FIX))
    return found


def check_executor_config(helper: str, config: Any) -> None:
    """Raise KitArgumentError naming the first field of executor_config's pod_override that leaves the role."""
    from eksflow.kit.errors import KitArgumentError

    if not isinstance(config, dict):
        raise KitArgumentError(helper, "executor_config", f"must be a dict, got {config!r}", ROLE_FIX)
    unknown = sorted(set(config) - {"pod_template_file", "pod_override"})
    if unknown:
        raise KitArgumentError(
            helper, "executor_config", f"sets {unknown[0]!r}", "only pod_override may be given; " + ROLE_FIX
        )
    if config.get("pod_override") is None:
        return
    for field, fix in problems(config["pod_override"]):
        raise KitArgumentError(helper, "executor_config", f"pod_override sets {field}", fix)
