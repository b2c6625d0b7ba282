"""What the API server does to an object between the request and the store, in the real order: defaults,
the ServiceAccount admission plugin (token volume), the EKS pod identity webhook (IRSA), Pod Security
admission (restricted), and strict schema validation (kubernetes-validate, the EKS version Terraform pins)."""

from __future__ import annotations

import base64
import ipaddress
import uuid

from kubernetes_validate import utils as schema

from eksflow_dev.cluster.api.resources import BY_PATH, Resource
from eksflow_dev.cluster.api.store import ApiError, Store

SERVICE_CIDR = ipaddress.ip_network("10.96.0.0/16")
KUBERNETES_SERVICE_IP = "10.96.0.1"
IRSA_ANNOTATION = "eks.amazonaws.com/role-arn"
IRSA_TOKEN_DIR = "/var/run/secrets/eks.amazonaws.com/serviceaccount"  # noqa: S105 - a path
SA_TOKEN_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"  # noqa: S105 - a path
PSA_ENFORCE = "pod-security.kubernetes.io/enforce"
SELINUX_TYPES = {"", "container_t", "container_init_t", "container_kvm_t", "container_engine_t"}
SAFE_SYSCTLS = {
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
}
ALLOWED_RESTRICTED_VOLUMES = {
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "persistentVolumeClaim",
    "projected",
    "secret",
}


def _containers(spec: dict) -> list[dict]:
    return [
        *(spec.get("initContainers") or []),
        *(spec.get("containers") or []),
        *(spec.get("ephemeralContainers") or []),
    ]


# ---------------------------------------------------------------------------------------------- defaults
def _default_pod_spec(spec: dict) -> None:
    spec.setdefault("restartPolicy", "Always")
    spec.setdefault("dnsPolicy", "ClusterFirst")
    spec.setdefault("schedulerName", "default-scheduler")
    spec.setdefault("terminationGracePeriodSeconds", 30)
    spec.setdefault("securityContext", {})
    spec.setdefault("enableServiceLinks", True)
    spec.setdefault("serviceAccountName", spec.get("serviceAccount") or "default")
    spec["serviceAccount"] = spec["serviceAccountName"]
    for container in _containers(spec):
        container.setdefault("terminationMessagePath", "/dev/termination-log")
        container.setdefault("terminationMessagePolicy", "File")
        image = container.get("image", "")
        latest = ":" not in image.rsplit("/", 1)[-1] or image.endswith(":latest")
        container.setdefault("imagePullPolicy", "Always" if latest else "IfNotPresent")
        for port in container.get("ports") or []:
            port.setdefault("protocol", "TCP")
    for volume in spec.get("volumes") or []:
        for kind in ("configMap", "secret"):
            if kind in volume:
                volume[kind].setdefault("defaultMode", 0o644)


