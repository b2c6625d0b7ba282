# Alarms of one environment on an SNS topic (subscribe on-call to it): the metadata DB (CPU, free storage,
# connections, freeable memory). Airflow's own signals (scheduler heartbeat, failed tasks, pending task
# pods) are Prometheus alerts in the chart (metrics.prometheusRules), next to the metrics they read.

resource "aws_sns_topic" "alarms" {
  name              = "eksflow-${var.env}-alarms"
  kms_master_key_id = "alias/aws/sns"
  tags              = var.tags
}

locals {
  database_alarms = {
    cpu = {
      metric      = "CPUUtilization"
      comparison  = "GreaterThanThreshold"
      threshold   = var.database_cpu_percent
      description = "Metadata DB CPU above ${var.database_cpu_percent}% for 15 minutes: scheduler loops slow down. See docs/runbook.md."
    }
    storage = {
      metric      = "FreeStorageSpace"
      comparison  = "LessThanThreshold"
      threshold   = var.database_free_storage_gb * 1024 * 1024 * 1024
      description = "Metadata DB free storage below ${var.database_free_storage_gb} GiB: storage autoscaling may be at its maximum."
    }
    memory = {
      metric      = "FreeableMemory"
      comparison  = "LessThanThreshold"
      threshold   = var.database_free_memory_mb * 1024 * 1024
      description = "Metadata DB freeable memory below ${var.database_free_memory_mb} MiB: consider a larger instance class."
    }
    connections = {
      metric      = "DatabaseConnections"
      comparison  = "GreaterThanThreshold"
      threshold   = var.database_max_connections
      description = "Metadata DB connections above ${var.database_max_connections}: check for connection leaks or add PgBouncer."
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "database" {
  for_each = local.database_alarms

  alarm_name          = "eksflow-${var.env}-metadata-db-${each.key}"
  alarm_description   = each.value.description
  namespace           = "AWS/RDS"
  metric_name         = each.value.metric
  dimensions          = { DBInstanceIdentifier = var.database_identifier }
  statistic           = "Average"
  period              = 300
  evaluation_periods  = 3
  comparison_operator = each.value.comparison
  threshold           = each.value.threshold
  treat_missing_data  = "missing"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
  tags                = var.tags
}
