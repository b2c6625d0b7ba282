"""DAGs scheduled on job releases (tests/test_release_watcher.py): their Assets' watchers read the environment's
release queue. `on_serve_release` starts paused — its watcher registers only once a test unpauses it."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG

from eksflow.assets import job_release
from eksflow.kit import default_args, role_task
from eksflow.settings import load_settings

settings = load_settings()

for job, paused in (("etl-step", False), ("train", False), ("serve", True)):
    with DAG(
        dag_id=f"on_{job.replace('-', '_')}_release",
        schedule=[job_release(settings, job)],
        start_date=datetime(2026, 1, 1),
        catchup=False,
        max_active_runs=1,
        is_paused_upon_creation=paused,
        default_args=default_args(owner="platform", on_failure_callback=None),
        tags=["eksflow", "test"],
        doc_md=f"Runs when {job} is released (tests/test_release_watcher.py): reads the release from its event.",
    ):

        @role_task()
        def released(triggering_asset_events=None) -> list[str]:
            return [e.extra["payload"]["digest"] for events in triggering_asset_events.values() for e in events]

        released()
