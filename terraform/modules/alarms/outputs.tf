output "topic_arn" {
  description = "SNS topic the alarms notify (subscribe on-call to it)."
  value       = aws_sns_topic.alarms.arn
}

output "alarm_names" {
  description = "Names of the CloudWatch alarms."
  value       = [for alarm in aws_cloudwatch_metric_alarm.database : alarm.alarm_name]
}
