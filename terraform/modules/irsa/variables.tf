variable "env" {
  description = "Environment name (dev, prod): part of every role name."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.env)) && !contains(["true", "false"], var.env)
    error_message = "env must be 2-16 lowercase letters, digits or '-', starting with a letter (e.g. dev, prod), and not true or false (the managed tag's legacy values)."
  }
}

variable "role_model" {
  description = "The platform role model: `eksflow roles --format json` (terraform/role-model.json)."
  type = object({
    namespace = string
    task_roles = map(object({
      service_account       = string
      iam_role_name_pattern = string
    }))
    control_plane = map(object({
      service_account = string
    }))
    # The tags housekeeping's IAM conditions read: managed_value_pattern with {env} is each environment's marker.
    housekeeping_tags = object({
      managed_key           = string
      managed_value_pattern = string
      protected_key         = string
      protected_value       = string
    })
    # The Secrets Manager backend's name prefixes with {env} (the chart's backend_kwargs, with its dagSettings.env).
    secrets_backend_patterns = object({
      connections_prefix = string
      variables_prefix   = string
    })
    # What every SageMaker name of an environment starts with, with {env} (the DAG kit's names).
    sagemaker_name_prefix_pattern = string
    # The SNS topic of an environment's DAG notifications, with {env} (sns:Publish is scoped to it).
    notification_topic_name_pattern = string
    # The jobs the DAGs run and the workloads' names (eksflow.jobs), with {env}: which job's tag a family's runnable
    # revisions carry (policies.tf, ecs_runner) and what the runner roles read to run a job's release ("released").
    jobs = map(object({
      runs_on                = string
      repository_pattern     = string
      task_role_name_pattern = string
      ecs_family_pattern     = string
    }))
    workloads = object({
      ecs_execution_role_name_pattern = string
      job_tag_key                     = string
    })
  })
  validation {
    condition = alltrue([
      for key in [var.role_model.housekeeping_tags.managed_key, var.role_model.housekeeping_tags.protected_key] :
      can(regex("^[A-Za-z0-9 _.:/=+@-]{1,128}$", key)) && !startswith(lower(key), "aws:")
    ]) && var.role_model.housekeeping_tags.managed_key != var.role_model.housekeeping_tags.protected_key
    error_message = "role_model.housekeeping_tags.managed_key and protected_key must be two different tag keys (1-128 letters, digits, spaces or _.:/=+@-, not aws:...): regenerate terraform/role-model.json with `make role-model`."
  }
  validation {
    condition     = strcontains(var.role_model.housekeeping_tags.managed_value_pattern, "{env}") && can(regex("^[A-Za-z0-9 _.:/=+@{}-]{1,256}$", var.role_model.housekeeping_tags.managed_value_pattern))
    error_message = "role_model.housekeeping_tags.managed_value_pattern must contain {env} (each environment's housekeeping acts only on what names it): regenerate terraform/role-model.json with `make role-model`."
  }
  validation {
    condition     = can(regex("^[A-Za-z0-9 _.:/=+@-]{1,256}$", var.role_model.housekeeping_tags.protected_value))
    error_message = "role_model.housekeeping_tags.protected_value must be a tag value (1-256 letters, digits, spaces or _.:/=+@-): regenerate terraform/role-model.json with `make role-model`."
  }
  # {env} a path segment of its own: an environment name has no '/', so one environment's prefix never covers
  # another's names (in an account environments share).
  validation {
    condition = alltrue([
      for pattern in values(var.role_model.secrets_backend_patterns) :
      can(regex("^([A-Za-z0-9_+=.@-]+/)*\\{env\\}(/[A-Za-z0-9_+=.@-]+)*$", pattern))
    ])
    error_message = "role_model.secrets_backend_patterns must be Secrets Manager name prefixes with {env} as a path segment of its own, without a leading or trailing '/' and without wildcards (e.g. eksflow/{env}/connections), so that each environment reads only its own secrets: regenerate terraform/role-model.json with `make role-model`."
  }
  # Ending in {env}-: eksflow-dev-* and eksflow-prod-* are disjoint (environment names that are another's plus
  # "-<more>" are not: docs/security.md, Known limits).
  validation {
    condition     = can(regex("^[a-z0-9-]*\\{env\\}-$", var.role_model.sagemaker_name_prefix_pattern))
    error_message = "role_model.sagemaker_name_prefix_pattern must be letters, digits or '-' ending in {env}- (e.g. eksflow-{env}-), so that each environment's SageMaker roles reach only its own names: regenerate terraform/role-model.json with `make role-model`."
  }
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]*\\{env\\}[A-Za-z0-9_-]*$", var.role_model.notification_topic_name_pattern))
    error_message = "role_model.notification_topic_name_pattern must be an SNS topic name with {env} (letters, digits, '-' or '_', e.g. eksflow-{env}-notifications), so that each environment publishes only to its own topic: regenerate terraform/role-model.json with `make role-model`."
  }
}

