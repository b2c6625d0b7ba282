# VPC flow logs (all traffic) into the platform's log bucket; the data module's bucket policy lets the log
# delivery service write under vpc-flow-logs/ for this account only.

resource "aws_flow_log" "vpc" {
  vpc_id                   = aws_vpc.this.id
  traffic_type             = "ALL"
  log_destination_type     = "s3"
  log_destination          = "${var.flow_log_bucket_arn}/vpc-flow-logs/"
  max_aggregation_interval = 600
  tags                     = merge(var.tags, { Name = "${local.name}-flow-logs" })
}
