# The environment's Terraform state (S3 backend, native locking: `use_lockfile = true` writes `<key>.tflock`
# next to the state while an operation holds the lock). plan and release read the state; plan takes the lock
# (writes and deletes only the lock object); infra also writes the state. Nobody lists past the state's key.

locals {
  state_bucket_arn = "arn:${local.partition}:s3:::${var.terraform_state.bucket}"
  state_arn        = "${local.state_bucket_arn}/${var.terraform_state.key}"
  lock_arn         = "${local.state_arn}.tflock"
  state_kms_keys   = var.terraform_state.kms_key_arn == null ? [] : [var.terraform_state.kms_key_arn]
}

# stage -> what it does with the state: read (init + output), lock (plan), write (apply).
data "aws_iam_policy_document" "state" {
  for_each = { plan = "lock", infra = "write", release = "read" }

  statement {
    sid       = "ListOnlyTheStateKey"
    actions   = ["s3:ListBucket"]
    resources = [local.state_bucket_arn]
    condition {
      test     = "StringEquals"
      variable = "s3:prefix"
      values   = [var.terraform_state.key]
    }
  }
  statement {
    sid       = "ReadTheState"
    actions   = ["s3:GetObject"]
    resources = each.value == "read" ? [local.state_arn] : [local.state_arn, local.lock_arn]
  }
  dynamic "statement" {
    for_each = each.value == "read" ? [] : ["lock"]
    content {
      sid       = "TakeAndReleaseTheLock"
      actions   = ["s3:PutObject", "s3:DeleteObject"]
      resources = [local.lock_arn]
    }
  }
  dynamic "statement" {
    for_each = each.value == "write" ? ["state"] : []
    content {
      sid       = "WriteTheState"
      actions   = ["s3:PutObject"]
      resources = [local.state_arn]
    }
  }
  dynamic "statement" {
    for_each = local.state_kms_keys
    content {
      sid       = "StateKeyThroughS3"
      actions   = each.value == "read" ? ["kms:Decrypt"] : ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${local.region}.amazonaws.com"]
      }
    }
  }
}
