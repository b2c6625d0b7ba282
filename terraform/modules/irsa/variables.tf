variable "env" {
  description = "Environment name (dev, prod): part of every role name."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.env))
    error_message = "env must be 2-16 lowercase letters, digits or '-', starting with a letter (e.g. dev, prod)."
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
  })
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
  description = "ECS clusters the ecs-runner role may run tasks on."
  type        = list(string)
}

variable "ecs_task_definition_families" {
  description = "Task-definition families the ecs-runner role may run (any revision)."
  type        = list(string)
}

variable "ecs_pass_role_arns" {
  description = "ECS task and execution roles the ecs-runner role may pass to RunTask."
  type        = list(string)
}

variable "ecs_log_group_arns" {
  description = "CloudWatch log groups of the ECS tasks (read, to show task logs in Airflow)."
  type        = list(string)
  default     = []
}

variable "sagemaker_execution_role_arn" {
  description = "The SageMaker execution role; the only role sagemaker-runner may pass."
  type        = string
}

variable "sagemaker_name_prefix" {
  description = "Name prefix of every SageMaker resource the DAG kit creates; policies are scoped to it."
  type        = string
  default     = "eksflow-"
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

variable "managed_tag_key" {
  description = "Tag that marks resources housekeeping may stop/terminate/delete."
  type        = string
  default     = "eksflow:managed"
}

variable "tags" {
  description = "Tags for every role."
  type        = map(string)
  default     = {}
}
