# One IAM role per service account of the role model (task roles and control plane), each trusted only by
# system:serviceaccount:<namespace>:<service account> with aud sts.amazonaws.com, with least-privilege
# inline policies.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  partition = data.aws_partition.current.partition
  region    = data.aws_region.current.name
  account   = data.aws_caller_identity.current.account_id
  namespace = var.role_model.namespace

  task_roles = {
    for name, role in var.role_model.task_roles : "task-${name}" => {
      role_name       = replace(role.iam_role_name_pattern, "{env}", var.env)
      service_account = role.service_account
    }
  }
  control_plane_roles = {
    for name, component in var.role_model.control_plane : name => {
      role_name       = "eksflow-${var.env}-${name}"
      service_account = component.service_account
    }
  }
  roles = merge(local.task_roles, local.control_plane_roles)

  sagemaker_arn = "arn:${local.partition}:sagemaker:${local.region}:${local.account}"
  log_objects   = "${var.log_bucket_arn}/${var.log_prefix}/*"

  # Housekeeping's tags from the role model: this environment's managed marker (e.g. eksflow:managed=dev).
  managed_tag_key     = var.role_model.housekeeping_tags.managed_key
  managed_tag_value   = replace(var.role_model.housekeeping_tags.managed_value_pattern, "{env}", var.env)
  protected_tag_key   = var.role_model.housekeeping_tags.protected_key
  protected_tag_value = var.role_model.housekeeping_tags.protected_value

  # This environment's names where environments may share an account: SageMaker (e.g. eksflow-dev-) and the Secrets
  # Manager backend's prefixes (e.g. eksflow/dev/connections), the role model's patterns with var.env.
  sagemaker_name_prefix    = replace(var.role_model.sagemaker_name_prefix_pattern, "{env}", var.env)
  secrets_backend_prefixes = { for kind, pattern in var.role_model.secrets_backend_patterns : kind => replace(pattern, "{env}", var.env) }
}

data "aws_iam_policy_document" "trust" {
  for_each = local.roles

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer}:sub"
      values   = ["system:serviceaccount:${local.namespace}:${each.value.service_account}"]
    }
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  for_each = local.roles

  name                 = each.value.role_name
  assume_role_policy   = data.aws_iam_policy_document.trust[each.key].json
  max_session_duration = 3600
  tags                 = merge(var.tags, { "eksflow:service-account" = each.value.service_account })
}

# Everyone writes task logs under the log prefix, and nothing else in the bucket.
data "aws_iam_policy_document" "logs" {
  statement {
    sid       = "WriteTaskLogs"
    actions   = ["s3:PutObject", "s3:GetObject"]
    resources = [local.log_objects]
  }
  statement {
    sid       = "ListTaskLogs"
    actions   = ["s3:ListBucket"]
    resources = [var.log_bucket_arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["${var.log_prefix}/*"]
    }
  }
}

resource "aws_iam_role_policy" "logs" {
  for_each = local.roles

  name   = "task-logs"
  role   = aws_iam_role.this[each.key].id
  policy = data.aws_iam_policy_document.logs.json
}
