# The metadata database: PostgreSQL, private, encrypted, master password managed by RDS in Secrets
# Manager (never in state or outputs in plain text), Multi-AZ and deletion protection in prod.

resource "aws_db_subnet_group" "metadata" {
  name       = "${local.name_prefix}-metadata"
  subnet_ids = var.database_subnet_ids
  tags       = var.tags
}

resource "aws_security_group" "metadata" {
  name        = "${local.name_prefix}-metadata-db"
  description = "PostgreSQL of the Airflow metadata DB, from the EKS subnets only"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_ingress_rule" "postgres" {
  for_each = toset(var.database_client_cidrs)

  security_group_id = aws_security_group.metadata.id
  description       = "PostgreSQL from ${each.value}"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
}

resource "aws_db_parameter_group" "metadata" {
  name   = "${local.name_prefix}-metadata-pg16"
  family = "postgres16"
  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }
  parameter {
    name  = "log_min_duration_statement"
    value = "2000"
  }
  tags = var.tags
}

resource "aws_db_instance" "metadata" {
  # checkov:skip=CKV_AWS_157: Multi-AZ is the multi_az input: true in prod (envs/prod/terraform.tfvars, tested), off in dev for cost
  # checkov:skip=CKV_AWS_293: deletion protection is the deletion_protection input: true in prod (tested), off in dev so it can be torn down
  # checkov:skip=CKV_AWS_118: Performance Insights and CloudWatch RDS metrics cover the metadata DB; enhanced OS monitoring needs its own role, add it when OS metrics are wanted
  identifier                          = "${local.name_prefix}-metadata"
  engine                              = "postgres"
  engine_version                      = "16"
  instance_class                      = var.database_instance_class
  allocated_storage                   = var.database_allocated_storage_gb
  max_allocated_storage               = var.database_allocated_storage_gb * 5
  storage_type                        = "gp3"
  storage_encrypted                   = true
  kms_key_id                          = module.database_key.arn
  db_name                             = "airflow"
  username                            = "airflow"
  manage_master_user_password         = true
  master_user_secret_kms_key_id       = module.database_key.arn
  db_subnet_group_name                = aws_db_subnet_group.metadata.name
  vpc_security_group_ids              = [aws_security_group.metadata.id]
  parameter_group_name                = aws_db_parameter_group.metadata.name
  publicly_accessible                 = false
  multi_az                            = var.multi_az
  deletion_protection                 = var.deletion_protection
  backup_retention_period             = 14
  copy_tags_to_snapshot               = true
  auto_minor_version_upgrade          = true
  iam_database_authentication_enabled = true
  performance_insights_enabled        = true
  performance_insights_kms_key_id     = module.database_key.arn
  monitoring_interval                 = 0
  enabled_cloudwatch_logs_exports     = ["postgresql", "upgrade"]
  skip_final_snapshot                 = !var.deletion_protection
  final_snapshot_identifier           = var.deletion_protection ? "${local.name_prefix}-metadata-final" : null
  apply_immediately                   = !var.deletion_protection
  tags                                = var.tags
}