variable "oidc_provider_arn" {
  description = "ARN of the EKS cluster's IAM OIDC provider."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:oidc-provider/.+$", var.oidc_provider_arn))
    error_message = "oidc_provider_arn must be an IAM OIDC provider ARN (arn:aws:iam::<account>:oidc-provider/<issuer>)."
  }
}

variable "oidc_issuer" {
  description = "The cluster's OIDC issuer without https:// (e.g. oidc.eks.eu-west-1.amazonaws.com/id/ABC)."
  type        = string
  validation {
    condition     = !startswith(var.oidc_issuer, "https://") && length(var.oidc_issuer) > 0
    error_message = "oidc_issuer must be the issuer host and path without the https:// scheme."
  }
}

variable "log_bucket_arn" {
  description = "ARN of the task-log bucket; roles write under log_prefix only."
  type        = string
}

variable "log_prefix" {
  description = "Key prefix of task logs in the log bucket (the chart's airflow.remoteLogging.prefix)."
  type        = string
  default     = "task-logs"
}

variable "data_bucket_arn" {
  description = "ARN of the data bucket: SageMaker training input (read) and housekeeping reports (write)."
  type        = string
}

variable "ecs_cluster_arns" {
  description = "ECS clusters the ecs-runner role may run tasks on (the workloads module's ecs_cluster_arn)."
  type        = list(string)
}

variable "ecs_task_definition_families" {
  description = "Task-definition families the ecs-runner role may run (the workloads module's ecs_task_definition_families; the role model's ecs job families): a revision only when tagged with its family's job."
  type        = list(string)
}

variable "ecs_pass_role_arns" {
  description = "ECS task and execution roles the ecs-runner role may pass to RunTask (the workloads module's ecs_pass_role_arns)."
  type        = list(string)
}

variable "ecs_log_group_arns" {
  description = "CloudWatch log groups of the ECS tasks, read to show task logs in Airflow (the workloads module's ecs_log_group_arns)."
  type        = list(string)
  default     = []
}

variable "sagemaker_execution_role_arn" {
  description = "The SageMaker execution role; the only role sagemaker-runner may pass (the workloads module's)."
  type        = string
}

variable "release_queue_arn" {
  description = "The job-release queue the triggerer's AssetWatcher receives from (the workloads module's release_queue_arn)."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,80}$", var.release_queue_arn))
    error_message = "release_queue_arn must be an SQS queue ARN (arn:aws:sqs:<region>:<account>:<name>)."
  }
}

variable "release_dlq_arn" {
  description = "Its dead-letter queue: the triggerer sets malformed release messages aside there (the workloads module's release_dlq_arn)."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,80}$", var.release_dlq_arn))
    error_message = "release_dlq_arn must be an SQS queue ARN (arn:aws:sqs:<region>:<account>:<name>)."
  }
}

variable "release_queue_kms_key_arn" {
  description = "The KMS key of both release queues: the triggerer uses it through SQS only (the workloads module's release_queue_kms_key_arn). null: queues without a customer-managed key (the local stack's), no KMS right."
  type        = string
  default     = null
  validation {
    condition     = var.release_queue_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", coalesce(var.release_queue_kms_key_arn, "-")))
    error_message = "release_queue_kms_key_arn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>), or null for queues without a customer-managed key."
  }
}

# Retired: it set one prefix (eksflow-) for every environment, so in a shared account each environment's roles reached
# the others' SageMaker resources. The prefix is now the role model's per-environment pattern with var.env.
variable "sagemaker_name_prefix" {
  description = "Retired; leave unset. SageMaker names are scoped per environment to eksflow-<env>- (the role model's sagemaker_name_prefix_pattern with env)."
  type        = string
  default     = null
  validation {
    condition     = var.sagemaker_name_prefix == null
    error_message = "sagemaker_name_prefix is no longer an input: each environment's SageMaker names start with eksflow-<env>- (the role model's sagemaker_name_prefix_pattern with env); remove the argument (docs/upgrade.md: rename what the old prefix named)."
  }
}

variable "avp_policy_store_id" {
  description = "Amazon Verified Permissions policy store of the AWS auth manager (chart auth.aws.avpPolicyStoreId); the api-server may authorize against it. Empty: no such permission."
  type        = string
  default     = ""
  validation {
    condition     = can(regex("^[A-Za-z0-9-]*$", var.avp_policy_store_id))
    error_message = "avp_policy_store_id must be a Verified Permissions policy store id (letters, digits, '-') or empty."
  }
}

variable "secrets_backend_enabled" {
  description = "Whether the chart turns Airflow's Secrets Manager backend on (airflow.secretsBackend.enabled in the environment's values file): every role then may secretsmanager:GetSecretValue under this environment's connections and variables prefixes (the role model's patterns with env, e.g. eksflow/dev/connections), and nothing else of Secrets Manager."
  type        = bool
  default     = false
  nullable    = false
}

variable "tags" {
  description = "Tags for every role."
  type        = map(string)
  default     = {}
}
