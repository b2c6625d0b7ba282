env                     = "prod"
region                  = "eu-west-1"
cluster_name            = "eksflow-prod"
vpc_cidr                = "10.20.0.0/16"
availability_zones      = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
github_repository       = "example/eksflow"
terraform_state         = { bucket = "example-terraform-state", key = "eksflow/prod/terraform.tfstate" }
job_repositories        = { "etl-step" = "example/etl-step", "train" = "example/train", "serve" = "example/serve" }
multi_az                = true
deletion_protection     = true
database_instance_class = "db.m6g.large"
avp_policy_store_id     = "PSEXAMPLEPROD000000000"
secrets_backend_enabled = true
# The EKS endpoint is private: the release job's runner inside the VPC (self-hosted runner, CodeBuild) needs 443 to it.
# deploy_runner_security_group_ids = ["sg-0123456789abcdef0"]
