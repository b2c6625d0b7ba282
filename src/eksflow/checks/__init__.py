"""Static checks over DAGs that tests (and, later, CI for DAG repositories) run."""
