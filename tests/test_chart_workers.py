"""The chart's worker side, rendered by real helm: per-role service accounts and pod templates generated from
the role model (the chart reads terraform/role-model.json, the file Terraform reads) and pod_templates/base.yaml,
and the pods Airflow's KubernetesExecutor builds from them."""

from __future__ import annotations

import json
import shutil

import pytest
import yaml

from eksflow.model import platform_model
from eksflow.platform import CONTROL_PLANE, NAMESPACE, POD_TEMPLATE_BASE_FILE, ROLE_LABEL
from eksflow.roles import ROLES
from tests.helm import (
    CHART,
    DEV_VALUES,
    EKS_KUBERNETES_VERSIONS,
    REPO,
    REQUIRED_SETS,
    VALUE_FILES,
    helm,
    pod_spec,
    render,
    rendered_templates,
    template_args,
)
from tests.support.worker_pods import REFERENCE_DAG_IDS, reference_worker_pods, serialized

POD_TEMPLATES = REPO / "pod_templates"
ROLE_MODEL = REPO / "terraform" / "role-model.json"
ARN = "arn:aws:iam::123456789012:role/eksflow-dev-task-ecs-runner"


def by_kind(docs: list[dict], kind: str) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == kind}


def test_helm_lint_strict():
    result = helm("lint", "--strict", str(CHART))
    assert "0 chart(s) failed" in result.stdout


def test_chart_serves_the_repository_pod_templates_through_a_symlink():
    link = CHART / "files" / "pod_templates"
    assert link.is_symlink() and link.resolve() == POD_TEMPLATES.resolve()


def test_chart_reads_the_role_model_terraform_reads_through_a_symlink():
    link = CHART / "files" / "role-model.json"
    assert link.is_symlink() and link.resolve() == ROLE_MODEL.resolve()
    dev = REPO / "terraform" / "envs" / "dev"
    assert 'file("${path.module}/../../role-model.json")' in (dev / "main.tf").read_text()
    assert (dev / ".." / ".." / "role-model.json").resolve() == link.resolve()
    # What the chart reads is the current role model (tests/test_terraform.py: `make role-model`).
    assert json.loads(link.read_text()) == json.loads(json.dumps(platform_model()))


def test_role_names_in_the_values_and_the_schema_are_the_role_models():
    """The schema (additionalProperties: false) and values.yaml name every role; the rest comes from the model."""
    schema = json.loads((CHART / "values.schema.json").read_text())["properties"]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    assert set(schema["workers"]["properties"]["roles"]["properties"]) == set(values["workers"]["roles"]) == set(ROLES)
    components = {c.name for c in CONTROL_PLANE}
    assert set(schema["controlPlane"]["properties"]) == set(values["controlPlane"]) == components


def _chart_copy(tmp_path):
    """A copy of the chart with its symlinks resolved (as `helm package` makes it), to edit its role model."""
    copy = tmp_path / "eksflow"
    shutil.copytree(CHART, copy)
    return copy


