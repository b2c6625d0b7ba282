# Inputs a module also takes are validated there, once (the messages name the variable).

variable "env" {
  description = "Environment name."
  type        = string
}

variable "region" {
  description = "AWS region."
  type        = string
  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region name such as eu-west-1."
  }
}

variable "cluster_name" {
  description = "EKS cluster name."
  type        = string
}

variable "vpc_cidr" {
  description = "VPC CIDR (/16 to /20)."
  type        = string
}

variable "availability_zones" {
  description = "Two or three zones."
  type        = list(string)
}

variable "public_access_cidrs" {
  description = "CIDRs allowed to the public EKS API endpoint; empty: private only."
  type        = list(string)
  default     = []
}

variable "task_instance_types" {
  description = "Instance types of the tasks node group."
  type        = list(string)
  default     = ["m6i.large", "m5.large", "m6a.large"]
}

variable "database_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"
}

variable "multi_az" {
  description = "Metadata DB Multi-AZ."
  type        = bool
  default     = false
}

variable "deletion_protection" {
  description = "Metadata DB deletion protection."
  type        = bool
  default     = false
}

variable "github_repository" {
  description = "owner/name of the GitHub repository that builds and deploys eksflow."
  type        = string
}

variable "terraform_state" {
  description = "This environment's Terraform state: bucket and key as its backend.hcl sets them (a test holds them equal to backend.hcl.example), and the bucket's KMS key when it is customer-managed. The CI roles may touch only that state."
  type = object({
    bucket      = string
    key         = string
    kms_key_arn = optional(string)
  })
}

variable "job_repositories" {
  description = "The GitHub repository (owner/name) of each job of the role model (src/eksflow/jobs.py), by job name: its release role (output job_release_role_arns) trusts that repository's GitHub environment named after env, and nothing else."
  type        = map(string)
  # Checked here, where the role model is read (the github_oidc module checks each value's form).
  validation {
    condition     = length(setsubtract(keys(local.model.jobs), keys(var.job_repositories))) == 0 && length(setsubtract(keys(var.job_repositories), keys(local.model.jobs))) == 0
    error_message = "job_repositories must name the GitHub repository of every job of the role model and of no other job: missing ${jsonencode(sort(setsubtract(keys(local.model.jobs), keys(var.job_repositories))))}, unknown ${jsonencode(sort(setsubtract(keys(var.job_repositories), keys(local.model.jobs))))}; set job_repositories = { <job> = \"<owner>/<name>\", ... } in this environment's terraform.tfvars with the jobs of terraform/role-model.json (src/eksflow/jobs.py)."
  }
}

variable "avp_policy_store_id" {
  description = "Verified Permissions policy store of the AWS auth manager (the chart's auth.aws.avpPolicyStoreId)."
  type        = string
  default     = ""
}

variable "secrets_backend_enabled" {
  description = "Whether the chart's airflow.secretsBackend.enabled is on in values-<env>.yaml: the roles may then read Airflow's Connections and Variables from Secrets Manager (a test holds the two equal)."
  type        = bool
  default     = false
}

variable "admin_principal_arns" {
  description = "Cluster admins."
  type        = list(string)
  default     = []
}

variable "deploy_runner_security_group_ids" {
  description = "Optional: security groups of the release job's runner inside the VPC (self-hosted GitHub runner, CodeBuild) allowed to the private EKS API endpoint on 443; the release stage needs the API, which is private unless public_access_cidrs is set."
  type        = list(string)
  default     = []
}

variable "deploy_runner_cidrs" {
  description = "Optional: CIDRs of the release job's runner inside the VPC or a peered network allowed to the private EKS API endpoint on 443 (never 0.0.0.0/0; prefer deploy_runner_security_group_ids)."
  type        = list(string)
  default     = []
}
