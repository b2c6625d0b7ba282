# One customer-managed key for the metadata DB: storage, Performance Insights and its RDS-managed secret.

module "database_key" {
  source = "../kms_key"

  description = "${local.name_prefix} metadata DB (storage, Performance Insights, master secret)"
  tags        = var.tags
}

moved {
  from = aws_kms_key.database
  to   = module.database_key.aws_kms_key.this
}
