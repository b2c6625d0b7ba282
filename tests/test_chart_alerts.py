"""The chart's Prometheus alerts: they read metric names Airflow really emits (through the statsd-exporter's
default mapping), link to runbook sections that exist, and refuse to render without the metrics they read."""

from __future__ import annotations

import re
from pathlib import Path

import airflow

from tests.helm import helm, render, template_args

REPO = Path(__file__).resolve().parents[1]
ENABLED = ("metrics.enabled=true", "metrics.prometheusRules.enabled=true", "metrics.prometheusRules.labels.release=kps")


def _rules() -> dict[str, dict]:
    (rule,) = [doc for doc in render(sets=ENABLED) if doc["kind"] == "PrometheusRule"]
    assert rule["metadata"]["labels"]["release"] == "kps"
    return {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}


def test_the_three_alerts_exist():
    assert set(_rules()) == {"AirflowSchedulerHeartbeatMissing", "AirflowTaskFailuresHigh", "EksflowTaskPodsPending"}


def test_alerts_read_metrics_airflow_emits():
    """statsd `airflow.<name>` becomes `airflow_<name>` in the exporter; the names must be in Airflow's code."""
    source = Path(airflow.__file__).parent
    emitted = {
        "scheduler_heartbeat": source / "jobs" / "scheduler_job_runner.py",
        "ti_failures": source / "models" / "taskinstance.py",
    }
    expressions = " ".join(rule["expr"] for rule in _rules().values())
    for name, path in emitted.items():
        assert f"airflow_{name}" in expressions
        assert f'stats.incr("{name}"' in path.read_text(), f"Airflow no longer emits {name}"
    assert 'namespace="eksflow"' in _rules()["EksflowTaskPodsPending"]["expr"]


def test_every_alert_links_to_an_existing_runbook_section():
    headings = re.findall(r"^## (.+)$", (REPO / "docs" / "runbook.md").read_text(), re.MULTILINE)
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in headings}
    for name, rule in _rules().items():
        url = rule["annotations"]["runbook_url"]
        assert url.split("#")[1] in anchors, f"{name}: {url}"


def test_alerts_without_metrics_are_refused():
    result = helm(*template_args("metrics.prometheusRules.enabled=true"), check=False)
    assert result.returncode != 0
    assert "metrics.prometheusRules.enabled needs metrics.enabled=true" in result.stderr


def test_off_by_default():
    assert not [doc for doc in render() if doc["kind"] == "PrometheusRule"]
