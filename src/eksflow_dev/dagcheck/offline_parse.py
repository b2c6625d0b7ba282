"""Parse DAG files with the network closed, check each DAG's rules and role fit, and report (JSON, the last line
on stdout).

``python -m eksflow_dev.dagcheck.offline_parse PATH...`` (folders or files). The network is closed by the
platform's own guard (eksflow.parse_guard, which the dag-processor and workers install too): a DAG file that
calls AWS, or reads a Variable/Connection over the network, at parse time fails to import with an error naming
its file, line and host; ``connect_attempts`` lists every refused call.
"""

from __future__ import annotations

import json
import sys
import time

from eksflow import parse_guard


def _uris(asset) -> set[str]:
    if asset is None:
        return set()
    if hasattr(asset, "objects"):  # AssetAll / AssetAny
        return set().union(*(_uris(part) for part in asset.objects))
    return {asset.uri} if getattr(asset, "uri", None) else set()


def asset_edges(dag) -> dict[str, list[str]]:
    """The asset URIs a DAG is scheduled on and those its tasks produce (their outlets)."""
    produced = set().union(*(_uris(outlet) for task in dag.tasks for outlet in task.outlets))
    return {"consumes": sorted(_uris(getattr(dag.timetable, "asset_condition", None))), "produces": sorted(produced)}


def main(paths: list[str]) -> None:
    parse_guard.install()
    parse_guard.install_variable_guard()
    from airflow.dag_processing.dagbag import DagBag

    from eksflow.checks.role_fit import check_dag
    from eksflow.checks.rules import check_rules

    started = time.perf_counter()
    dags, import_errors = {}, {}
    for path in paths:
        bag = DagBag(dag_folder=path)
        dags.update(bag.dags)
        import_errors.update(bag.import_errors)
    report = {
        "dag_ids": sorted(dags),
        "files": {dag_id: dag.fileloc for dag_id, dag in dags.items()},
        "import_errors": import_errors,
        "connect_attempts": parse_guard.attempts,
        "problems": {dag_id: check_rules(dag) + check_dag(dag) for dag_id, dag in dags.items()},
        "assets": {dag_id: asset_edges(dag) for dag_id, dag in dags.items()},
        "seconds": time.perf_counter() - started,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main(sys.argv[1:])
