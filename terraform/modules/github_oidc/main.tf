# GitHub Actions → AWS without long-lived keys: the account's GitHub OIDC provider, a role that may push
# the Airflow image (only from the given branches), and a separate deploy role (only from jobs of the
# given GitHub environment, which carries the required approvals).

locals {
  issuer    = "token.actions.githubusercontent.com"
  audience  = "sts.amazonaws.com"
  push_subs = [for branch in var.push_branches : "repo:${var.github_repository}:ref:refs/heads/${branch}"]
  push_tags = "repo:${var.github_repository}:ref:refs/tags/v*"
  deploy    = "repo:${var.github_repository}:environment:${var.deploy_environment}"
}

resource "aws_iam_openid_connect_provider" "github" {
  count = var.create_oidc_provider ? 1 : 0

  url             = "https://${local.issuer}"
  client_id_list  = [local.audience]
  thumbprint_list = ["6938fd4d98bab03faadb97b34396831e3780aea1"]
  tags            = var.tags
}

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  provider_arn = var.create_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:oidc-provider/${local.issuer}"
}

data "aws_iam_policy_document" "trust" {
  for_each = { push = concat(local.push_subs, [local.push_tags]), deploy = [local.deploy] }

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [local.provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.issuer}:aud"
      values   = [local.audience]
    }
    condition {
      test     = each.key == "push" ? "StringLike" : "StringEquals"
      variable = "${local.issuer}:sub"
      values   = each.value
    }
  }
}

resource "aws_iam_role" "this" {
  for_each = data.aws_iam_policy_document.trust

  name                 = "eksflow-${var.env}-github-${each.key}"
  assume_role_policy   = each.value.json
  max_session_duration = 3600
  tags                 = var.tags
}

data "aws_iam_policy_document" "push" {
  statement {
    sid       = "Login"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  statement {
    sid = "PushAirflowImage"
    actions = [
      "ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
      "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchGetImage", "ecr:DescribeImages",
      "ecr:DescribeImageScanFindings",
    ]
    resources = [var.ecr_repository_arn]
  }
}

data "aws_iam_policy_document" "deploy" {
  statement {
    sid       = "DescribeCluster"
    actions   = ["eks:DescribeCluster"]
    resources = [var.eks_cluster_arn]
  }
}

resource "aws_iam_role_policy" "push" {
  name   = "push-airflow-image"
  role   = aws_iam_role.this["push"].id
  policy = data.aws_iam_policy_document.push.json
}

resource "aws_iam_role_policy" "deploy" {
  name   = "deploy"
  role   = aws_iam_role.this["deploy"].id
  policy = data.aws_iam_policy_document.deploy.json
}
