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
import sys

from eksflow_dev.dagcheck.home import AirflowHome
from tests.support.dag_runs import made_in_home, new_dag_run


def asset_triggered_run(home: AirflowHome, dag_id: str, asset, payload: dict, extra_env: dict[str, str]) -> str:
    """The run id of a new run of ``dag_id`` triggered by one event of ``asset`` carrying ``payload``."""
    return made_in_home(home, extra_env, "tests.support.asset_runs", dag_id, asset.name, asset.uri, json.dumps(payload))


def main(dag_id: str, name: str, uri: str, payload: str) -> str:
    from airflow.assets.manager import AssetManager
    from airflow.serialization.definitions.assets import SerializedAssetUniqueKey
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
        run = new_dag_run(
            session,
            dag_id,
            run_type=DagRunType.ASSET_TRIGGERED,
            triggered_by=DagRunTriggeredByType.ASSET,
            state=DagRunState.RUNNING,
        )
        run.consumed_asset_events.append(event)
        return run.run_id


if __name__ == "__main__":
    print(main(*sys.argv[1:]))