def apply_defaults(store: Store, resource: Resource, obj: dict) -> None:
    kind = resource.kind
    if kind == "Pod":
        _default_pod_spec(obj.setdefault("spec", {}))
        obj.setdefault("status", {"phase": "Pending", "qosClass": "Burstable"})
    elif kind in ("Deployment", "ReplicaSet", "Job", "StatefulSet", "DaemonSet"):
        spec = obj.setdefault("spec", {})
        _default_pod_spec(spec.setdefault("template", {}).setdefault("spec", {}))
        if kind in ("Deployment", "ReplicaSet", "StatefulSet"):
            spec.setdefault("replicas", 1)
        if kind == "Deployment":
            spec.setdefault(
                "strategy", {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": "25%"}}
            )
            spec.setdefault("revisionHistoryLimit", 10)
            spec.setdefault("progressDeadlineSeconds", 600)
        if kind == "Job":
            _default_job(obj)
    elif kind == "CronJob":
        spec = obj.setdefault("spec", {})
        spec.setdefault("concurrencyPolicy", "Allow")
        spec.setdefault("suspend", False)
        _default_pod_spec(
            spec.setdefault("jobTemplate", {}).setdefault("spec", {}).setdefault("template", {}).setdefault("spec", {})
        )
    elif kind == "Service":
        _default_service(store, obj)
    elif kind == "Namespace":
        obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
        obj.setdefault("spec", {"finalizers": ["kubernetes"]})
        obj["status"] = {"phase": "Active"}
    elif kind == "Secret":
        obj.setdefault("type", "Opaque")
        string_data = obj.pop("stringData", None) or {}
        data = obj.setdefault("data", {}) or {}
        for key, value in string_data.items():
            data[key] = base64.b64encode(value.encode()).decode()
        obj["data"] = data


def _default_job(obj: dict) -> None:
    spec = obj["spec"]
    spec.setdefault("backoffLimit", 6)
    spec.setdefault("completions", 1)
    spec.setdefault("parallelism", 1)
    spec.setdefault("completionMode", "NonIndexed")
    spec.setdefault("suspend", False)
    uid = obj["metadata"].setdefault("uid", str(uuid.uuid4()))
    if not spec.get("manualSelector"):
        labels = {
            "batch.kubernetes.io/controller-uid": uid,
            "batch.kubernetes.io/job-name": obj["metadata"]["name"],
            "controller-uid": uid,
            "job-name": obj["metadata"]["name"],
        }
        spec.setdefault("selector", {"matchLabels": {"batch.kubernetes.io/controller-uid": uid}})
        template_meta = spec["template"].setdefault("metadata", {})
        template_meta.setdefault("labels", {}).update(labels)


def _default_service(store: Store, obj: dict) -> None:
    spec = obj.setdefault("spec", {})
    spec.setdefault("type", "ClusterIP")
    spec.setdefault("sessionAffinity", "None")
    for port in spec.get("ports") or []:
        port.setdefault("protocol", "TCP")
        port.setdefault("targetPort", port["port"])
    if spec.get("clusterIP") != "None" and not spec.get("clusterIP"):
        if obj["metadata"]["name"] == "kubernetes" and obj["metadata"].get("namespace") == "default":
            spec["clusterIP"] = KUBERNETES_SERVICE_IP
        else:
            services, _ = store.list(BY_PATH[("", "v1", "services")])
            taken = {s["spec"].get("clusterIP") for s in services} | {KUBERNETES_SERVICE_IP}
            spec["clusterIP"] = next(str(ip) for ip in list(SERVICE_CIDR.hosts())[9:] if str(ip) not in taken)
    if spec.get("clusterIP"):
        spec["clusterIPs"] = [spec["clusterIP"]]
    spec.setdefault("ipFamilies", ["IPv4"])
    spec.setdefault("ipFamilyPolicy", "SingleStack")
    obj.setdefault("status", {"loadBalancer": {}})


# ---------------------------------------------------------------------------------------------- admission
def service_account(store: Store, pod: dict) -> None:
    """The ServiceAccount admission plugin: the account must exist; its API token is projected unless
    automount is off (pod setting first, then the account's)."""
    namespace, spec = pod["metadata"]["namespace"], pod["spec"]
    name = spec["serviceAccountName"]
    account = store.find(BY_PATH[("", "v1", "serviceaccounts")], namespace, name)
    if account is None:
        raise ApiError(
            403,
            "Forbidden",
            f'pods "{pod["metadata"].get("name") or pod["metadata"].get("generateName")}"'
            f" is forbidden: error looking up service account {namespace}/{name}: serviceaccount "
            f'"{name}" not found',
        )
    automount = spec.get("automountServiceAccountToken")
    if automount is None:
        automount = account.get("automountServiceAccountToken", True)
    if not automount or any(
        m.get("mountPath") == SA_TOKEN_DIR for c in _containers(spec) for m in c.get("volumeMounts") or []
    ):
        return
    volume = "kube-api-access-" + uuid.uuid4().hex[:5]
    spec.setdefault("volumes", []).append(
        {
            "name": volume,
            "projected": {
                "defaultMode": 0o644,
                "sources": [
                    {"serviceAccountToken": {"expirationSeconds": 3607, "path": "token"}},
                    {"configMap": {"name": "kube-root-ca.crt", "items": [{"key": "ca.crt", "path": "ca.crt"}]}},
                    {
                        "downwardAPI": {
                            "items": [
                                {
                                    "path": "namespace",
                                    "fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.namespace"},
                                }
                            ]
                        }
                    },
                ],
            },
        }
    )
    for container in _containers(spec):
        container.setdefault("volumeMounts", []).append({"name": volume, "mountPath": SA_TOKEN_DIR, "readOnly": True})


