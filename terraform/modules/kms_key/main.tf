# A rotating customer-managed KMS key whose policy lets the account administer it (IAM policies then decide
# who may use it — the AWS default) plus whatever service statements the caller adds.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_iam_policy_document" "this" {
  # checkov:skip=CKV_AWS_109: key policy: Resource "*" is this key only; the account root delegates to IAM (AWS default key policy)
  # checkov:skip=CKV_AWS_111: key policy: Resource "*" is this key only
  # checkov:skip=CKV_AWS_356: key policy: Resource "*" is this key only
  source_policy_documents = var.service_policy_json == null ? [] : [var.service_policy_json]
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

resource "aws_kms_key" "this" {
  description             = var.description
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.this.json
  tags                    = var.tags
}
