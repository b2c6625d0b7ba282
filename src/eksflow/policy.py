"""Airflow cluster policies of the platform (entry point ``airflow.policy``, pyproject.toml).

Importing this module (Airflow loads entry points when it starts) closes the network while DAG files are imported
(eksflow.parse_guard): so even where an ``airflow_local_settings`` hook of the same name wins over this one, the
network stays closed during parsing.
"""

from __future__ import annotations

from airflow.policies import hookimpl

from eksflow import parse_guard

parse_guard.install()


@hookimpl
def get_dagbag_import_timeout(dag_file_path: str) -> None:
    """Called before each DAG file is imported, in the process importing it (Airflow is initialised by then):
    Variable and Connection reads are refused during the import too. Returns None, so the timeout stays Airflow's
    ``[core] dagbag_import_timeout`` (or an ``airflow_local_settings`` hook's)."""
    parse_guard.install_variable_guard()
