variable "cluster_name" {
  description = "EKS cluster name."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9-]{0,99}$", var.cluster_name))
    error_message = "cluster_name must start with a letter and use letters, digits or '-' (max 100)."
  }
}

variable "kubernetes_version" {
  description = "Kubernetes minor version (the chart is validated against 1.32-1.35)."
  type        = string
  default     = "1.34"
  validation {
    condition     = contains(["1.32", "1.33", "1.34", "1.35"], var.kubernetes_version)
    error_message = "kubernetes_version must be one of 1.32, 1.33, 1.34, 1.35."
  }
}

variable "subnet_ids" {
  description = "Private subnets (two or more zones) for the control plane ENIs and the nodes."
  type        = list(string)
  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "subnet_ids needs at least two private subnets in different zones."
  }
}

variable "public_access_cidrs" {
  description = "CIDRs allowed to reach the public API endpoint; empty keeps the endpoint private only."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for cidr in var.public_access_cidrs : can(cidrhost(cidr, 0)) && cidr != "0.0.0.0/0"])
    error_message = "public_access_cidrs must be valid CIDRs and never 0.0.0.0/0; leave it empty for a private endpoint."
  }
  validation {
    # Canonical (no host bits, no leading zeros) and /16 or narrower: halves or odd spellings of 0.0.0.0/0 fail.
    condition = alltrue([
      for cidr in var.public_access_cidrs :
      try(format("%s/%d", cidrhost(cidr, 0), tonumber(split("/", cidr)[1])) == cidr && tonumber(split("/", cidr)[1]) >= 16, false)
    ])
    error_message = "public_access_cidrs must be canonical IPv4 CIDRs of /16 or narrower (e.g. 203.0.113.0/24): the public endpoint is for admin networks, never the internet in pieces."
  }
}

variable "control_plane_log_retention_days" {
  description = "Retention of the control-plane (audit) logs in CloudWatch; at least a year."
  type        = number
  default     = 365
  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.control_plane_log_retention_days)
    error_message = "control_plane_log_retention_days must be a CloudWatch retention of at least a year (365, 400, 545, 731, ... 3653)."
  }
}

variable "system_instance_types" {
  description = "Instance types of the on-demand system node group (Airflow control plane)."
  type        = list(string)
  default     = ["m6i.large"]
  validation {
    condition     = alltrue([for t in var.system_instance_types : can(regex("^[a-z][a-z0-9-]*\\.[0-9]*x?(large|medium|small|micro|nano|metal)$", t))])
    error_message = "system_instance_types entries must look like <family>.<size>, e.g. m6i.large."
  }
}

variable "task_instance_types" {
  description = "Instance types of the tasks node group (several help spot capacity)."
  type        = list(string)
  default     = ["m6i.large", "m5.large", "m6a.large"]
  validation {
    condition     = alltrue([for t in var.task_instance_types : can(regex("^[a-z][a-z0-9-]*\\.[0-9]*x?(large|medium|small|micro|nano|metal)$", t))])
    error_message = "task_instance_types entries must look like <family>.<size>, e.g. m6i.large."
  }
}

variable "tasks_capacity_type" {
  description = "SPOT (cheaper; tasks retry and re-attach) or ON_DEMAND."
  type        = string
  default     = "SPOT"
  validation {
    condition     = contains(["SPOT", "ON_DEMAND"], var.tasks_capacity_type)
    error_message = "tasks_capacity_type must be SPOT or ON_DEMAND."
  }
}

variable "system_nodes" {
  description = "min/desired/max of the system node group."
  type        = object({ min = number, desired = number, max = number })
  default     = { min = 2, desired = 2, max = 4 }
}

variable "task_nodes" {
  description = "min/desired/max of the tasks node group (scales from a low minimum)."
  type        = object({ min = number, desired = number, max = number })
  default     = { min = 0, desired = 1, max = 20 }
}

variable "namespace" {
  description = "Namespace of the platform (the role model's namespace): the deploy role's access scope."
  type        = string
}

variable "namespace_admin_principal_arns" {
  description = "IAM principals that release the chart (the release workflow's role), by a static key (the ARNs may be unknown until apply): admin in the platform namespace, and release_kubernetes_group for what the cluster bootstrap's RBAC allows at the cluster scope."
  type        = map(string)
  default     = {}
}

variable "release_kubernetes_group" {
  description = "Kubernetes group of the release principals' access entries (the role model's release_kubernetes_group): `eksflow cluster-bootstrap` binds the release's ClusterRole to it."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,62}$", var.release_kubernetes_group))
    error_message = "release_kubernetes_group must be lowercase letters, digits or '-' starting with a letter (EKS refuses system: groups): use the role model's release_kubernetes_group."
  }
}

variable "deploy_runner_security_group_ids" {
  description = "Security groups of deploy runners inside the VPC (self-hosted runner, CodeBuild) allowed to the private API endpoint on 443."
  type        = list(string)
  default     = []
  validation {
    condition     = alltrue([for id in var.deploy_runner_security_group_ids : can(regex("^sg-([0-9a-f]{8}|[0-9a-f]{17})$", id))])
    error_message = "deploy_runner_security_group_ids must be security group ids (sg-0123456789abcdef0)."
  }
}

variable "deploy_runner_cidrs" {
  description = "CIDRs of deploy runners inside the VPC or a peered network allowed to the private API endpoint on 443."
  type        = list(string)
  default     = []
  validation {
    # Canonical (no host bits, no leading zeros) and /8 or narrower: 0.0.0.0/0, its halves and odd spellings fail.
    condition = alltrue([
      for cidr in var.deploy_runner_cidrs :
      try(format("%s/%d", cidrhost(cidr, 0), tonumber(split("/", cidr)[1])) == cidr && tonumber(split("/", cidr)[1]) >= 8, false)
    ])
    error_message = "deploy_runner_cidrs must be canonical IPv4 CIDRs of /8 or narrower (e.g. 10.20.64.0/24, the runner's subnet), never 0.0.0.0/0: prefer deploy_runner_security_group_ids."
  }
}

variable "admin_principal_arns" {
  description = "IAM principals with cluster-admin access (break-glass, platform team)."
  type        = list(string)
  default     = []
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
