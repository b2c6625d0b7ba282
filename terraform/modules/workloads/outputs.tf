output "jobs" {
  description = "Per job: where it runs, its repository, and (ecs jobs; empty for sagemaker ones) its family, task role and log group; the name of its GitHub release role (github_oidc makes it)."
  value = {
    for name, job in local.jobs : name => {
      runs_on                  = job.runs_on
      repository_name          = aws_ecr_repository.job[name].name
      repository_arn           = aws_ecr_repository.job[name].arn
      repository_url           = aws_ecr_repository.job[name].repository_url
      ecs_family               = job.runs_on == "ecs" ? aws_ecs_task_definition.job[name].family : ""
      task_role_arn            = job.runs_on == "ecs" ? aws_iam_role.task[name].arn : ""
      log_group_name           = job.runs_on == "ecs" ? aws_cloudwatch_log_group.job[name].name : ""
      log_group_arn            = job.runs_on == "ecs" ? aws_cloudwatch_log_group.job[name].arn : ""
      github_release_role_name = job.github_release_role_name
    }
  }
}

output "job_tag_key" {
  description = "The tag (value: the job's name) each job's repository, task role, log group and task-definition revisions carry."
  value       = local.job_tag_key
}

output "ecs_cluster_arn" {
  description = "The ECS cluster of the ecs jobs (ecs-runner runs tasks there only)."
  value       = aws_ecs_cluster.this.arn
}

output "ecs_cluster_name" {
  description = "Name of that cluster (DAG settings: EKSFLOW_ECS_CLUSTER)."
  value       = aws_ecs_cluster.this.name
}

output "ecs_task_definition_families" {
  description = "The ecs jobs' task-definition families (ecs-runner runs any of their revisions)."
  value       = [for name, _ in local.ecs_jobs : aws_ecs_task_definition.job[name].family]
}

output "ecs_task_role_arns" {
  description = "Each ecs job's task role, by job."
  value       = { for name, _ in local.ecs_jobs : name => aws_iam_role.task[name].arn }
}

output "ecs_execution_role_arn" {
  description = "The task execution role every ecs job's task definition names."
  value       = aws_iam_role.execution.arn
}

output "ecs_pass_role_arns" {
  description = "The roles a task definition of an ecs job names (task roles and the execution role): what ecs-runner may pass to ECS."
  value       = concat([for name, _ in local.ecs_jobs : aws_iam_role.task[name].arn], [aws_iam_role.execution.arn])
}

output "ecs_log_group_arns" {
  description = "The ecs jobs' CloudWatch log groups (ecs-runner reads them to show task logs)."
  value       = [for name, _ in local.ecs_jobs : aws_cloudwatch_log_group.job[name].arn]
}

output "ecs_task_security_group_id" {
  description = "Security group of the ecs jobs' tasks (DAG settings: EKSFLOW_ECS_SECURITY_GROUPS)."
  value       = aws_security_group.tasks.id
}

output "sagemaker_execution_role_arn" {
  description = "The SageMaker execution role (sagemaker-runner passes it; DAG settings: EKSFLOW_SAGEMAKER_EXECUTION_ROLE_ARN)."
  value       = aws_iam_role.sagemaker_execution.arn
}

output "release_queue_url" {
  description = "URL of the job-release queue (the release command sends to it, the AssetWatcher receives from it)."
  value       = aws_sqs_queue.releases.id
}

output "release_queue_arn" {
  description = "ARN of the job-release queue."
  value       = aws_sqs_queue.releases.arn
}

output "release_dlq_url" {
  description = "URL of the job-release queue's dead-letter queue."
  value       = aws_sqs_queue.release_dlq.id
}

output "release_dlq_arn" {
  description = "ARN of the job-release queue's dead-letter queue."
  value       = aws_sqs_queue.release_dlq.arn
}

output "release_queue_kms_key_arn" {
  description = "The KMS key of both release queues: senders and receivers use it through SQS only."
  value       = module.queue_key.arn
}
