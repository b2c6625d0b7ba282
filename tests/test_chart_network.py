"""NetworkPolicies, rendered by real helm: default deny, task pods reach only the api-server, DNS and
HTTPS (never the instance metadata service), and every pod of the release is covered."""

from __future__ import annotations

import yaml

from tests.helm import render


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
