# GitHub Actions → AWS without long-lived keys: the account's GitHub OIDC provider and one role per CI stage,
# each trusted only from its own `sub` claim and allowed only what its job calls:
#   push      ← workflows on main            (image.yml: build and push main's image)
#   image-tag ← GitHub environment image-release (protected v* tags: add a version tag to main's image)
#   plan      ← GitHub environment <env>-plan    (terraform init + plan; reads, writes only the state lock)
#   infra     ← GitHub environment <env>-infra   (terraform apply of this environment's stack)
#   release   ← GitHub environment <env>         (make deploy STAGE=release)
# A job that names a GitHub environment gets `sub` = repo:<owner>/<name>:environment:<environment>; the
# environments' reviewers and deployment-branch/tag policies are the gate (terraform/README.md).

locals {
  issuer   = "token.actions.githubusercontent.com"
  audience = "sts.amazonaws.com"
  repo     = "repo:${var.github_repository}"
  # Stage -> the one `sub` its role trusts (StringEquals: no wildcard, no other ref).
  subjects = {
    push        = "${local.repo}:ref:refs/heads/main"
    "image-tag" = "${local.repo}:environment:${var.image_release_environment}"
    plan        = "${local.repo}:environment:${var.env}-plan"
    infra       = "${local.repo}:environment:${var.env}-infra"
    release     = "${local.repo}:environment:${var.env}"
  }
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
data "aws_region" "current" {}

locals {
  partition    = data.aws_partition.current.partition
  account      = data.aws_caller_identity.current.account_id
  region       = data.aws_region.current.name
  provider_arn = var.create_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : "arn:${local.partition}:iam::${local.account}:oidc-provider/${local.issuer}"
}

data "aws_iam_policy_document" "trust" {
  for_each = local.subjects

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
      test     = "StringEquals"
      variable = "${local.issuer}:sub"
      values   = [each.value]
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

resource "aws_iam_role_policy" "this" {
  for_each = {
    push        = data.aws_iam_policy_document.push.json
    "image-tag" = data.aws_iam_policy_document.image_tag.json
    plan        = data.aws_iam_policy_document.plan.json
    infra       = data.aws_iam_policy_document.infra.json
    release     = data.aws_iam_policy_document.release.json
  }

  name   = "stage"
  role   = aws_iam_role.this[each.key].id
  policy = each.value
}
