output "topic_arn" {
  description = "The environment's notification topic (the DAG settings derive the same ARN from env, region and account)."
  value       = aws_sns_topic.this.arn
}

output "key_arn" {
  description = "The topic's KMS key."
  value       = module.topic_key.arn
}