def test_the_chart_generates_roles_accounts_and_paths_from_the_role_model(tmp_path):
    """Edit the role model the chart reads: the render follows it, so nothing in the chart is a copy of it."""
    chart = _chart_copy(tmp_path)
    model = json.loads(ROLE_MODEL.read_text())
    del model["task_roles"]["ec2-ops"]
    runner = model["task_roles"]["sagemaker-runner"]
    runner["service_account"] = "renamed-sagemaker"
    runner["conn_id"] = "aws_renamed"
    runner["pod_template_file"] = "renamed.yaml"
    runner["resources"] = {"requests": {"cpu": "3", "memory": "5Gi"}, "limits": {"memory": "6Gi"}}
    model["control_plane"]["triggerer"]["service_account"] = "renamed-triggerer"
    model["role_label"] = "example.com/task-role"
    model["pod_template_dir"] = "/opt/templates"
    model["default_role"] = "ecs-runner"
    (chart / "files" / "role-model.json").write_text(json.dumps(model))

    args = ["template", "eksflow", str(chart), "--namespace", NAMESPACE, "-f", str(DEV_VALUES)]
    docs = [doc for doc in yaml.safe_load_all(helm(*args).stdout) if doc]
    templates = rendered_templates(docs)
    assert set(templates) == {"default.yaml", "ecs-runner.yaml", "renamed.yaml"}
    pod = templates["renamed.yaml"]
    assert pod["spec"]["serviceAccountName"] == "renamed-sagemaker"
    assert pod["metadata"]["labels"]["example.com/task-role"] == "sagemaker-runner"
    assert ROLE_LABEL not in pod["metadata"]["labels"]
    (container,) = pod["spec"]["containers"]
    assert container["resources"] == runner["resources"]
    connections = {e["name"] for e in container["env"] if e["name"].startswith("AIRFLOW_CONN_")}
    assert connections == {"AIRFLOW_CONN_AWS_DEFAULT", "AIRFLOW_CONN_AWS_ECS_RUNNER", "AIRFLOW_CONN_AWS_RENAMED"}

    accounts = {d["metadata"]["name"]: d for d in docs if d["kind"] == "ServiceAccount"}
    workers = {
        name for name, sa in accounts.items() if sa["metadata"]["labels"].get("app.kubernetes.io/component") == "worker"
    }
    assert workers == {"eksflow-task-default", "eksflow-task-ecs-runner", "renamed-sagemaker"}
    assert accounts["renamed-sagemaker"]["metadata"]["labels"]["example.com/task-role"] == "sagemaker-runner"
    assert "renamed-triggerer" in accounts and "eksflow-triggerer" not in accounts
    (triggerer,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "eksflow-triggerer"]
    assert triggerer["spec"]["template"]["spec"]["serviceAccountName"] == "renamed-triggerer"

    (scheduler,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "eksflow-scheduler"]
    mounts = scheduler["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]
    assert {"name": "pod-templates", "mountPath": "/opt/templates", "readOnly": True} in mounts
    from tests.test_chart_config import airflow_cfg

    assert airflow_cfg(docs)["kubernetes_executor"]["pod_template_file"] == "/opt/templates/ecs-runner.yaml"


def test_a_chart_without_its_role_model_fails_naming_the_file(tmp_path):
    chart = _chart_copy(tmp_path)
    (chart / "files" / "role-model.json").unlink()
    result = helm("template", "eksflow", str(chart), "-f", str(DEV_VALUES), check=False)
    assert result.returncode != 0
    assert "files/role-model.json is missing" in result.stderr


def test_service_accounts_per_role_with_irsa_annotation_only_when_set():
    docs = render(base=None, sets=(*REQUIRED_SETS, f"workers.roles.ecs-runner.iamRoleArn={ARN}"))
    accounts = {
        name: sa
        for name, sa in by_kind(docs, "ServiceAccount").items()
        if sa["metadata"]["labels"].get("app.kubernetes.io/component") == "worker"
    }
    assert set(accounts) == {r.service_account for r in ROLES.values()}
    for role in ROLES.values():
        account = accounts[role.service_account]
        annotations = account["metadata"].get("annotations", {})
        expected = {"eks.amazonaws.com/role-arn": ARN} if role.name == "ecs-runner" else {}
        assert annotations == expected
        assert account["automountServiceAccountToken"] is False
        assert account["metadata"]["labels"][ROLE_LABEL] == role.name


def test_each_role_template_is_the_base_with_the_role_models_label_account_and_resources():
    base = yaml.safe_load((POD_TEMPLATES / POD_TEMPLATE_BASE_FILE).read_text())
    templates = rendered_templates(render(sets=("gitSync.enabled=false",)))
    assert set(templates) == {role.pod_template_file for role in ROLES.values()}
    for role in ROLES.values():
        pod = templates[role.pod_template_file]
        assert pod["metadata"]["labels"] == {
            **base["metadata"]["labels"],
            ROLE_LABEL: role.name,
            "app.kubernetes.io/instance": "eksflow",
        }
        assert pod["spec"]["serviceAccountName"] == role.service_account
        (container,) = pod["spec"]["containers"]
        assert container["resources"] == role.resources.as_k8s()
        # Everything else is the base file as written, apart from image, placement, the platform env
        # (test_chart_env.py) from values, and the chart's airflow.cfg, which every task reads.
        base_container = base["spec"]["containers"][0]
        assert without(container, "resources", "image", "imagePullPolicy", "env", "volumeMounts") == without(
            base_container, "image", "imagePullPolicy", "env", "volumeMounts"
        )
        assert container["env"][: len(base_container["env"])] == base_container["env"]
        config_mount = {
            "name": "config",
            "mountPath": "/opt/airflow/airflow.cfg",
            "subPath": "airflow.cfg",
            "readOnly": True,
        }
        assert container["volumeMounts"] == [*base_container["volumeMounts"], config_mount]
        config_volume = {"name": "config", "configMap": {"name": "eksflow-airflow-config"}}
        assert without(pod["spec"], "serviceAccountName", "nodeSelector", "tolerations", "containers") == {
            **without(base["spec"], "containers"),
            "volumes": [*base["spec"]["volumes"], config_volume],
        }


def without(mapping: dict, *keys: str) -> dict:
    return {k: v for k, v in mapping.items() if k not in keys}


def test_image_and_placement_come_from_values(tmp_path):
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "image": {
                    "repository": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/eksflow/airflow",
                    "tag": "abc123",
                },
                # helm merges maps with the defaults: null removes a default key
                "workers": {"nodeSelector": {"eksflow.io/node-group": None, "pool": "batch"}, "tolerations": []},
            }
        )
    )
    pod = rendered_templates(render(values))["ecs-runner.yaml"]
    assert pod["spec"]["containers"][0]["image"].endswith("/eksflow/airflow:abc123")
    assert pod["spec"]["nodeSelector"] == {"pool": "batch"}
    assert "tolerations" not in pod["spec"]
    assert "tolerations" not in pod["spec"]


