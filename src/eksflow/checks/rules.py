"""The platform's rules for a DAG, each broken rule one line naming the DAG (and task) and the fix."""

from __future__ import annotations

from typing import Any

from airflow.sdk.definitions._internal.types import NOTSET

MIN_DOC_CHARS = 100
MIN_RETRIES = 2


def _task_retries(task: Any) -> int:
    partial = getattr(task, "partial_kwargs", None)
    if partial is not None:
        return partial.get("retries", getattr(task, "retries", 0)) or 0
    return task.retries or 0


def check_rules(dag: Any) -> list[str]:
    problems: list[str] = []
    name = dag.dag_id
    if "eksflow" not in (dag.tags or []):
        problems.append(f"{name}: tags {sorted(dag.tags or [])} lack 'eksflow'; add tags=['eksflow', ...]")
    if not dag.doc_md or len(dag.doc_md) < MIN_DOC_CHARS:
        problems.append(
            f"{name}: doc_md is missing or shorter than {MIN_DOC_CHARS} characters; say what the DAG does, its "
            "inputs and outputs and whom to call (the on-call reads it in the UI)"
        )
    if dag.catchup:
        problems.append(f"{name}: catchup=True; set catchup=False (backfill explicitly with `airflow backfill`)")
    if dag.max_active_runs != 1:
        problems.append(f"{name}: max_active_runs={dag.max_active_runs}; set max_active_runs=1 (runs must not overlap)")
    for key in dag.params:
        if dag.params.get_param(key).value is NOTSET:
            problems.append(f"{name}: param {key!r} has no default; give it one (scheduled and dry runs use defaults)")
    for task in dag.tasks:
        if getattr(task, "owner", None) in (None, "", "airflow"):
            problems.append(f"{name}.{task.task_id}: no owner; use default_args=default_args(owner='<team>')")
        retries = _task_retries(task)
        if retries < MIN_RETRIES:
            problems.append(
                f"{name}.{task.task_id}: retries={retries}; the platform needs at least {MIN_RETRIES} "
                "(eksflow.kit's default_args and helpers give 3)"
            )
    return problems
