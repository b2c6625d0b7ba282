# The platform of one environment: network → EKS → data → workloads → IRSA roles → GitHub OIDC → alarms. Names of
# service accounts, the namespace, buckets, the ECR repositories and the workloads come from the role model
# (role-model.json).

locals {
  model   = jsondecode(file("${path.module}/../../role-model.json"))
  buckets = { for purpose, pattern in local.model.bucket_name_patterns : purpose => replace(pattern, "{env}", var.env) }
}

module "network" {
  source = "../../modules/network"

  env                = var.env
  cluster_name       = var.cluster_name
  vpc_cidr           = var.vpc_cidr
  availability_zones = var.availability_zones
  single_nat_gateway = var.env != "prod"

  flow_log_bucket_arn = module.data.bucket_arns["logs"]
}

module "eks" {
  source = "../../modules/eks"

  cluster_name         = var.cluster_name
  subnet_ids           = module.network.private_subnet_ids
  public_access_cidrs  = var.public_access_cidrs
  task_instance_types  = var.task_instance_types
  namespace            = local.model.namespace
  admin_principal_arns = var.admin_principal_arns

  release_kubernetes_group         = local.model.release_kubernetes_group
  deploy_runner_security_group_ids = var.deploy_runner_security_group_ids
  deploy_runner_cidrs              = var.deploy_runner_cidrs

  namespace_admin_principal_arns = { github-release = module.github_oidc.role_arns["release"] }
}

module "data" {
  source = "../../modules/data"

  env                     = var.env
  bucket_names            = local.buckets
  ecr_repository          = local.model.ecr_repository
  vpc_id                  = module.network.vpc_id
  database_subnet_ids     = module.network.private_subnet_ids
  database_client_cidrs   = [module.network.vpc_cidr]
  database_instance_class = var.database_instance_class
  multi_az                = var.multi_az
  deletion_protection     = var.deletion_protection
}

# What the DAGs run: the ECS cluster, each job's repository, family, roles and log group, the SageMaker execution
# role, the job-release queue.
module "workloads" {
  source = "../../modules/workloads"

  env                     = var.env
  role_model              = local.model
  data_bucket_arn         = module.data.bucket_arns["data"]
  ml_artifacts_bucket_arn = module.data.bucket_arns["ml_artifacts"]
  vpc_id                  = module.network.vpc_id
}

module "irsa" {
  source = "../../modules/irsa"

  env                          = var.env
  role_model                   = local.model
  oidc_provider_arn            = module.eks.oidc_provider_arn
  oidc_issuer                  = module.eks.oidc_issuer
  log_bucket_arn               = module.data.bucket_arns["logs"]
  data_bucket_arn              = module.data.bucket_arns["data"]
  ecs_cluster_arns             = [module.workloads.ecs_cluster_arn]
  ecs_task_definition_families = module.workloads.ecs_task_definition_families
  ecs_pass_role_arns           = module.workloads.ecs_pass_role_arns
  ecs_log_group_arns           = module.workloads.ecs_log_group_arns
  sagemaker_execution_role_arn = module.workloads.sagemaker_execution_role_arn
  release_queue_arn            = module.workloads.release_queue_arn
  release_dlq_arn              = module.workloads.release_dlq_arn
  release_queue_kms_key_arn    = module.workloads.release_queue_kms_key_arn
  avp_policy_store_id          = var.avp_policy_store_id
  secrets_backend_enabled      = var.secrets_backend_enabled
}

# DAG notifications: the topic the kit's notifier publishes to (name from the role model), its publishers from irsa.
module "notifications" {
  source = "../../modules/notifications"

  topic_name          = replace(local.model.notification_topic_name_pattern, "{env}", var.env)
  publisher_role_arns = module.irsa.notification_publisher_role_arns
}

module "github_oidc" {
  source = "../../modules/github_oidc"

  env                   = var.env
  github_repository     = var.github_repository
  terraform_state       = var.terraform_state
  ecr_repository_arn    = "arn:aws:ecr:${var.region}:${data.aws_caller_identity.current.account_id}:repository/${local.model.ecr_repository}"
  eks_cluster_arn       = "arn:aws:eks:${var.region}:${data.aws_caller_identity.current.account_id}:cluster/${var.cluster_name}"
  bucket_arns           = module.data.bucket_arns
  db_identifier         = module.data.db_identifier
  db_secret_arn         = module.data.db_secret_arn
  db_kms_key_arn        = module.data.database_kms_key_arn
  housekeeping_tag_keys = [local.model.housekeeping_tags.managed_key, local.model.housekeeping_tags.protected_key]

  # The job repositories' release roles (one per job of the role model).
  jobs                      = module.workloads.jobs
  job_repositories          = var.job_repositories
  job_tag_key               = module.workloads.job_tag_key
  ecs_cluster_arn           = module.workloads.ecs_cluster_arn
  ecs_execution_role_arn    = module.workloads.ecs_execution_role_arn
  release_queue_arn         = module.workloads.release_queue_arn
  release_dlq_arn           = module.workloads.release_dlq_arn
  release_queue_kms_key_arn = module.workloads.release_queue_kms_key_arn
}

module "alarms" {
  source = "../../modules/alarms"

  env                 = var.env
  database_identifier = module.data.db_identifier
}

data "aws_caller_identity" "current" {}
