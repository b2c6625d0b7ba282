output "role_arns" {
  description = "Role of each CI stage (push, image-tag, plan, infra, release): the AWS_ROLE_ARN of its GitHub environment (terraform/README.md)."
  value       = { for stage, role in aws_iam_role.this : stage => role.arn }
}
