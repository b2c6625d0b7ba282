"""Loaded at start-up by the processes of `eksflow check`'s dry runs only (their PYTHONPATH starts here): every AWS
request carries the DAG and task Airflow is running (``AIRFLOW_CTX_*``, which the task runner sets), so the
emulator's IAM audit names the task behind each action outside its role's policy."""

import os

try:
    import botocore.endpoint
except ImportError:  # a process without botocore
    pass
else:
    _prepare_request = botocore.endpoint.Endpoint.prepare_request

    def _prepare_with_task(self, request):
        dag_id, task_id = os.environ.get("AIRFLOW_CTX_DAG_ID"), os.environ.get("AIRFLOW_CTX_TASK_ID")
        if dag_id and task_id:
            request.headers["X-Eksflow-Task"] = f"{dag_id}.{task_id}"
        return _prepare_request(self, request)

    botocore.endpoint.Endpoint.prepare_request = _prepare_with_task
