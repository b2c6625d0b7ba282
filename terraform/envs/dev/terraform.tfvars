env                          = "dev"
region                       = "eu-west-1"
cluster_name                 = "eksflow-dev"
vpc_cidr                     = "10.10.0.0/16"
availability_zones           = ["eu-west-1a", "eu-west-1b"]
github_repository            = "example/eksflow"
terraform_state              = { bucket = "example-terraform-state", key = "eksflow/dev/terraform.tfstate" }
ecs_cluster_arns             = ["arn:aws:ecs:eu-west-1:123456789012:cluster/eksflow-dev-batch"]
ecs_task_definition_families = ["eksflow-dev-etl-step"]
ecs_pass_role_arns           = ["arn:aws:iam::123456789012:role/eksflow-dev-etl-task"]
sagemaker_execution_role_arn = "arn:aws:iam::123456789012:role/eksflow-dev-sagemaker-execution"
avp_policy_store_id          = "PSEXAMPLEDEV0000000000"
