"""The reference DAGs parsed in this process, and the worker pods Airflow's KubernetesExecutor builds for their
tasks: PodGenerator with the chart's rendered pod template of each task's role (and the task's pod_override)."""

from __future__ import annotations

import configparser
import datetime as dt
from pathlib import Path

import pytest

from eksflow.roles import role_for_pod_template
from eksflow_dev.dagcheck.check import PARSE_ENV
from tests.helm import rendered_templates

REPO = Path(__file__).resolve().parents[2]
DAGS = REPO / "dags"
REFERENCE_DAG_IDS = frozenset(path.stem for path in DAGS.glob("*.py"))  # each reference DAG file is named after its DAG


def reference_dagbag():
    """The reference DAGs parsed in this process, with the deployment settings of PARSE_ENV."""
    from airflow.dag_processing.dagbag import DagBag

    with pytest.MonkeyPatch.context() as patch:
        for key, value in PARSE_ENV.items():
            patch.setenv(key, value)
        bag = DagBag(dag_folder=str(DAGS))
    assert not bag.import_errors, bag.import_errors
    assert set(bag.dags) == REFERENCE_DAG_IDS, f"dags/ files and their DAG ids differ: {sorted(bag.dags)}"
    return bag


def airflow_cfg(docs) -> configparser.ConfigParser:
    """The airflow.cfg of a render (the chart's airflow-config ConfigMap)."""
    (configmap,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("airflow-config")]
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(configmap["data"]["airflow.cfg"])
    return parser


def build_worker_pod(dag_id: str, task_id: str, base: dict, namespace: str, pod_override=None):
    """The V1Pod the KubernetesExecutor creates for a task: its role's rendered template, the executor's part
    (labels, annotations, args) and the task's pod_override, merged by PodGenerator."""
    from airflow.providers.cncf.kubernetes.pod_generator import PodGenerator

    return PodGenerator.construct_pod(
        dag_id=dag_id,
        task_id=task_id,
        pod_id=f"{dag_id}-{task_id}".replace("_", "-"),
        try_number=1,
        kube_image="eksflow/airflow:test",
        date=dt.datetime(2026, 11, 28, tzinfo=dt.UTC),
        args=["airflow", "tasks", "run", dag_id, task_id, "manual__x"],
        pod_override_object=pod_override,
        base_worker_pod=PodGenerator.deserialize_model_dict(base),
        namespace=namespace,
        scheduler_job_id="1",
        run_id="manual__2026-11-28",
        map_index=-1,
    )


def reference_worker_pods(docs: list[dict]) -> list[tuple]:
    """(dag_id, task_id, role, V1Pod) for every task of the reference DAGs, from a chart render."""
    templates = rendered_templates(docs)
    namespace = airflow_cfg(docs)["kubernetes_executor"]["namespace"]  # the chart's rendered config
    pods = []
    for dag in reference_dagbag().dags.values():
        for task in dag.tasks:
            config = getattr(task, "partial_kwargs", {}).get("executor_config") or task.executor_config
            role = role_for_pod_template(config["pod_template_file"])
            pod = build_worker_pod(
                dag.dag_id, task.task_id, templates[role.pod_template_file], namespace, config.get("pod_override")
            )
            pods.append((dag.dag_id, task.task_id, role, pod))
    return pods


def serialized(pod) -> dict:
    """A V1Pod as the Kubernetes client sends it."""
    from kubernetes.client import ApiClient

    return ApiClient().sanitize_for_serialization(pod)
