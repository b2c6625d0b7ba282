output "arn" {
  description = "Key ARN."
  value       = aws_kms_key.this.arn
}
