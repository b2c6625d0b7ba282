variable "env" {
  description = "Environment name (dev, prod): part of the role names."
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

variable "push_branches" {
  description = "Branches whose workflows may push images."
  type        = list(string)
  default     = ["main"]
}

variable "deploy_environment" {
  description = "GitHub environment (with required reviewers) whose jobs may deploy."
  type        = string
}

variable "ecr_repository_arn" {
  description = "ARN of the Airflow image repository the push role may write."
  type        = string
}

variable "eks_cluster_arn" {
  description = "ARN of the EKS cluster the deploy role may describe (access is granted by an EKS access entry)."
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
