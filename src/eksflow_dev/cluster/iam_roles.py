"""The platform's IAM roles on the local cluster's AWS emulator, made by Terraform's own module
(terraform/modules/irsa) for env local: with IAM enforcement on, every pod's web-identity session is held to
the policies Terraform would give its role on AWS. The role ARNs the chart gets are this apply's outputs, as
`make chart-values` takes them from terraform/envs/<env>.

The root module is generated (Terraform's JSON syntax) around the real module: the emulator's IAM/STS
endpoints, the cluster's OIDC issuer, and the names the local emulator seeds (ECS cluster and family, the
SageMaker execution role, the buckets) from the same settings the DAGs read; the jobs' roles and the release queues by
the role model's names (eksflow.jobs; the local queues have no customer-managed key)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from eksflow.jobs import JOBS, ecs_execution_role_name, release_dlq_name, release_queue_name
from eksflow.platform import bucket_names
from eksflow.settings import load_settings
from eksflow_dev import terraform_cli
from eksflow_dev.chartvalues import output_values
from eksflow_dev.cluster.cluster import REPO
from eksflow_dev.cluster.pki import ISSUER
from eksflow_dev.emulator.seed import ACCOUNT_ID, EMULATOR_KEYS

IRSA_MODULE = REPO / "terraform" / "modules" / "irsa"
ROLE_MODEL = REPO / "terraform" / "role-model.json"
OUTPUTS = ("task_role_arns", "control_plane_role_arns")
PLUGIN_CACHE = REPO / ".eksflow" / "terraform"  # kept across runs: the provider is not fetched again


def require_terraform() -> str:
    binary = terraform_cli.find_terraform()
    if binary is None:
        raise ValueError(f"IAM enforced (IAM=1, --iam) needs terraform to make the roles: {terraform_cli.INSTALL_HINT}")
    return binary


def root_module(emulator_url: str, settings_env: dict[str, str]) -> dict[str, Any]:
    settings = load_settings(settings_env)
    region, account = settings.region, ACCOUNT_ID
    buckets = bucket_names(settings.env)
    ecs_jobs = [job for job in JOBS.values() if job.runs_on == "ecs"]
    return {
        "provider": {
            "aws": {
                "region": region,
                "access_key": EMULATOR_KEYS["AccessKeyId"],
                "secret_key": EMULATOR_KEYS["SecretAccessKey"],
                "skip_credentials_validation": True,
                "skip_metadata_api_check": True,
                "endpoints": {"iam": emulator_url, "sts": emulator_url},
            }
        },
        "resource": {
            "aws_iam_openid_connect_provider": {
                "cluster": {
                    "url": ISSUER,
                    "client_id_list": ["sts.amazonaws.com"],
                    "thumbprint_list": ["0" * 40],
                }
            }
        },
        "module": {
            "irsa": {
                "source": str(IRSA_MODULE),
                "env": settings.env,
                "role_model": f'${{jsondecode(file("{ROLE_MODEL}"))}}',
                "oidc_provider_arn": "${aws_iam_openid_connect_provider.cluster.arn}",
                "oidc_issuer": ISSUER.removeprefix("https://"),
                "log_bucket_arn": f"arn:aws:s3:::{buckets['logs']}",
                "data_bucket_arn": f"arn:aws:s3:::{buckets['data']}",
                "ecs_cluster_arns": [f"arn:aws:ecs:{region}:{account}:cluster/{settings.ecs_cluster}"],
                "ecs_task_definition_families": [settings.ecs_task_definition],
                "ecs_pass_role_arns": [
                    *(f"arn:aws:iam::{account}:role/{job.task_role_name(settings.env)}" for job in ecs_jobs),
                    f"arn:aws:iam::{account}:role/{ecs_execution_role_name(settings.env)}",
                ],
                "sagemaker_execution_role_arn": settings.sagemaker_execution_role_arn,
                "release_queue_arn": f"arn:aws:sqs:{region}:{account}:{release_queue_name(settings.env)}",
                "release_dlq_arn": f"arn:aws:sqs:{region}:{account}:{release_dlq_name(settings.env)}",
            }
        },
        "output": {name: {"value": f"${{module.irsa.{name}}}"} for name in OUTPUTS},
    }


def apply(work: Path, emulator_url: str, settings_env: dict[str, str]) -> dict[str, Any]:
    """terraform init + apply of the generated root in `work`; the module's outputs (role ARNs by name)."""
    binary = require_terraform()
    work.mkdir(parents=True, exist_ok=True)
    for stale in work.glob("terraform.tfstate*"):  # of an emulator that is gone (an earlier `make up`)
        stale.unlink()
    (work / "main.tf.json").write_text(json.dumps(root_module(emulator_url, settings_env), indent=2))
    env = terraform_cli.cli_env(PLUGIN_CACHE)
    terraform_cli.run(binary, "init", "-input=false", "-no-color", cwd=work, env=env, timeout=300)
    terraform_cli.run(binary, "apply", "-auto-approve", "-input=false", "-no-color", cwd=work, env=env, timeout=600)
    outputs = output_values(json.loads(terraform_cli.run(binary, "output", "-json", cwd=work, env=env).stdout))
    return {name: outputs[name] for name in OUTPUTS}
