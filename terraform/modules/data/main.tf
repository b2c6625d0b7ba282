# The platform's data stores, one file each: s3.tf (buckets), ecr.tf (image repository), rds.tf
# (metadata DB).

locals {
  name_prefix = "eksflow-${var.env}"
}

data "aws_caller_identity" "current" {}
