variable "env" {
  description = "Environment name (dev, prod): part of every resource name."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.env))
    error_message = "env must be 2-16 lowercase letters, digits or '-', starting with a letter (e.g. dev, prod)."
  }
}

variable "cluster_name" {
  description = "EKS cluster name, for the subnet discovery tags."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z][A-Za-z0-9-]{0,99}$", var.cluster_name))
    error_message = "cluster_name must start with a letter and use letters, digits or '-' (max 100)."
  }
}

variable "vpc_cidr" {
  description = "CIDR of the VPC, e.g. 10.0.0.0/16 (a /16 to /20)."
  type        = string
  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && try(tonumber(split("/", var.vpc_cidr)[1]) >= 16 && tonumber(split("/", var.vpc_cidr)[1]) <= 20, false)
    error_message = "vpc_cidr must be a valid IPv4 CIDR between /16 and /20, e.g. 10.0.0.0/16."
  }
}

variable "availability_zones" {
  description = "At least two availability zones."
  type        = list(string)
  validation {
    condition     = length(var.availability_zones) >= 2 && length(var.availability_zones) <= 3
    error_message = "availability_zones needs two or three zones (EKS and RDS Multi-AZ require two; the subnet plan holds three)."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones (dev, cheaper) instead of one per zone (prod, zone-resilient)."
  type        = bool
  default     = false
}

variable "interface_endpoints" {
  description = "Interface VPC endpoints for what task pods call most (private, no NAT data charges)."
  type        = list(string)
  default     = ["ecr.api", "ecr.dkr", "sts", "logs"]
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}

variable "flow_log_bucket_arn" {
  description = "ARN of the S3 bucket that receives the VPC flow logs (the platform's log bucket)."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.flow_log_bucket_arn))
    error_message = "flow_log_bucket_arn must be an S3 bucket ARN such as arn:aws:s3:::eksflow-dev-logs."
  }
}