def test_an_image_digest_pins_every_airflow_container_of_every_pod_and_pod_template():
    """Issue 12 row 4: a release deploys the digest it verified in ECR, not a tag that could name another image."""
    repository = "123456789012.dkr.ecr.eu-west-1.amazonaws.com/eksflow/airflow"
    digest = "sha256:" + "0123456789abcdef" * 4
    docs = render(sets=(f"image.repository={repository}", "image.tag=abc123", f"image.digest={digest}",
                        "metrics.enabled=true"))  # fmt: skip
    pods = [(doc["metadata"]["name"], spec) for doc in docs if (spec := pod_spec(doc)) is not None]
    pods += [(doc["metadata"]["name"], doc["spec"]) for doc in docs if doc["kind"] == "Pod"]  # helm test
    pods += [(name, pod["spec"]) for name, pod in rendered_templates(docs).items()]
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    own_images = {"{repository}:{tag}".format(**values[key]["image"]) for key in ("gitSync", "metrics")}
    airflow = []
    for where, spec in pods:
        for container in [*spec.get("initContainers", []), *spec["containers"]]:
            if container["image"] not in own_images:  # git-sync, statsd-exporter: their own images
                airflow.append((where, container["name"], container["image"]))
    assert {image for _, _, image in airflow} == {f"{repository}@{digest}"}, airflow
    kinds = {doc["kind"] for doc in docs if pod_spec(doc) is not None or doc["kind"] == "Pod"}
    assert kinds == {"Deployment", "Job", "CronJob", "Pod"} and len(pods) >= 6 + len(ROLES), kinds


def test_renders_are_byte_identical():
    assert helm(*template_args()).stdout == helm(*template_args()).stdout


# --------------------------------------------------------------------------------------------------------
# The pods Airflow itself builds: for every task of every DAG, the KubernetesExecutor's PodGenerator with
# the chart's rendered template for the task's role.

RESTRICTED_CONTAINER = {
    "allow_privilege_escalation": False,
    "read_only_root_filesystem": True,
    "privileged": False,
}


@pytest.fixture(scope="module")
def worker_pods():
    return reference_worker_pods(render())


