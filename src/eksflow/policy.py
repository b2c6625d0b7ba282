"""Airflow cluster policies of the platform (entry point ``airflow.policy``, pyproject.toml)."""

from __future__ import annotations

from airflow.policies import hookimpl


@hookimpl
def get_dagbag_import_timeout(dag_file_path: str) -> float:
    """Called before each DAG file is imported, in the process importing it: close the network for the import
    (eksflow.parse_guard); the timeout stays Airflow's ``[core] dagbag_import_timeout``."""
    from airflow.configuration import conf

    from eksflow import parse_guard

    parse_guard.install()
    return conf.getfloat("core", "dagbag_import_timeout")
