"""Batch data pipeline: the old queue-table chain of ECS containers as one DAG."""

from __future__ import annotations

from datetime import datetime

from airflow.sdk import DAG, Param

from eksflow.assets import curated_events, job_release
from eksflow.jobs import get_job
from eksflow.kit import default_args, ecs_overrides, ecs_run_task, notify_owners, role_task
from eksflow.settings import load_settings

settings = load_settings()
curated = curated_events(settings)
ETL = get_job("etl-step")  # the job repository whose releases this pipeline runs
released = job_release(settings, ETL.name)

DOC = f"""
### Batch data pipeline
The ECS steps that used to be chained through queue tables, run daily and on every release of the
`{ETL.name}` job (the `{released.uri}` Asset, updated when its repository's release workflow ran):

1. **plan_partitions** (plain Python) splits the day into `partitions` work items;
2. **transform_partition** runs job `{ETL.name}`'s released revision of the `{ETL.ecs_family(settings.env)}`
   task definition once per partition (dynamic task mapping), at most 16 at a time: the revision of the
   release that triggered the run, else the last release before the run started (its image pinned by digest);
3. **merge_partitions** runs the same revision in `merge` mode (also when a release lands mid-run) and publishes the
   `{curated.uri}` Asset, which schedules the ML pipeline.

Every ECS step runs as the `ecs-runner` role, waits deferred (no worker pod while ECS runs) and
re-attaches to its ECS task after a lost worker.
"""

with DAG(
    dag_id="batch_data_pipeline",
    description="ECS tasks fanned out over partitions, producing the curated_events Asset",
    schedule=settings.schedule_or_assets("@daily", released),
    start_date=datetime(2026, 1, 1),
    catchup=False,
    max_active_runs=1,
    default_args=default_args(owner="data-eng"),
    tags=["eksflow", "reference", "data", "ecs"],
    doc_md=DOC,
    params={
        "partitions": Param(4, type="integer", minimum=1, maximum=500, description="Number of partitions"),
        "day": Param(
            None,
            type=["null", "string"],
            pattern=r"^\d{4}-\d{2}-\d{2}$",
            description="Day to process (YYYY-MM-DD); defaults to the run's logical date",
        ),
    },
) as dag:

    @role_task()
    def plan_partitions(params=None, ds=None, dag_run=None) -> list[dict]:
        # Manual runs have no logical date (no ds): they process the day they run after.
        day = params["day"] or ds or dag_run.run_after.date().isoformat()
        count = int(params["partitions"])
        return [
            ecs_overrides(
                ETL.container,
                command=["transform", "--day", day, "--partition", str(index), "--of", str(count)],
                environment={"OUTPUT_URI": f"{settings.curated_prefix_uri}day={day}/part={index:04d}/"},
            )
            for index in range(count)
        ]

    transform = ecs_run_task(
        task_id="transform_partition",
        cluster=settings.ecs_cluster,
        job=ETL.name,
        map_overrides=plan_partitions(),
        subnets=settings.ecs_subnets,
        security_groups=settings.ecs_security_groups,
        max_active_tis_per_dag=16,
    )

    merge = ecs_run_task(
        task_id="merge_partitions",
        cluster=settings.ecs_cluster,
        job=ETL.name,
        overrides=ecs_overrides(
            ETL.container,
            command=[
                "merge",
                "--day",
                "{{ params.day or (ds if ds is defined else dag_run.run_after | ds) }}",
            ],
            environment={"OUTPUT_URI": settings.curated_prefix_uri},
        ),
        subnets=settings.ecs_subnets,
        security_groups=settings.ecs_security_groups,
        outlets=[curated],
        on_success_callback=notify_owners("success"),  # failures: default_args notifies every task's
    )

    transform >> merge
