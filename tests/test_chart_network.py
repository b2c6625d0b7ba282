"""NetworkPolicies, rendered by real helm: default deny, task pods reach only the api-server, DNS and
HTTPS (never the instance metadata service), and every pod of the release is covered; the queue-table bridge's
legacy databases (networkPolicy.legacyDatabases) reached by exactly the triggerer and the default role's task pods.
(Bad legacyDatabases values: tests/chart_bad_values/legacy-database-*.yaml.)"""

from __future__ import annotations

import datetime as dt

import pytest
import yaml

from eksflow.events import queue_table_tasks
from eksflow.roles import ROLES, role_for_pod_template
from tests.helm import EKS_KUBERNETES_VERSIONS, render, rendered_templates
from tests.support.worker_pods import airflow_cfg, build_worker_pod

# The policies of a render with networkPolicy.legacyDatabases empty, as the chart has them without the value.
POLICIES_WITHOUT_LEGACY_DATABASES = {
    "default-deny",
    "dns",
    "workers",
    "trigger-logs",
    "api-server-reads-trigger-logs",
    "api-server",
    "control-plane",
}
LEGACY_DATABASES = (
    "networkPolicy.legacyDatabases[0].cidr=10.50.0.7/32",
    "networkPolicy.legacyDatabases[0].port=5432",
    "networkPolicy.legacyDatabases[1].cidr=192.168.40.0/24",
    "networkPolicy.legacyDatabases[1].port=6432",
)
# One rule per {cidr, port}: 10.50.0.7 is not opened on 6432, nor 192.168.40.0/24 on 5432.
LEGACY_DATABASE_RULES = [
    {"to": [{"ipBlock": {"cidr": "10.50.0.7/32"}}], "ports": [{"protocol": "TCP", "port": 5432}]},
    {"to": [{"ipBlock": {"cidr": "192.168.40.0/24"}}], "ports": [{"protocol": "TCP", "port": 6432}]},
]


def policies(docs) -> dict[str, dict]:
    return {d["metadata"]["name"].removeprefix("eksflow-"): d["spec"] for d in docs if d["kind"] == "NetworkPolicy"}


def selects(spec: dict, labels: dict) -> bool:
    selector = spec["podSelector"]
    if any(labels.get(k) != v for k, v in selector.get("matchLabels", {}).items()):
        return False
    return all(
        labels.get(e["key"]) in e["values"] for e in selector.get("matchExpressions", []) if e["operator"] == "In"
    )


def pod_labels(docs):
    for doc in docs:
        if doc["kind"] in {"Deployment", "Job"}:
            yield doc["metadata"]["name"], doc["spec"]["template"]["metadata"]["labels"]
        if doc["kind"] == "CronJob":
            yield doc["metadata"]["name"], doc["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
        if doc["kind"] == "Pod":  # helm test
            yield doc["metadata"]["name"], doc["metadata"]["labels"]
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].endswith("pod-templates"):
            for name, body in doc["data"].items():
                yield name, yaml.safe_load(body)["metadata"]["labels"]


def test_default_deny_and_dns_cover_every_pod_and_each_pod_has_its_own_policy():
    docs = render(sets=("metrics.enabled=true",))
    found = policies(docs)
    for name, labels in pod_labels(docs):
        assert selects(found["default-deny"], labels), name
        assert selects(found["dns"], labels), name
        own = [p for p in ("workers", "control-plane", "statsd") if selects(found[p], labels)]
        assert len(own) == 1, (name, own)
    assert found["default-deny"]["policyTypes"] == ["Ingress", "Egress"]
    # Every pod of the namespace, not only the release's: a pod that loses or never had the release label (a
    # pod_override, someone's debug pod) is denied too.
    assert found["default-deny"]["podSelector"] == {}


def test_task_pods_reach_only_the_api_server_and_https_without_imds():
    spec = policies(render())["workers"]
    assert spec["ingress"] == []
    api, https = spec["egress"]
    assert api["to"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] == "api-server"
    assert api["ports"] == [{"protocol": "TCP", "port": 8080}]
    assert https["to"] == [{"ipBlock": {"cidr": "0.0.0.0/0", "except": ["169.254.169.254/32"]}}]
    assert https["ports"] == [{"protocol": "TCP", "port": 443}]


