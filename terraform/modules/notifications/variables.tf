variable "topic_name" {
  description = "The environment's notification topic: the role model's notification_topic_name_pattern with env (e.g. eksflow-dev-notifications); the irsa module scopes sns:Publish to it."
  type        = string
  validation {
    condition     = can(regex("^[A-Za-z0-9_-]{1,256}$", var.topic_name))
    error_message = "topic_name must be an SNS topic name (1-256 letters, digits, '-' or '_'), e.g. eksflow-dev-notifications."
  }
}

variable "publisher_role_arns" {
  description = "Roles that publish to the topic (the irsa module's notification_publisher_role_arns): they may use the topic's key through SNS only."
  type        = list(string)
  validation {
    condition     = length(var.publisher_role_arns) > 0 && alltrue([for arn in var.publisher_role_arns : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/.+$", arn))])
    error_message = "publisher_role_arns must be one or more IAM role ARNs (the irsa module's notification_publisher_role_arns)."
  }
}

variable "tags" {
  description = "Tags for the topic and its key."
  type        = map(string)
  default     = {}
}