def irsa(store: Store, pod: dict, region: str) -> None:
    """The EKS pod identity webhook: a pod whose service account carries the role-arn annotation gets the
    web-identity token (audience sts.amazonaws.com) and the AWS_* variables boto3 reads."""
    spec = pod["spec"]
    account = (
        store.find(BY_PATH[("", "v1", "serviceaccounts")], pod["metadata"]["namespace"], spec["serviceAccountName"])
        or {}
    )
    role_arn = (account.get("metadata", {}).get("annotations") or {}).get(IRSA_ANNOTATION)
    if not role_arn:
        return
    if not any(v.get("name") == "aws-iam-token" for v in spec.get("volumes") or []):
        spec.setdefault("volumes", []).append(
            {
                "name": "aws-iam-token",
                "projected": {
                    "defaultMode": 0o644,
                    "sources": [
                        {
                            "serviceAccountToken": {
                                "audience": "sts.amazonaws.com",
                                "expirationSeconds": 86400,
                                "path": "token",
                            }
                        }
                    ],
                },
            }
        )
    wanted = {
        "AWS_STS_REGIONAL_ENDPOINTS": "regional",
        "AWS_DEFAULT_REGION": region,
        "AWS_REGION": region,
        "AWS_ROLE_ARN": role_arn,
        "AWS_WEB_IDENTITY_TOKEN_FILE": f"{IRSA_TOKEN_DIR}/token",
    }
    for container in _containers(spec):
        env = container.setdefault("env", [])
        names = {e["name"] for e in env}
        env.extend({"name": k, "value": v} for k, v in wanted.items() if k not in names)
        mounts = container.setdefault("volumeMounts", [])
        if not any(m.get("mountPath") == IRSA_TOKEN_DIR for m in mounts):
            mounts.append({"name": "aws-iam-token", "mountPath": IRSA_TOKEN_DIR, "readOnly": True})


