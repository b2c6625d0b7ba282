variable "description" {
  description = "What the key encrypts."
  type        = string
}

variable "service_policy_json" {
  description = "Extra key-policy statements (JSON policy document) for AWS services that use the key; null for none."
  type        = string
  default     = null
}

variable "tags" {
  description = "Tags for the key."
  type        = map(string)
  default     = {}
}
