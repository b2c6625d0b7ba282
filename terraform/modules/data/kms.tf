# One customer-managed key for the metadata DB: storage, Performance Insights and its RDS-managed secret.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_iam_policy_document" "key" {
  # checkov:skip=CKV_AWS_109: key policy: Resource "*" is this key only; the account root delegates to IAM (AWS default key policy)
  # checkov:skip=CKV_AWS_111: key policy: Resource "*" is this key only
  # checkov:skip=CKV_AWS_356: key policy: Resource "*" is this key only
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_kms_key" "database" {
  description             = "${local.name_prefix} metadata DB (storage, Performance Insights, master secret)"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.key.json
  tags                    = var.tags
}
