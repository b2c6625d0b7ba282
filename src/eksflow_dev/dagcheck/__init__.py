"""Checks for DAG files: `eksflow check` / `make check-dags`, and the test suites over dags/."""