def restricted_violations(spec: dict) -> list[str]:
    """The Pod Security Standard "restricted" (latest) checks, worded like the real admission messages."""
    found: list[str] = []
    pod_ctx = spec.get("securityContext") or {}
    for field in ("hostNetwork", "hostPID", "hostIPC"):
        if spec.get(field):
            found.append(f"host namespaces ({field}=true)")
    bad_volumes = [
        v["name"] for v in spec.get("volumes") or [] if not (set(v) - {"name"}) <= ALLOWED_RESTRICTED_VOLUMES
    ]
    if bad_volumes:
        found.append(f"restricted volume types (volumes {bad_volumes} use a type restricted does not allow)")
    containers = _containers(spec)

    def each(check, message):
        names = [c["name"] for c in containers if check(c, c.get("securityContext") or {})]
        if names:
            found.append(f"{message} (containers {names})")

    each(lambda c, s: s.get("privileged"), "privileged")
    each(lambda c, s: s.get("allowPrivilegeEscalation") is not False, "allowPrivilegeEscalation != false")
    each(
        lambda c, s: "ALL" not in ((s.get("capabilities") or {}).get("drop") or []),
        'unrestricted capabilities (must set securityContext.capabilities.drop=["ALL"])',
    )
    each(
        lambda c, s: set((s.get("capabilities") or {}).get("add") or []) - {"NET_BIND_SERVICE"},
        "unrestricted capabilities (only NET_BIND_SERVICE may be added)",
    )
    each(lambda c, s: any(p.get("hostPort") for p in c.get("ports") or []), "hostPort")
    each(
        lambda c, s: not (s.get("runAsNonRoot") if "runAsNonRoot" in s else pod_ctx.get("runAsNonRoot")),
        "runAsNonRoot != true",
    )
    each(lambda c, s: (s.get("runAsUser") if "runAsUser" in s else pod_ctx.get("runAsUser")) == 0, "runAsUser=0")
    each(
        lambda c, s: (
            (s.get("seccompProfile") or pod_ctx.get("seccompProfile") or {}).get("type")
            not in ("RuntimeDefault", "Localhost")
        ),
        "seccompProfile (must set securityContext.seccompProfile.type to RuntimeDefault or Localhost)",
    )
    each(lambda c, s: s.get("procMount") not in (None, "Default"), "procMount")
    each(lambda c, s: (s.get("windowsOptions") or {}).get("hostProcess"), "hostProcess")
    each(lambda c, s: _bad_selinux(s.get("seLinuxOptions")), "seLinuxOptions")
    each(lambda c, s: (s.get("appArmorProfile") or {}).get("type") == "Unconfined", "appArmorProfile=Unconfined")
    # Pod-level settings are checked on their own, even when every container overrides them.
    if pod_ctx.get("runAsUser") == 0:
        found.append("runAsUser=0 (pod must not set securityContext.runAsUser=0)")
    if (pod_ctx.get("seccompProfile") or {}).get("type") == "Unconfined":
        found.append("seccompProfile (pod must not set securityContext.seccompProfile.type to Unconfined)")
    if (pod_ctx.get("windowsOptions") or {}).get("hostProcess"):
        found.append("hostProcess (pod must not set securityContext.windowsOptions.hostProcess=true)")
    if _bad_selinux(pod_ctx.get("seLinuxOptions")):
        found.append("seLinuxOptions (pod sets a forbidden SELinux type, user or role)")
    if (pod_ctx.get("appArmorProfile") or {}).get("type") == "Unconfined":
        found.append("appArmorProfile (pod must not set type Unconfined)")
    unsafe = sorted(s["name"] for s in pod_ctx.get("sysctls") or [] if s.get("name") not in SAFE_SYSCTLS)
    if unsafe:
        found.append(f"forbidden sysctls ({', '.join(unsafe)})")
    return found


def _bad_selinux(options: dict | None) -> bool:
    options = options or {}
    return bool(options.get("user") or options.get("role")) or options.get("type", "") not in SELINUX_TYPES


def pod_security(store: Store, pod: dict) -> None:
    namespace = store.find(BY_PATH[("", "v1", "namespaces")], "", pod["metadata"]["namespace"]) or {}
    level = (namespace.get("metadata", {}).get("labels") or {}).get(PSA_ENFORCE)
    if level != "restricted":
        return
    violations = restricted_violations(pod["spec"])
    if violations:
        name = pod["metadata"].get("name") or pod["metadata"].get("generateName")
        raise ApiError(
            403,
            "Forbidden",
            f'pods "{name}" is forbidden: violates PodSecurity "restricted:latest": ' + ", ".join(violations),
        )


def validate(obj: dict, kubernetes_version: str) -> None:
    try:
        schema.validate(obj, kubernetes_version, strict=True)
    except schema.ValidationError as error:
        kind, name = obj.get("kind"), obj.get("metadata", {}).get("name")
        path = ".".join(str(p) for p in error.path) or "(root)"
        raise ApiError(422, "Invalid", f'{kind} "{name}" is invalid: {path}: {error.message}') from None
    except schema.SchemaNotFoundError:
        pass  # a kind kubernetes-validate does not know (none of the chart's)