def test_ssh_git_sync_opens_port_22_and_the_database_cidrs_are_configurable():
    docs = render(
        sets=(
            "gitSync.auth.type=ssh",
            "gitSync.auth.existingSecret=git",
            "networkPolicy.databaseCidrs[0]=10.8.0.0/20",
        )
    )
    found = policies(docs)
    assert {"protocol": "TCP", "port": 22} in found["workers"]["egress"][1]["ports"]
    db = found["control-plane"]["egress"][0]
    assert db == {"to": [{"ipBlock": {"cidr": "10.8.0.0/20"}}], "ports": [{"protocol": "TCP", "port": 5432}]}


def test_network_policies_can_be_turned_off():
    assert policies(render(sets=("networkPolicy.enabled=false",))) == {}
    assert policies(render(sets=("networkPolicy.enabled=false", *LEGACY_DATABASES))) == {}


def test_by_default_no_legacy_database_is_reachable():  # values.yaml: legacyDatabases: []
    assert set(policies(render())) == POLICIES_WITHOUT_LEGACY_DATABASES


def test_legacy_databases_add_exactly_their_pairs_for_the_triggerer_and_the_default_roles_task_pods():
    docs = render(sets=("metrics.enabled=true", *LEGACY_DATABASES))
    found = policies(docs)
    before = policies(render(sets=("metrics.enabled=true",)))
    assert {name: spec for name, spec in found.items() if name in before} == before, "an existing policy changed"
    added = {name: spec for name, spec in found.items() if name not in before}
    assert set(added) == {"triggerer-legacy-databases", "workers-legacy-databases"}
    for spec in added.values():
        assert spec["policyTypes"] == ["Egress"] and "ingress" not in spec
        assert spec["egress"] == LEGACY_DATABASE_RULES
    selected = {
        name: sorted(pod for pod, labels in pod_labels(docs) if selects(spec, labels)) for name, spec in added.items()
    }
    role = ROLES[queue_table_tasks.ROLE]
    assert selected == {
        "triggerer-legacy-databases": ["eksflow-triggerer"],
        "workers-legacy-databases": [role.pod_template_file],  # of the task roles' templates, only this one
    }


def test_the_pods_airflow_builds_for_the_claim_and_write_back_tasks_are_the_ones_let_through():
    from airflow.sdk import DAG

    from eksflow.kit import LegacyTable, QueueTable, claim_rows_task, role_task, write_back_task

    docs = render(sets=LEGACY_DATABASES)
    spec = policies(docs)["workers-legacy-databases"]
    table = QueueTable(conn_id="legacy_queue_db", table="etl_queue", payload_columns=("day",))
    others = sorted(set(ROLES) - {queue_table_tasks.ROLE})
    with DAG("bridge", schedule=None, start_date=dt.datetime(2026, 1, 1)) as dag:
        rows = claim_rows_task(table)
        write_back_task(LegacyTable(conn_id="legacy_queue_db", table="curated_queue", columns=("day",)), rows)
        for other in others:

            @role_task(other, task_id=f"in_{other}")
            def elsewhere() -> None: ...

            elsewhere()
    templates = rendered_templates(docs)
    namespace = airflow_cfg(docs)["kubernetes_executor"]["namespace"]
    let_through = {}
    for task in dag.tasks:
        role = role_for_pod_template(task.executor_config["pod_template_file"])
        pod = build_worker_pod(dag.dag_id, task.task_id, templates[role.pod_template_file], namespace)
        let_through[task.task_id] = selects(spec, pod.metadata.labels)
    assert let_through == {"claim_rows": True, "write_back": True} | {f"in_{other}": False for other in others}


@pytest.mark.parametrize("version", EKS_KUBERNETES_VERSIONS)
def test_a_render_with_legacy_databases_validates_strictly(version):
    from kubernetes_validate import utils

    docs = render(sets=LEGACY_DATABASES)
    assert {"triggerer-legacy-databases", "workers-legacy-databases"} <= set(policies(docs))
    for doc in docs:
        utils.validate(doc, version, strict=True)  # raises ValidationError naming the bad field
