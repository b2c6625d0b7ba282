# Test fixture: the irsa module applied against the local AWS emulator (tests/test_terraform.py).
terraform {
  required_version = ">= 1.6"
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100, < 7"
    }
  }
}

variable "endpoint" {
  type = string
}

provider "aws" {
  region                      = "eu-west-1"
  access_key                  = "testing"
  secret_key                  = "testing"
  skip_credentials_validation = true
  skip_metadata_api_check     = true
  skip_region_validation      = true
  s3_use_path_style           = true
  endpoints {
    iam = var.endpoint
    sts = var.endpoint
    s3  = var.endpoint
  }
}

locals {
  issuer = "oidc.eks.eu-west-1.amazonaws.com/id/EKSFLOWTEST"
}

resource "aws_iam_openid_connect_provider" "eks" {
  url             = "https://${local.issuer}"
  client_id_list  = ["sts.amazonaws.com"]
  thumbprint_list = ["9e99a48a9960b14926bb7f3b02e22da2b0ab7280"]
}

resource "aws_s3_bucket" "logs" {
  bucket = "eksflow-test-logs"
}

resource "aws_s3_bucket" "data" {
  bucket = "eksflow-test-data"
}

resource "aws_iam_role" "sagemaker_execution" {
  name = "eksflow-test-sagemaker-execution"
  assume_role_policy = jsonencode({
    Version   = "2012-10-17"
    Statement = [{ Effect = "Allow", Action = "sts:AssumeRole", Principal = { Service = "sagemaker.amazonaws.com" } }]
  })
}

module "irsa" {
  source = "../../../terraform/modules/irsa"

  env                          = "test"
  role_model                   = jsondecode(file("${path.module}/../../../terraform/role-model.json"))
  oidc_provider_arn            = aws_iam_openid_connect_provider.eks.arn
  oidc_issuer                  = local.issuer
  log_bucket_arn               = aws_s3_bucket.logs.arn
  data_bucket_arn              = aws_s3_bucket.data.arn
  ecs_cluster_arns             = ["arn:aws:ecs:eu-west-1:123456789012:cluster/eksflow-test-batch"]
  ecs_task_definition_families = ["eksflow-test-etl-step"]
  ecs_pass_role_arns           = ["arn:aws:iam::123456789012:role/eksflow-test-etl-task"]
  sagemaker_execution_role_arn = aws_iam_role.sagemaker_execution.arn
}

output "task_role_arns" {
  value = module.irsa.task_role_arns
}

output "control_plane_role_arns" {
  value = module.irsa.control_plane_role_arns
}

output "trust_subjects" {
  value = module.irsa.trust_subjects
}
