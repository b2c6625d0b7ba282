env                 = "dev"
region              = "eu-west-1"
cluster_name        = "eksflow-dev"
vpc_cidr            = "10.10.0.0/16"
availability_zones  = ["eu-west-1a", "eu-west-1b"]
github_repository   = "example/eksflow"
terraform_state     = { bucket = "example-terraform-state", key = "eksflow/dev/terraform.tfstate" }
job_repositories    = { "etl-step" = "example/etl-step", "train" = "example/train", "serve" = "example/serve" }
avp_policy_store_id = "PSEXAMPLEDEV0000000000"
