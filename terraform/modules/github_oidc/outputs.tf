output "push_role_arn" {
  description = "Role the image workflow assumes (aws-actions/configure-aws-credentials role-to-assume)."
  value       = aws_iam_role.this["push"].arn
}

output "deploy_role_arn" {
  description = "Role the deploy workflow assumes; grant it cluster access with an EKS access entry."
  value       = aws_iam_role.this["deploy"].arn
}
