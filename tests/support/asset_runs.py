"""A DAG run triggered by an Asset event, made in an Airflow home's metadata DB the way Airflow makes one: the event
registered as a watcher's trigger registers it (AssetManager.register_asset_change with
``extra={"from_trigger": True, "payload": ...}``, airflow/models/trigger.py submit_event), then the run the scheduler
creates for it (an ASSET_TRIGGERED DagRun consuming the event, airflow/jobs/scheduler_job_runner.py). Its tasks then
run with `airflow tasks test <dag> <task> <run_id>`, whose context carries the run's triggering_asset_events from the
execution API, as in a deployment.

Run as ``python -m tests.support.asset_runs <dag_id> <asset name> <asset uri> <payload JSON>`` with the home's
environment (the DAG serialized first: ``airflow dags reserialize``); prints the run id.
"""

from __future__ import annotations

import json
import subprocess
import sys

from eksflow_dev.dagcheck.home import AirflowHome


def asset_triggered_run(home: AirflowHome, dag_id: str, asset, payload: dict, extra_env: dict[str, str]) -> str:
    """The run id of a new run of ``dag_id`` triggered by one event of ``asset`` carrying ``payload``."""
    serialized = home.run("dags", "reserialize", extra_env=extra_env, timeout=300)
    if serialized.returncode != 0:
        raise RuntimeError(f"airflow dags reserialize failed:\n{serialized.stderr[-3000:]}")
    command = [sys.executable, "-m", "tests.support.asset_runs", dag_id, asset.name, asset.uri, json.dumps(payload)]
    made = subprocess.run(
        command, env={**home.env, **extra_env}, capture_output=True, text=True, timeout=300, check=False
    )
    if made.returncode != 0:
        raise RuntimeError(f"making the asset-triggered run failed:\n{made.stderr[-3000:]}")
    return made.stdout.strip().splitlines()[-1]


def main(dag_id: str, name: str, uri: str, payload: str) -> str:
    from airflow.assets.manager import AssetManager
    from airflow.models.dagrun import DagRun
    from airflow.models.serialized_dag import SerializedDagModel
    from airflow.serialization.definitions.assets import SerializedAssetUniqueKey
    from airflow.utils import timezone
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    with create_session() as session:
        event = AssetManager.register_asset_change(
            asset=SerializedAssetUniqueKey(name=name, uri=uri),
            extra={"from_trigger": True, "payload": json.loads(payload)},
            session=session,
        )
        if event is None:
            raise RuntimeError(f"no asset {name} ({uri}) in the DB: is the DAG scheduled on it serialized?")
        session.flush()
        dag = SerializedDagModel.get_dag(dag_id, session=session)
        now = timezone.utcnow()
        run = dag.create_dagrun(
            run_id=DagRun.generate_run_id(run_type=DagRunType.ASSET_TRIGGERED, logical_date=None, run_after=now),
            logical_date=None,
            data_interval=None,
            run_after=now,
            run_type=DagRunType.ASSET_TRIGGERED,
            triggered_by=DagRunTriggeredByType.ASSET,
            state=DagRunState.RUNNING,
            session=session,
        )
        run.consumed_asset_events.append(event)
        return run.run_id


if __name__ == "__main__":
    print(main(*sys.argv[1:]))
