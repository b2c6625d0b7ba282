# The workloads the DAGs run, for one environment: the ECS cluster (Fargate) with each ecs job's task definition,
# task role and log group, the task execution role, an ECR repository per job, the SageMaker execution role and the
# queue job releases are announced on. Every name is the role model's (`workloads` and `jobs`, from
# src/eksflow/jobs.py) with {env} filled in. One file per concern: ecr.tf, logs.tf, iam.tf, ecs.tf, queue.tf.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition = data.aws_partition.current.partition
  region    = data.aws_region.current.name
  account   = data.aws_caller_identity.current.account_id

  workloads = var.role_model.workloads
  names = {
    cluster             = replace(local.workloads.ecs_cluster_name_pattern, "{env}", var.env)
    execution_role      = replace(local.workloads.ecs_execution_role_name_pattern, "{env}", var.env)
    sagemaker_execution = replace(local.workloads.sagemaker_execution_role_name_pattern, "{env}", var.env)
    release_queue       = replace(local.workloads.release_queue_name_pattern, "{env}", var.env)
    release_dlq         = replace(local.workloads.release_dlq_name_pattern, "{env}", var.env)
  }
  job_tag_key      = local.workloads.job_tag_key
  sagemaker_prefix = replace(var.role_model.sagemaker_name_prefix_pattern, "{env}", var.env)

  jobs = {
    for name, job in var.role_model.jobs : name => {
      runs_on                  = job.runs_on
      container                = job.container
      reads                    = job.reads
      writes                   = job.writes
      repository               = replace(job.repository_pattern, "{env}", var.env)
      family                   = replace(job.ecs_family_pattern, "{env}", var.env)
      task_role_name           = replace(job.task_role_name_pattern, "{env}", var.env)
      log_group                = replace(job.log_group_pattern, "{env}", var.env)
      github_release_role_name = replace(job.github_release_role_name_pattern, "{env}", var.env)
    }
  }
  # Known before the repositories exist, so that a plan shows the policies that name them.
  repository_arns = { for name, job in local.jobs : name => "arn:${local.partition}:ecr:${local.region}:${local.account}:repository/${job.repository}" }
  ecs_jobs        = { for name, job in local.jobs : name => job if job.runs_on == "ecs" }
  sagemaker_jobs  = { for name, job in local.jobs : name => job if job.runs_on == "sagemaker" }
}
