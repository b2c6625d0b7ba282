"""An Airflow home for in-process runs (`airflow dags test`) with the chart's own airflow.cfg: Airflow's settings
have one home, the chart; the home changes only what an in-process run on this machine must."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import yaml

from eksflow_dev.local.offline import REGION, offline_env


@dataclass
class AirflowHome:
    path: Path
    env: dict[str, str]

    def run(self, *args: str, extra_env: dict[str, str] | None = None, timeout: float = 300):
        return subprocess.run(
            [str(Path(sys.executable).with_name("airflow")), *args],
            env={**self.env, **(extra_env or {})},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


def chart_airflow_cfg(workdir: Path) -> str:
    """The airflow.cfg the chart renders for the local cluster (values-local.yaml + the Terraform-like layer)."""
    from eksflow.platform import NAMESPACE
    from eksflow_dev.cluster.platform_values import values_layer
    from eksflow_dev.cluster.stack import CHART, LOCAL_VALUES, helm_binary

    layer = workdir / "platform-values.yaml"
    layer.write_text(values_layer(REGION))
    args = [helm_binary(), "template", "eksflow", str(CHART), "--namespace", NAMESPACE, "-f", str(LOCAL_VALUES)]
    result = subprocess.run([*args, "-f", str(layer)], capture_output=True, text=True, timeout=120, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"helm template of the chart failed:\n{result.stderr}")
    (configmap,) = [
        doc
        for doc in yaml.safe_load_all(result.stdout)
        if doc and doc["kind"] == "ConfigMap" and doc["metadata"]["name"].endswith("-airflow-config")
    ]
    return configmap["data"]["airflow.cfg"]


def migrated_home(home: Path, dags_folder: Path) -> AirflowHome:
    """A migrated SQLite Airflow home with the chart's airflow.cfg for `airflow dags test` of `dags_folder`."""
    home.mkdir(parents=True, exist_ok=True)
    (home / "airflow.cfg").write_text(chart_airflow_cfg(home))
    env = offline_env()
    env.update(
        {
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
            "AIRFLOW__CORE__FERNET_KEY": "",  # the chart's comes from a Secret
            "AIRFLOW__LOGGING__REMOTE_LOGGING": "False",  # in-process runs print their task logs
            "EKSFLOW_WAITER_DELAY_SECONDS": "1",
            "EKSFLOW_RETRY_DELAY_SECONDS": "1",
            "EKSFLOW_SCHEDULES": "off",
        }
    )
    airflow = AirflowHome(home, env)
    result = airflow.run("db", "migrate")
    if result.returncode != 0:
        raise RuntimeError(f"airflow db migrate failed:\n{result.stderr[-3000:]}")
    return airflow
