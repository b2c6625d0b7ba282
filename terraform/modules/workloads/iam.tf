# The roles the workloads run as: ECS's task execution role (pulls a job's image, writes its logs), one task role per
# ecs job (what its container may do: its own data prefixes) and the SageMaker execution role (what training,
# processing, transform jobs and models may do). Each is trusted by its AWS service for this account only
# (aws:SourceAccount: no other account's task or job can be made to run as it).

locals {
  ecs_arn          = "arn:${local.partition}:ecs:${local.region}:${local.account}"
  logs_arn         = "arn:${local.partition}:logs:${local.region}:${local.account}:log-group"
  bucket_key_arns  = var.bucket_kms_key_arn == null ? [] : [var.bucket_kms_key_arn]
  s3_service       = "s3.${local.region}.amazonaws.com"
  ecs_repositories = [for name, _ in local.ecs_jobs : local.repository_arns[name]]
  pull_actions     = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability"]
}

data "aws_iam_policy_document" "ecs_tasks_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["${local.ecs_arn}:*"]
    }
  }
}

# --- Task execution role: ECS pulls the ecs jobs' images and writes their log streams; nothing else (no managed
# policy: AmazonECSTaskExecutionRolePolicy would pull from every repository and write to every log group).

resource "aws_iam_role" "execution" {
  name                 = local.names.execution_role
  assume_role_policy   = data.aws_iam_policy_document.ecs_tasks_trust.json
  max_session_duration = 3600
  tags                 = var.tags
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "RegistryLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  statement {
    sid       = "PullTheEcsJobsImages"
    actions   = local.pull_actions
    resources = local.ecs_repositories
  }
  statement {
    sid       = "WriteTheEcsJobsLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [for arn in values(local.log_group_arns) : "${arn}:log-stream:*"]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "pull-and-log"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# --- One task role per ecs job: read its `reads` prefixes, write its `writes` prefixes of the data bucket.

resource "aws_iam_role" "task" {
  for_each = local.ecs_jobs

  name                 = each.value.task_role_name
  assume_role_policy   = data.aws_iam_policy_document.ecs_tasks_trust.json
  max_session_duration = 3600
  tags                 = merge(var.tags, { (local.job_tag_key) = each.key })
}

data "aws_iam_policy_document" "task" {
  for_each = local.ecs_jobs

  statement {
    sid       = "ReadItsPrefixes"
    actions   = ["s3:GetObject"]
    resources = [for prefix in each.value.reads : "${var.data_bucket_arn}/${prefix}*"]
  }
  dynamic "statement" {
    for_each = length(each.value.writes) > 0 ? [1] : []
    content {
      sid       = "WriteItsPrefixes"
      actions   = ["s3:PutObject", "s3:AbortMultipartUpload"]
      resources = [for prefix in each.value.writes : "${var.data_bucket_arn}/${prefix}*"]
    }
  }
  statement {
    sid       = "ListItsPrefixes"
    actions   = ["s3:ListBucket"]
    resources = [var.data_bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = [for prefix in distinct(concat(each.value.reads, each.value.writes)) : "${prefix}*"]
    }
  }
  dynamic "statement" {
    for_each = local.bucket_key_arns
    content {
      sid       = "BucketKeyThroughS3"
      actions   = length(each.value.writes) > 0 ? ["kms:Decrypt", "kms:GenerateDataKey"] : ["kms:Decrypt"]
      resources = [statement.value]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = [local.s3_service]
      }
    }
  }
}

resource "aws_iam_role_policy" "task" {
  for_each = local.ecs_jobs

  name   = "job"
  role   = aws_iam_role.task[each.key].id
  policy = data.aws_iam_policy_document.task[each.key].json
}

# --- SageMaker execution role (sagemaker-runner passes it): read the curated training data, read and write model
# artifacts under models/, pull the sagemaker jobs' images, write its jobs' and endpoints' logs.

locals {
  sagemaker_repositories = [for name, _ in local.sagemaker_jobs : local.repository_arns[name]]
  # The kit names every job and endpoint eksflow-<env>-…: SageMaker's log streams start with the job's name, an
  # endpoint's log group ends with the endpoint's.
  sagemaker_job_log_groups = [for kind in ["TrainingJobs", "ProcessingJobs", "TransformJobs"] : "${local.logs_arn}:/aws/sagemaker/${kind}"]
  sagemaker_endpoint_logs  = "${local.logs_arn}:/aws/sagemaker/Endpoints/${local.sagemaker_prefix}*"
}

data "aws_iam_policy_document" "sagemaker_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["sagemaker.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "sagemaker_execution" {
  name                 = local.names.sagemaker_execution
  assume_role_policy   = data.aws_iam_policy_document.sagemaker_trust.json
  max_session_duration = 3600
  tags                 = var.tags
}

data "aws_iam_policy_document" "sagemaker_execution" {
  statement {
    sid       = "ReadCuratedData"
    actions   = ["s3:GetObject"]
    resources = ["${var.data_bucket_arn}/curated/*"]
  }
  statement {
    sid       = "ListCuratedData"
    actions   = ["s3:ListBucket"]
    resources = [var.data_bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["curated/*"]
    }
  }
  statement {
    sid       = "ReadAndWriteModels"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"]
    resources = ["${var.ml_artifacts_bucket_arn}/models/*"]
  }
  statement {
    sid       = "ListModels"
    actions   = ["s3:ListBucket"]
    resources = [var.ml_artifacts_bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["models/*"]
    }
  }
  statement {
    sid       = "RegistryLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  statement {
    sid       = "PullTheSageMakerJobsImages"
    actions   = local.pull_actions
    resources = local.sagemaker_repositories
  }
  statement {
    sid       = "LogGroups"
    actions   = ["logs:CreateLogGroup", "logs:DescribeLogStreams"]
    resources = concat(flatten([for group in local.sagemaker_job_log_groups : [group, "${group}:*"]]), [local.sagemaker_endpoint_logs])
  }
  statement {
    sid     = "ItsJobsAndEndpointsLogStreams"
    actions = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = concat(
      [for group in local.sagemaker_job_log_groups : "${group}:log-stream:${local.sagemaker_prefix}*"],
      ["${local.sagemaker_endpoint_logs}:log-stream:*"],
    )
  }
  dynamic "statement" {
    for_each = local.bucket_key_arns
    content {
      sid       = "BucketKeyThroughS3"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = [local.s3_service]
      }
    }
  }
}

resource "aws_iam_role_policy" "sagemaker_execution" {
  name   = "sagemaker-jobs"
  role   = aws_iam_role.sagemaker_execution.id
  policy = data.aws_iam_policy_document.sagemaker_execution.json
}
