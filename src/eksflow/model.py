"""The platform model as plain data (``eksflow roles``): what the chart and Terraform derive from.

``make role-model`` writes it to terraform/role-model.json; Terraform reads that file, and so does the Helm
chart (through the symlink helm/eksflow/files/role-model.json).
"""

from __future__ import annotations

from typing import Any

from eksflow.connections import cluster_connections
from eksflow.jobs import (
    ECS_CLUSTER_NAME_PATTERN,
    ECS_EXECUTION_ROLE_NAME_PATTERN,
    JOB_TAG_KEY,
    JOBS,
    RELEASE_DLQ_NAME_PATTERN,
    RELEASE_QUEUE_NAME_PATTERN,
    SAGEMAKER_EXECUTION_ROLE_NAME_PATTERN,
)
from eksflow.platform import (
    BUCKET_NAME_PATTERNS,
    CONTROL_PLANE,
    DB_CA_FILE,
    MANAGED_TAG_KEY,
    MANAGED_TAG_VALUE_PATTERN,
    NAMESPACE,
    NOTIFICATION_TOPIC_NAME_PATTERN,
    POD_TEMPLATE_BASE_FILE,
    POD_TEMPLATE_DIR,
    PROJECT,
    PROTECTED_TAG_KEY,
    PROTECTED_TAG_VALUE,
    RELEASE_KUBERNETES_GROUP,
    ROLE_LABEL,
    SAGEMAKER_NAME_PREFIX_PATTERN,
    SECRETS_BACKEND_PREFIX_PATTERNS,
    TTL_TAG_KEY,
    bucket_names,
    ecr_repository_name,
    notification_topic_name,
    sagemaker_name_prefix,
    secrets_backend_prefixes,
)
from eksflow.roles import DEFAULT_ROLE, ROLES


def platform_model(env: str | None = None) -> dict[str, Any]:
    model: dict[str, Any] = {
        "project": PROJECT,
        "namespace": NAMESPACE,
        "release_kubernetes_group": RELEASE_KUBERNETES_GROUP,
        "pod_template_dir": POD_TEMPLATE_DIR,
        "pod_template_base_file": POD_TEMPLATE_BASE_FILE,
        "role_label": ROLE_LABEL,
        "db_ca_file": DB_CA_FILE,
        "default_role": DEFAULT_ROLE,
        # Housekeeping's tags: Terraform conditions the ec2-ops role's stop/terminate/delete and the
        # sagemaker-runner's tagging on them (managed_value_pattern with the environment's name).
        "housekeeping_tags": {
            "managed_key": MANAGED_TAG_KEY,
            "managed_value_pattern": MANAGED_TAG_VALUE_PATTERN,
            "protected_key": PROTECTED_TAG_KEY,
            "protected_value": PROTECTED_TAG_VALUE,
            "expires_at_key": TTL_TAG_KEY,
        },
        # Per environment ({env}): the Secrets Manager backend's name prefixes (the chart's backend_kwargs, Terraform's
        # GetSecretValue scope) and the SageMaker name prefix (the kit's names, Terraform's SageMaker scope).
        "secrets_backend_patterns": dict(SECRETS_BACKEND_PREFIX_PATTERNS),
        "sagemaker_name_prefix_pattern": SAGEMAKER_NAME_PREFIX_PATTERN,
        # The SNS topic of the environment's DAG notifications (Terraform's topic and its sns:Publish scope).
        "notification_topic_name_pattern": NOTIFICATION_TOPIC_NAME_PATTERN,
        "ecr_repository": ecr_repository_name(),
        "bucket_name_patterns": dict(BUCKET_NAME_PATTERNS),
        # The workloads the DAGs run (eksflow.jobs): Terraform's workloads module makes them with these names.
        "workloads": {
            "ecs_cluster_name_pattern": ECS_CLUSTER_NAME_PATTERN,
            "ecs_execution_role_name_pattern": ECS_EXECUTION_ROLE_NAME_PATTERN,
            "sagemaker_execution_role_name_pattern": SAGEMAKER_EXECUTION_ROLE_NAME_PATTERN,
            "release_queue_name_pattern": RELEASE_QUEUE_NAME_PATTERN,
            "release_dlq_name_pattern": RELEASE_DLQ_NAME_PATTERN,
            "job_tag_key": JOB_TAG_KEY,
        },
        "jobs": {
            job.name: {
                "runs_on": job.runs_on,
                "description": job.description,
                "container": job.container,
                "reads": list(job.reads),
                "writes": list(job.writes),
                "repository_pattern": job.repository_pattern,
                "ecs_family_pattern": job.ecs_family_pattern,
                "task_role_name_pattern": job.task_role_name_pattern,
                "log_group_pattern": job.log_group_pattern,
                "github_release_role_name_pattern": job.github_release_role_name_pattern,
            }
            for job in JOBS.values()
        },
        "task_roles": {
            role.name: {
                "description": role.description,
                "service_account": role.service_account,
                "iam_role_name_pattern": role.iam_role_name_pattern,
                "pod_template_file": role.pod_template_file,
                "conn_id": role.conn_id,
                "aws_services": sorted(role.services),
                "aws_permissions": list(role.aws_permissions),
                "resources": role.resources.as_k8s(),
            }
            for role in ROLES.values()
        },
        "control_plane": {
            c.name: {
                "service_account": c.service_account,
                "description": c.description,
                "aws_access": c.aws_access,
            }
            for c in CONTROL_PLANE
        },
    }
    if env is not None:
        model["env"] = env
        model["buckets"] = bucket_names(env)
        model["secrets_backend"] = secrets_backend_prefixes(env)
        model["sagemaker_name_prefix"] = sagemaker_name_prefix(env)
        model["notification_topic_name"] = notification_topic_name(env)
        for role in ROLES.values():
            model["task_roles"][role.name]["iam_role_name"] = role.iam_role_name(env)
        for component in CONTROL_PLANE:
            model["control_plane"][component.name]["iam_role_name"] = component.iam_role_name(env)
        model["cluster_connections"] = sorted(cluster_connections("<region>"))
    return model
