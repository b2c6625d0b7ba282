# The queue job releases are announced on (`eksflow job release` sends one message per release; the platform's
# AssetWatcher in the triggerer receives it) and its dead-letter queue: a message received max_receive_count times
# without being deleted (a watcher that keeps failing on it) moves there, as does one the watcher sets aside as
# malformed. Both encrypted with a customer-managed key of their own (who may use it is IAM's say: the release roles
# and the triggerer, through SQS only); both refuse any request that is not TLS.

locals {
  release_retention_seconds = 4 * 24 * 3600
  dlq_retention_seconds     = 14 * 24 * 3600 # SQS's maximum: longer than the queue's, as a dead letter keeps its first enqueue time
  max_receive_count         = 5
}

module "queue_key" {
  source = "../kms_key"

  description = "${local.names.release_queue} (job release announcements and their dead letters)"
  tags        = var.tags
}

resource "aws_sqs_queue" "release_dlq" {
  name                              = local.names.release_dlq
  kms_master_key_id                 = module.queue_key.arn
  kms_data_key_reuse_period_seconds = 300
  message_retention_seconds         = local.dlq_retention_seconds
  tags                              = var.tags
}

resource "aws_sqs_queue" "releases" {
  name                              = local.names.release_queue
  kms_master_key_id                 = module.queue_key.arn
  kms_data_key_reuse_period_seconds = 300
  message_retention_seconds         = local.release_retention_seconds
  receive_wait_time_seconds         = 20
  visibility_timeout_seconds        = 60
  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.release_dlq.arn
    maxReceiveCount     = local.max_receive_count
  })
  tags = var.tags
}

# Only the release queue may move its dead letters into the DLQ.
resource "aws_sqs_queue_redrive_allow_policy" "release_dlq" {
  queue_url = aws_sqs_queue.release_dlq.id
  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [aws_sqs_queue.releases.arn]
  })
}

data "aws_iam_policy_document" "queue_tls_only" {
  for_each = { releases = aws_sqs_queue.releases.arn, release_dlq = aws_sqs_queue.release_dlq.arn }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [each.value]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "tls_only" {
  for_each = { releases = aws_sqs_queue.releases.id, release_dlq = aws_sqs_queue.release_dlq.id }

  queue_url = each.value
  policy    = data.aws_iam_policy_document.queue_tls_only[each.key].json
}
