output "role_arns" {
  description = "Role of each CI stage (push, image-tag, plan, infra, release): the AWS_ROLE_ARN of its GitHub environment (terraform/README.md)."
  value       = { for stage, role in aws_iam_role.this : stage => role.arn }
}

output "job_release_role_arns" {
  description = "Each job repository's release role, by job: the AWS_ROLE_ARN of that repository's <env> GitHub environment (terraform/README.md)."
  value       = { for job, role in aws_iam_role.job : job => role.arn }
}
