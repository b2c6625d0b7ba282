terraform {
  required_version = ">= 1.9" # variable validations that read the role model
  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.100, < 7"
    }
  }
  # Remote state: S3 with native locking. Configure per environment at init time:
  #   terraform init -backend-config=backend.hcl   (bucket, key, region, use_lockfile = true)
  backend "s3" {}
}

provider "aws" {
  region = var.region
  default_tags {
    tags = { "eksflow:env" = var.env, "eksflow:managed-by" = "terraform" }
  }
}