def test_every_task_pod_is_restricted_resourced_and_runs_as_its_role(worker_pods):
    assert {dag_id for dag_id, *_ in worker_pods} == REFERENCE_DAG_IDS  # a pod for every task of every reference DAG
    for dag_id, task_id, role, pod in worker_pods:
        where = f"{dag_id}.{task_id}"
        assert pod.spec.service_account_name == role.service_account, where
        assert pod.spec.automount_service_account_token is False, where
        security = pod.spec.security_context
        assert security.run_as_non_root is True and security.seccomp_profile.type == "RuntimeDefault", where
        (container,) = pod.spec.containers
        for key, value in RESTRICTED_CONTAINER.items():
            assert getattr(container.security_context, key) == value, (where, key)
        assert container.security_context.capabilities.drop == ["ALL"], where
        assert container.resources.requests["memory"] and container.resources.limits["memory"], where
        labels = pod.metadata.labels
        assert {"dag_id", "task_id", "run_id", "try_number"} <= set(labels), where
        assert labels[ROLE_LABEL] == role.name, where
        env = {e.name for e in (container.env or [])}
        assert not any("SQL_ALCHEMY_CONN" in name or "DATABASE" in name for name in env), where


@pytest.mark.parametrize("version", EKS_KUBERNETES_VERSIONS)
def test_rendered_objects_and_worker_pods_validate_strictly(version, worker_pods):
    from kubernetes_validate import utils

    objects = []
    for docs in (
        render(),
        render(base=VALUE_FILES["prod"]),
        render(base=VALUE_FILES["kind"]),
        render(
            sets=(
                f"workers.roles.ecs-runner.iamRoleArn={ARN}",
                "controlPlane.triggerer.iamRoleArn=arn:aws:iam::123456789012:role/eksflow-dev-triggerer",
                "airflow.secretsBackend.enabled=true",
                "airflow.remoteLogging.enabled=false",
                "metrics.enabled=true",
            )
        ),
    ):
        objects += docs + list(rendered_templates(docs).values())
    objects += [serialized(pod) for *_, pod in worker_pods]
    for obj in objects:
        utils.validate(obj, version, strict=True)  # raises ValidationError naming the bad field


def test_strict_validation_catches_an_unknown_field():
    from kubernetes_validate import utils
    from kubernetes_validate.utils import ValidationError

    pod = yaml.safe_load((POD_TEMPLATES / POD_TEMPLATE_BASE_FILE).read_text())
    pod["spec"]["containers"][0]["securityContex"] = {}
    with pytest.raises(ValidationError, match="securityContex"):
        utils.validate(pod, "1.35.0", strict=True)


@pytest.mark.parametrize("auth", ["none", "https", "ssh"])
def test_worker_pods_sync_their_dags_once_before_the_task(auth):
    sets = ("gitSync.auth.type=" + auth,) + (() if auth == "none" else ("gitSync.auth.existingSecret=git-creds",))
    for name, pod in rendered_templates(render(sets=sets)).items():
        (init,) = pod["spec"]["initContainers"]
        env = {e["name"]: e for e in init["env"]}
        assert env["GITSYNC_ONE_TIME"]["value"] == "true", name
        assert {"name": "dags", "mountPath": "/opt/airflow/dags", "readOnly": True} in pod["spec"]["containers"][0][
            "volumeMounts"
        ]
        if auth == "https":
            assert env["GITSYNC_PASSWORD"]["valueFrom"]["secretKeyRef"] == {"name": "git-creds", "key": "token"}
        if auth == "ssh":
            secret = next(v for v in pod["spec"]["volumes"] if v["name"] == "git-secret")
            assert secret["secret"]["secretName"] == "git-creds"


def test_pod_templates_are_rendered_for_the_role_models_namespace():
    from tests.test_chart_config import airflow_cfg

    assert airflow_cfg(render(namespace=NAMESPACE))["kubernetes_executor"]["namespace"] == NAMESPACE


def test_packaged_chart_carries_the_linked_pod_templates_and_role_model(tmp_path):
    import tarfile

    helm("package", str(CHART), "--destination", str(tmp_path))
    (archive,) = tmp_path.glob("eksflow-*.tgz")
    with tarfile.open(archive) as packaged:
        names = set(packaged.getnames())
        model = packaged.extractfile("eksflow/files/role-model.json")
        assert model is not None and model.read() == ROLE_MODEL.read_bytes()
    assert f"eksflow/files/pod_templates/{POD_TEMPLATE_BASE_FILE}" in names
    # The packaged chart renders what the chart directory renders.
    args = ["--namespace", NAMESPACE, "-f", str(DEV_VALUES)]
    assert (
        helm("template", "eksflow", str(archive), *args).stdout == helm("template", "eksflow", str(CHART), *args).stdout
    )
