output "task_role_arns" {
  description = "IAM role ARN per task role (the chart's workers.roles.<role>.iamRoleArn)."
  value       = { for name, _ in var.role_model.task_roles : name => aws_iam_role.this["task-${name}"].arn }
}

output "control_plane_role_arns" {
  description = "IAM role ARN per control-plane component (the chart's controlPlane.<component>.iamRoleArn)."
  value       = { for name, _ in var.role_model.control_plane : name => aws_iam_role.this[name].arn }
}

output "trust_subjects" {
  description = "The one service-account subject each role trusts, by role name."
  value       = { for key, role in local.roles : role.role_name => "system:serviceaccount:${local.namespace}:${role.service_account}" }
}

output "notification_publisher_role_arns" {
  description = "Roles that may publish DAG notifications (the notifications module lets them use the topic's key)."
  value       = [for key, _ in local.notification_publishers : aws_iam_role.this[key].arn]
}
