"""An environment in which nothing reaches a real AWS account: for every process the local tooling starts."""

from __future__ import annotations

import os

REGION = "eu-west-1"


def offline_env() -> dict[str, str]:
    """This process's environment without AWS/Airflow/eksflow settings, plus dummy AWS credentials and no
    AWS config files: nothing started with it can reach a real account."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "AIRFLOW", "EKSFLOW_"))}
    env.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            "AWS_EC2_METADATA_DISABLED": "true",
        }
    )
    return env
