# What the Helm chart needs (a make target will turn these into a values file).

output "env" {
  description = "Platform environment (chart: dagSettings.env)."
  value       = var.env
}

output "region" {
  description = "AWS region (chart: region)."
  value       = var.region
}

output "cluster_name" {
  description = "EKS cluster name."
  value       = module.eks.cluster_name
}

output "task_role_arns" {
  description = "chart: workers.roles.<role>.iamRoleArn"
  value       = module.irsa.task_role_arns
}

output "control_plane_role_arns" {
  description = "chart: controlPlane.<component>.iamRoleArn"
  value       = module.irsa.control_plane_role_arns
}

output "log_bucket" {
  description = "chart: airflow.remoteLogging.bucket"
  value       = module.data.bucket_names["logs"]
}

output "bucket_names" {
  description = "All buckets by purpose."
  value       = module.data.bucket_names
}

output "db_secret_arn" {
  description = "Secrets Manager secret of the metadata DB credentials (the deploy builds the chart's DB Secret from it)."
  value       = module.data.db_secret_arn
}

output "ecr_repository_url" {
  description = "Repository of the Airflow image."
  value       = module.data.ecr_repository_url
}

output "github_push_role_arn" {
  description = "Role of the image workflow on main (push main's image). Its GitHub environment's AWS_ROLE_ARN."
  value       = module.github_oidc.role_arns["push"]
}

output "github_image_tag_role_arn" {
  description = "Role of the image-release GitHub environment (add a v* tag to main's image). Its GitHub environment's AWS_ROLE_ARN."
  value       = module.github_oidc.role_arns["image-tag"]
}

output "github_plan_role_arn" {
  description = "Role of the <env>-plan GitHub environment (terraform init + plan). Its GitHub environment's AWS_ROLE_ARN."
  value       = module.github_oidc.role_arns["plan"]
}

output "github_infra_role_arn" {
  description = "Role of the <env>-infra GitHub environment (terraform apply). Its GitHub environment's AWS_ROLE_ARN."
  value       = module.github_oidc.role_arns["infra"]
}

output "github_release_role_arn" {
  description = "Role of the <env> GitHub environment (make deploy STAGE=release; the EKS namespace access entry's principal). Its GitHub environment's AWS_ROLE_ARN."
  value       = module.github_oidc.role_arns["release"]
}

output "cluster_oidc_issuer" {
  description = "OIDC issuer of the cluster without https:// (the IRSA trust condition keys start with it)."
  value       = module.eks.oidc_issuer
}

output "db_endpoint" {
  description = "host:port of the metadata DB (the deploy builds the chart's DB Secret from it and db_secret_arn)."
  value       = module.data.db_endpoint
}

output "alarm_topic_arn" {
  description = "SNS topic of the CloudWatch alarms (subscribe on-call to it)."
  value       = module.alarms.topic_arn
}

output "vpc_cidr" {
  description = "chart: networkPolicy.databaseCidrs and apiServerIngressFrom (the load balancer reaches pod IPs in the VPC)"
  value       = module.network.vpc_cidr
}

output "notification_topic_arn" {
  description = "SNS topic of DAG notifications (subscribe DAG owners to it; the DAG settings derive the same ARN)."
  value       = module.notifications.topic_arn
}

# The workloads (modules/workloads): what the DAG settings and the job repositories' release workflows name.

output "ecs_cluster_name" {
  description = "ECS cluster of the ecs jobs (DAG settings: EKSFLOW_ECS_CLUSTER)."
  value       = module.workloads.ecs_cluster_name
}

output "ecs_task_definition_families" {
  description = "Task-definition families of the ecs jobs (DAG settings: EKSFLOW_ECS_TASK_DEFINITION)."
  value       = module.workloads.ecs_task_definition_families
}

output "ecs_task_subnet_ids" {
  description = "Subnets of the ecs jobs' tasks (chart: dagSettings.ecsSubnets)."
  value       = module.network.private_subnet_ids
}

output "ecs_task_security_group_ids" {
  description = "Security groups of the ecs jobs' tasks, HTTPS out only (chart: dagSettings.ecsSecurityGroups)."
  value       = [module.workloads.ecs_task_security_group_id]
}

output "sagemaker_execution_role_arn" {
  description = "SageMaker execution role (DAG settings: EKSFLOW_SAGEMAKER_EXECUTION_ROLE_ARN)."
  value       = module.workloads.sagemaker_execution_role_arn
}

output "job_repository_urls" {
  description = "ECR repository of each job's image, by job (its release pushes there)."
  value       = { for job, workload in module.workloads.jobs : job => workload.repository_url }
}

output "job_release_role_arns" {
  description = "Each job repository's release role, by job: the AWS_ROLE_ARN of the <env> GitHub environment of that job's repository (job_repositories)."
  value       = module.github_oidc.job_release_role_arns
}

output "release_queue_url" {
  description = "The job-release queue: releases are announced there, the triggerer's AssetWatcher receives them."
  value       = module.workloads.release_queue_url
}

output "release_dlq_url" {
  description = "The job-release queue's dead-letter queue (messages received too often, or set aside as malformed)."
  value       = module.workloads.release_dlq_url
}
