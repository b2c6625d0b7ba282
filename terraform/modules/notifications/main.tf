# One environment's SNS topic of DAG notifications (the kit's SnsNotifier publishes to it; subscribe DAG owners,
# e.g. an e-mail or a chat integration). Encrypted with a customer-managed key of its own: the publishers the irsa
# module names (every task role, the dag-processor) may use the key only through SNS in this Region.

data "aws_region" "current" {}

data "aws_iam_policy_document" "publishers_use_key" {
  statement {
    sid       = "PublishersEncryptThroughSns"
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = var.publisher_role_arns
    }
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sns.${data.aws_region.current.name}.amazonaws.com"]
    }
  }
}

module "topic_key" {
  source = "../kms_key"

  description         = "${var.topic_name} (DAG notifications)"
  service_policy_json = data.aws_iam_policy_document.publishers_use_key.json
  tags                = var.tags
}

resource "aws_sns_topic" "this" {
  name              = var.topic_name
  kms_master_key_id = module.topic_key.arn
  tags              = var.tags
}
