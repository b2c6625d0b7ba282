# Each ecs job's CloudWatch log group (awslogs), encrypted with a key of this module that CloudWatch Logs may use for
# these log groups only.

locals {
  log_group_arns = {
    for name, job in local.ecs_jobs : name => "arn:${local.partition}:logs:${local.region}:${local.account}:log-group:${job.log_group}"
  }
}

data "aws_iam_policy_document" "logs_use_key" {
  # checkov:skip=CKV_AWS_111: key policy: Resource "*" is this key only; the service is limited to the job log groups by condition
  # checkov:skip=CKV_AWS_356: key policy: Resource "*" is this key only
  statement {
    sid       = "JobLogGroups"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = values(local.log_group_arns)
    }
  }
}

module "logs_key" {
  source = "../kms_key"

  description         = "eksflow-${var.env} job logs (CloudWatch Logs of the ECS jobs)"
  service_policy_json = data.aws_iam_policy_document.logs_use_key.json
  tags                = var.tags
}

resource "aws_cloudwatch_log_group" "job" {
  for_each = local.ecs_jobs

  name              = each.value.log_group
  retention_in_days = var.log_retention_days
  kms_key_id        = module.logs_key.arn
  tags              = merge(var.tags, { (local.job_tag_key) = each.key })
}
