variable "env" {
  description = "Environment name (dev, prod, ...)."
  type        = string
  validation {
    condition     = can(regex("^[a-z]{2,16}$", var.env))
    error_message = "env must be 2-16 lowercase letters, e.g. dev or prod."
  }
}

variable "database_identifier" {
  description = "RDS instance identifier of the metadata DB."
  type        = string
}

variable "database_cpu_percent" {
  description = "CPU alarm threshold (percent, 15-minute average)."
  type        = number
  default     = 80
  validation {
    condition     = var.database_cpu_percent > 0 && var.database_cpu_percent <= 100
    error_message = "database_cpu_percent must be between 1 and 100."
  }
}

variable "database_free_storage_gb" {
  description = "Free-storage alarm threshold in GiB."
  type        = number
  default     = 5
}

variable "database_free_memory_mb" {
  description = "Freeable-memory alarm threshold in MiB."
  type        = number
  default     = 256
}

variable "database_max_connections" {
  description = "Connections alarm threshold."
  type        = number
  default     = 300
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
