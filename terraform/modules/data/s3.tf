# Buckets: encrypted, public access blocked, TLS-only, owner-enforced, versioned with lifecycle; the logs
# bucket also takes the VPC flow logs.

resource "aws_s3_bucket" "this" {
  # checkov:skip=CKV_AWS_18: no server access logs; CloudTrail S3 data events are the audit trail where an account needs one
  # checkov:skip=CKV2_AWS_62: nothing consumes bucket events; Airflow Assets carry the pipeline's data events
  # checkov:skip=CKV_AWS_144: single-region platform; cross-region replication is a per-deployment DR decision
  for_each = var.bucket_names

  bucket = each.value
  tags   = merge(var.tags, { "eksflow:purpose" = each.key })
}

resource "aws_s3_bucket_public_access_block" "this" {
  for_each = aws_s3_bucket.this

  bucket                  = each.value.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_ownership_controls" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "aws:kms"
    }
    bucket_key_enabled = true
  }
}

resource "aws_s3_bucket_versioning" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id
  versioning_configuration {
    status = "Enabled"
  }
}

data "aws_iam_policy_document" "tls_only" {
  for_each = aws_s3_bucket.this

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [each.value.arn, "${each.value.arn}/*"]
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

  dynamic "statement" {
    for_each = each.key == "logs" ? ["write", "check"] : []
    content {
      sid       = statement.value == "write" ? "VpcFlowLogsWrite" : "VpcFlowLogsCheckAcl"
      actions   = statement.value == "write" ? ["s3:PutObject"] : ["s3:GetBucketAcl"]
      resources = statement.value == "write" ? ["${each.value.arn}/vpc-flow-logs/AWSLogs/${data.aws_caller_identity.current.account_id}/*"] : [each.value.arn]
      principals {
        type        = "Service"
        identifiers = ["delivery.logs.amazonaws.com"]
      }
      condition {
        test     = "StringEquals"
        variable = "aws:SourceAccount"
        values   = [data.aws_caller_identity.current.account_id]
      }
    }
  }
}

resource "aws_s3_bucket_policy" "tls_only" {
  for_each = aws_s3_bucket.this

  bucket     = each.value.id
  policy     = data.aws_iam_policy_document.tls_only[each.key].json
  depends_on = [aws_s3_bucket_public_access_block.this]
}

# Every bucket: old object versions and abandoned multipart uploads go; task logs also expire.
resource "aws_s3_bucket_lifecycle_configuration" "this" {
  for_each = aws_s3_bucket.this

  bucket = each.value.id
  rule {
    id     = "tidy"
    status = "Enabled"
    filter {}
    dynamic "expiration" {
      for_each = each.key == "logs" ? [var.log_retention_days] : []
      content {
        days = expiration.value
      }
    }
    noncurrent_version_expiration {
      noncurrent_days = each.key == "logs" ? 7 : 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }
}
