output "bucket_names" {
  description = "Bucket names by purpose (the chart's airflow.remoteLogging.bucket is `logs`)."
  value       = { for key, bucket in aws_s3_bucket.this : key => bucket.bucket }
}

output "bucket_arns" {
  description = "Bucket ARNs by purpose (inputs of the irsa module)."
  value       = { for key, bucket in aws_s3_bucket.this : key => bucket.arn }
}

output "ecr_repository_url" {
  description = "URL of the Airflow image repository."
  value       = aws_ecr_repository.airflow.repository_url
}

output "db_secret_arn" {
  description = "Secrets Manager secret with the metadata DB master credentials (managed by RDS)."
  value       = aws_db_instance.metadata.master_user_secret[0].secret_arn
}

output "db_endpoint" {
  description = "host:port of the metadata DB."
  value       = aws_db_instance.metadata.endpoint
}

output "db_identifier" {
  description = "RDS instance identifier of the metadata DB (alarms)."
  value       = aws_db_instance.metadata.identifier
}

output "database_kms_key_arn" {
  description = "KMS key of the metadata DB, its Performance Insights and its RDS-managed secret."
  value       = module.database_key.arn
}
