"""The environment the chart gives Airflow: every control-plane container and every worker pod gets the same
platform variables — region, one credential-free AWS connection per task role (equal to
eksflow.connections.cluster_connections), the DAG settings (EKSFLOW_*) and extraEnv — and with them the
reference DAGs parse without errors, as they must in the worker pods."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from eksflow.connections import cluster_connections
from eksflow.settings import load_settings
from eksflow_dev.dagcheck.check import parse_offline
from tests.helm import VALUE_FILES, pod_spec, render, rendered_templates

REPO = Path(__file__).resolve().parents[1]
AIRFLOW_COMMANDS = {"api-server", "scheduler", "dag-processor", "triggerer"}


def _env(container: dict) -> dict[str, str | None]:
    return {var["name"]: var.get("value") for var in container.get("env", [])}


def _airflow_containers(docs: list[dict]) -> dict[str, dict]:
    """Containers of the long-running components (the migration and secrets hooks parse no DAGs)."""
    found = {}
    for doc in docs:
        spec = pod_spec(doc) if doc["kind"] == "Deployment" else None
        for container in (spec or {}).get("containers", []) + (spec or {}).get("initContainers", []):
            if "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN" in _env(container):
                found[f"{doc['metadata']['name']}/{container['name']}"] = container
    return found


def _worker_templates(docs: list[dict]) -> dict[str, dict]:
    """The (only) container of each worker pod template."""
    return {name: pod["spec"]["containers"][0] for name, pod in rendered_templates(docs).items()}


def _platform_env(env: dict[str, str | None]) -> dict[str, str | None]:
    names = ("AWS_", "AIRFLOW_CONN_", "EKSFLOW_")
    return {k: v for k, v in env.items() if k.startswith(names)}


@pytest.mark.parametrize("values", ["dev", "prod", "kind"])
def test_control_plane_and_workers_share_the_platform_env(values):
    docs = render(base=VALUE_FILES[values])
    controls, workers = _airflow_containers(docs), _worker_templates(docs)
    assert {name.split("/")[0].removeprefix("eksflow-") for name in controls} >= AIRFLOW_COMMANDS
    expected = _platform_env(_env(workers["default.yaml"]))
    for name, container in [*controls.items(), *workers.items()]:
        assert _platform_env(_env(container)) == expected, name
    for name, container in workers.items():
        leaked = {
            k for k in _env(container) if k.startswith(("AIRFLOW__DATABASE", "AIRFLOW__CORE__FERNET", "AIRFLOW__API"))
        }
        assert not leaked, f"{name}: worker pods must not get DB or Airflow secrets: {leaked}"


@pytest.mark.parametrize("values", ["dev", "prod", "kind"])
def test_connections_are_the_role_models_and_settings_load(values):
    raw = yaml.safe_load(VALUE_FILES[values].read_text())
    env = _env(_worker_templates(render(base=VALUE_FILES[values]))["ecs-runner.yaml"])
    connections = {k: json.loads(v) for k, v in env.items() if k.startswith("AIRFLOW_CONN_")}
    expected = {k: json.loads(v) for k, v in cluster_connections(raw["region"]).items()}
    # The `default` role's connection is aws_default, which Airflow's own settings (remote logging) use too.
    expected["AIRFLOW_CONN_AWS_DEFAULT"] = {"conn_type": "aws", "extra": {"region_name": raw["region"]}}
    assert connections == expected
    settings = load_settings({k: v for k, v in env.items() if v is not None})
    dag_settings = raw["dagSettings"]
    assert settings.env == dag_settings["env"] == (values if values != "kind" else "local")
    assert settings.region == raw["region"]
    assert list(settings.ecs_subnets) == dag_settings["ecsSubnets"]
    assert list(settings.ecs_security_groups) == dag_settings["ecsSecurityGroups"]
    assert settings.schedules_enabled is dag_settings["schedules"]
    if dag_settings["awsAccountId"]:
        assert settings.sagemaker_execution_role_arn.split(":")[4] == dag_settings["awsAccountId"]
        assert settings.account_id == dag_settings["awsAccountId"]  # in the release queue's URL


def test_every_dag_parses_with_the_worker_pod_env():
    """The dev worker pod's variables (plus what the image sets) are enough for every DAG file: no import errors."""
    env = {k: v for k, v in _env(_worker_templates(render())["sagemaker-runner.yaml"]).items() if v is not None}
    report = parse_offline([REPO / "dags"], settings_env=env)
    assert report["import_errors"] == {}
    assert {Path(file).name for file in report["files"].values()} == {p.name for p in (REPO / "dags").glob("*.py")}


def test_extra_env_reaches_every_container():
    docs = render(sets=("extraEnv[0].name=HTTPS_PROXY", "extraEnv[0].value=http://proxy.internal:3128"))
    for name, container in [*_airflow_containers(docs).items(), *_worker_templates(docs).items()]:
        assert _env(container)["HTTPS_PROXY"] == "http://proxy.internal:3128", name
