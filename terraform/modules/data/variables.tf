variable "env" {
  description = "Environment name (dev, prod): part of every resource name."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.env))
    error_message = "env must be 2-16 lowercase letters, digits or '-', starting with a letter (e.g. dev, prod)."
  }
}

variable "bucket_names" {
  description = "Bucket names by purpose (logs, data, ml_artifacts): the role model's `eksflow roles --env <env>` buckets."
  type = object({
    logs         = string
    data         = string
    ml_artifacts = string
  })
}

variable "ecr_repository" {
  description = "ECR repository of the Airflow image (the role model's ecr_repository)."
  type        = string
}

variable "log_retention_days" {
  description = "Days task logs are kept before they expire."
  type        = number
  default     = 90
  validation {
    condition     = var.log_retention_days >= 1
    error_message = "log_retention_days must be at least 1."
  }
}

variable "vpc_id" {
  description = "VPC of the metadata database."
  type        = string
}

variable "database_subnet_ids" {
  description = "Private subnets (at least two AZs) of the metadata database."
  type        = list(string)
  validation {
    condition     = length(var.database_subnet_ids) >= 2
    error_message = "database_subnet_ids needs at least two private subnets in different AZs."
  }
}

variable "database_client_cidrs" {
  description = "CIDRs allowed to reach PostgreSQL on 5432 (the EKS node/pod subnets)."
  type        = list(string)
  validation {
    condition     = alltrue([for cidr in var.database_client_cidrs : can(cidrhost(cidr, 0))])
    error_message = "database_client_cidrs must be valid CIDR blocks, e.g. 10.0.0.0/16."
  }
}

variable "database_instance_class" {
  description = "RDS instance class of the metadata database."
  type        = string
  default     = "db.t4g.medium"
  validation {
    condition     = can(regex("^db\\.[a-z0-9]+\\.[a-z0-9]+$", var.database_instance_class))
    error_message = "database_instance_class must look like db.<family>.<size>, e.g. db.t4g.medium."
  }
}

variable "database_allocated_storage_gb" {
  description = "Initial storage of the metadata database (GiB); autoscaling up to 5x."
  type        = number
  default     = 20
}

variable "multi_az" {
  description = "Run the metadata database Multi-AZ (prod)."
  type        = bool
  default     = false
}

variable "deletion_protection" {
  description = "Protect the metadata database from deletion (prod)."
  type        = bool
  default     = true
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
