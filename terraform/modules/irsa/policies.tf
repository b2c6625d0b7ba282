# Least-privilege policies of the roles that call AWS besides writing logs.

data "aws_iam_policy_document" "ecs_runner" {
  statement {
    sid     = "RunTaskDefinitions"
    actions = ["ecs:RunTask"]
    resources = [for family in var.ecs_task_definition_families :
    "arn:${local.partition}:ecs:${local.region}:${local.account}:task-definition/${family}:*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = var.ecs_cluster_arns
    }
  }
  statement {
    sid     = "WatchAndStopTasks"
    actions = ["ecs:DescribeTasks", "ecs:StopTask", "ecs:TagResource"]
    resources = [for cluster in var.ecs_cluster_arns :
    "arn:${local.partition}:ecs:${local.region}:${local.account}:task/${element(split("/", cluster), 1)}/*"]
  }
  statement {
    sid       = "ListTasksForReattach"
    actions   = ["ecs:ListTasks"]
    resources = ["*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = var.ecs_cluster_arns
    }
  }
  statement {
    sid       = "PassTaskRoles"
    actions   = ["iam:PassRole"]
    resources = var.ecs_pass_role_arns
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
  dynamic "statement" {
    for_each = length(var.ecs_log_group_arns) > 0 ? [1] : []
    content {
      sid       = "ReadTaskLogs"
      actions   = ["logs:GetLogEvents", "logs:DescribeLogStreams"]
      resources = [for group in var.ecs_log_group_arns : "${group}:*"]
    }
  }
}

data "aws_iam_policy_document" "sagemaker_runner" {
  statement {
    sid = "ManagePrefixedResources"
    actions = [
      "sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob",
      "sagemaker:CreateModel", "sagemaker:DescribeModel",
      "sagemaker:CreateEndpointConfig", "sagemaker:DescribeEndpointConfig",
      "sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint", "sagemaker:DescribeEndpoint",
      "sagemaker:InvokeEndpoint", "sagemaker:AddTags", "sagemaker:ListTags",
    ]
    resources = [for kind in ["training-job", "model", "endpoint-config", "endpoint"] :
    "${local.sagemaker_arn}:${kind}/${var.sagemaker_name_prefix}*"]
  }
  statement {
    sid       = "PassExecutionRole"
    actions   = ["iam:PassRole"]
    resources = [var.sagemaker_execution_role_arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["sagemaker.amazonaws.com"]
    }
  }
  statement {
    sid       = "CheckTrainingInput"
    actions   = ["s3:ListBucket"]
    resources = [var.data_bucket_arn]
  }
  statement {
    sid       = "ReadTrainingInput"
    actions   = ["s3:GetObject"]
    resources = ["${var.data_bucket_arn}/curated/*"]
  }
}

data "aws_iam_policy_document" "ec2_ops" {
  statement {
    sid       = "Discover"
    actions   = ["ec2:DescribeInstances", "cloudwatch:GetMetricStatistics", "sagemaker:ListEndpoints"]
    resources = ["*"]
  }
  statement {
    sid       = "StopOrTerminateManagedOnly"
    actions   = ["ec2:StopInstances", "ec2:TerminateInstances"]
    resources = ["arn:${local.partition}:ec2:${local.region}:${local.account}:instance/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${var.managed_tag_key}"
      values   = ["true"]
    }
  }
  statement {
    sid       = "InspectAndDeleteEndpoints"
    actions   = ["sagemaker:DescribeEndpoint", "sagemaker:ListTags", "sagemaker:DeleteEndpoint"]
    resources = ["${local.sagemaker_arn}:endpoint/${var.sagemaker_name_prefix}*"]
  }
  statement {
    sid       = "WriteReports"
    actions   = ["s3:PutObject"]
    resources = ["${var.data_bucket_arn}/reports/housekeeping/*"]
  }
}

# The triggerer runs every deferred wait, so it may read the status of what tasks start — nothing more.
data "aws_iam_policy_document" "triggerer" {
  statement {
    sid     = "DescribeEcsTasks"
    actions = ["ecs:DescribeTasks"]
    resources = [for cluster in var.ecs_cluster_arns :
    "arn:${local.partition}:ecs:${local.region}:${local.account}:task/${element(split("/", cluster), 1)}/*"]
  }
  statement {
    sid = "DescribeSageMakerJobs"
    actions = ["sagemaker:DescribeTrainingJob", "sagemaker:DescribeEndpoint",
    "sagemaker:DescribeTransformJob", "sagemaker:DescribeProcessingJob"]
    resources = ["${local.sagemaker_arn}:*/${var.sagemaker_name_prefix}*"]
  }
  statement {
    sid       = "DescribeInstances"
    actions   = ["ec2:DescribeInstances", "ec2:DescribeInstanceStatus"]
    resources = ["*"]
  }
}

# The AWS auth manager in the api-server: GetSchema at start-up, (Batch)IsAuthorized per request, on its
# policy store only.
data "aws_iam_policy_document" "api_server" {
  statement {
    sid       = "AuthorizeWithVerifiedPermissions"
    actions   = ["verifiedpermissions:GetSchema", "verifiedpermissions:IsAuthorized", "verifiedpermissions:BatchIsAuthorized"]
    resources = ["arn:${local.partition}:verifiedpermissions::${local.account}:policy-store/${var.avp_policy_store_id}"]
  }
}

locals {
  role_policies = merge({
    "task-ecs-runner"       = data.aws_iam_policy_document.ecs_runner.json
    "task-sagemaker-runner" = data.aws_iam_policy_document.sagemaker_runner.json
    "task-ec2-ops"          = data.aws_iam_policy_document.ec2_ops.json
    "triggerer"             = data.aws_iam_policy_document.triggerer.json
  }, var.avp_policy_store_id == "" ? {} : { "api-server" = data.aws_iam_policy_document.api_server.json })
}

resource "aws_iam_role_policy" "job" {
  for_each = { for key, policy in local.role_policies : key => policy if contains(keys(local.roles), key) }

  name   = "job"
  role   = aws_iam_role.this[each.key].id
  policy = each.value
}
