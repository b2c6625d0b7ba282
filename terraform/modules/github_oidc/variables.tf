variable "env" {
  description = "Environment name (dev, prod): part of the role names and of the GitHub environments they trust."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.env))
    error_message = "env must be 2-16 lowercase letters, digits or '-', starting with a letter (e.g. dev, prod)."
  }
}

variable "github_repository" {
  description = "GitHub repository allowed to assume the roles, as owner/name."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", var.github_repository))
    error_message = "github_repository must be owner/name, e.g. acme/eksflow."
  }
}

variable "image_release_environment" {
  description = "GitHub environment of the job that adds a version tag to main's image (deployment tags: protected v*)."
  type        = string
  default     = "image-release"
}

variable "terraform_state" {
  description = "Where this environment's Terraform state lives: the bucket and key of its backend.hcl, and the KMS key that encrypts the bucket (if it is a customer-managed one)."
  type = object({
    bucket      = string
    key         = string
    kms_key_arn = optional(string)
  })
  validation {
    condition     = can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.terraform_state.bucket))
    error_message = "terraform_state.bucket must be an S3 bucket name (3-63 lowercase letters, digits, '.' or '-'): the bucket of this environment's backend.hcl."
  }
  validation {
    condition     = can(regex("^[A-Za-z0-9!_.()/-]+\\.tfstate$", var.terraform_state.key)) && !startswith(var.terraform_state.key, "/") && !strcontains(var.terraform_state.key, "//")
    error_message = "terraform_state.key must be the state object's key as backend.hcl sets it, e.g. eksflow/dev/terraform.tfstate (no wildcard, no leading '/', ending in .tfstate)."
  }
  validation {
    condition     = var.terraform_state.kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", coalesce(var.terraform_state.kms_key_arn, "-")))
    error_message = "terraform_state.kms_key_arn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>), or left out when the state bucket uses S3-managed keys."
  }
}

variable "ecr_repository_arn" {
  description = "ARN of the Airflow image repository."
  type        = string
}

variable "eks_cluster_arn" {
  description = "ARN of the environment's EKS cluster (Kubernetes access of the release role: the eks module's access entry)."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:eks:[a-z0-9-]+:[0-9]{12}:cluster/[A-Za-z][A-Za-z0-9-]*$", var.eks_cluster_arn))
    error_message = "eks_cluster_arn must be an EKS cluster ARN (arn:aws:eks:<region>:<account>:cluster/<name>)."
  }
}

variable "bucket_arns" {
  description = "The environment's buckets by purpose (the data module's bucket_arns): infra manages them, no stage reads their objects."
  type        = map(string)
}

variable "db_identifier" {
  description = "RDS identifier of the metadata DB (infra manages it; its subnet and parameter groups share the name)."
  type        = string
}

variable "db_secret_arn" {
  description = "The RDS-managed secret of the metadata DB: the one secret the release reads."
  type        = string
}

variable "db_kms_key_arn" {
  description = "KMS key of the metadata DB and its secret: the release decrypts the secret through Secrets Manager only."
  type        = string
}

variable "create_oidc_provider" {
  description = "Create the GitHub OIDC provider (false when the account already has it)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "housekeeping_tag_keys" {
  description = "The role model's managed and protected tag keys (housekeeping acts on what they mark): infra may never set or remove them."
  type        = list(string)
  validation {
    condition     = length(var.housekeeping_tag_keys) == 2
    error_message = "housekeeping_tag_keys must be the role model's housekeeping_tags managed_key and protected_key."
  }
}

variable "jobs" {
  description = "The jobs of the role model as the workloads module made them (its `jobs` output): each gets a release role named github_release_role_name, trusted from its repository in job_repositories."
  type = map(object({
    runs_on                  = string
    repository_arn           = string
    ecs_family               = string
    task_role_arn            = string
    log_group_arn            = string
    github_release_role_name = string
  }))
}

variable "job_repositories" {
  description = "The GitHub repository (owner/name) each job is built and released from, by job name: its release role trusts that repository's GitHub environment named after env only."
  type        = map(string)
  validation {
    condition     = alltrue([for repository in values(var.job_repositories) : can(regex("^[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+$", repository))])
    error_message = "job_repositories values must be GitHub repositories as owner/name, e.g. { etl-step = \"acme/etl-step\" }."
  }
}

variable "ecs_cluster_arn" {
  description = "The jobs' ECS cluster (the workloads module's): infra manages it, plan reads it."
  type        = string
}

variable "job_tag_key" {
  description = "The role model's workloads.job_tag_key: a job's release role registers only revisions tagged with it and the job's name."
  type        = string
}

variable "ecs_execution_role_arn" {
  description = "The ECS task execution role (the workloads module's): an ecs job's release role passes it with its own task role."
  type        = string
}

variable "release_queue_arn" {
  description = "The job-release queue (the workloads module's): every release role sends its release there."
  type        = string
}

variable "release_dlq_arn" {
  description = "The job-release queue's dead-letter queue (the workloads module's): infra manages it, no release role may use it."
  type        = string
}

variable "release_queue_kms_key_arn" {
  description = "The release queue's KMS key: the release roles use it through SQS only."
  type        = string
}
