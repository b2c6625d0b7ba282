# plan: `terraform init` + `terraform plan` of this environment, i.e. the state (read, and its lock object) and
# the read calls the AWS provider makes to refresh every resource of the stack. Metadata only: no object of any
# bucket but the state, no secret value, no decryption but the state's, no log events, no image layers, and
# nothing that writes. Reads are scoped by name where the ARN is known before the resources exist (IAM roles,
# buckets, the ECR repositories, the clusters, the queues); EC2's Describe* calls have no resource-level permissions.

locals {
  cluster_name = element(split("/", var.eks_cluster_arn), 1)
  iam_arn      = "arn:${local.partition}:iam::${local.account}"
  # Every IAM role of the stack: the environment's prefix, and the eks module's two roles named after the cluster.
  stack_role_arns = [
    "${local.iam_arn}:role/eksflow-${var.env}-*",
    "${local.iam_arn}:role/${local.cluster_name}-cluster",
    "${local.iam_arn}:role/${local.cluster_name}-node",
  ]
  # The cluster's IRSA provider (its issuer ID is known only after the cluster) and GitHub's.
  oidc_provider_arns = [
    "${local.iam_arn}:oidc-provider/oidc.eks.${local.region}.amazonaws.com/id/*",
    "${local.iam_arn}:oidc-provider/${local.issuer}",
  ]
  bucket_arns = sort(values(var.bucket_arns))
  # The workloads (modules/workloads): the jobs' repositories, log groups and families, the release queues.
  job_repository_arns = [for job in values(var.jobs) : job.repository_arn]
  job_log_group_arns  = [for job in values(var.jobs) : job.log_group_arn if job.log_group_arn != ""]
  job_families        = [for job in values(var.jobs) : job.ecs_family if job.ecs_family != ""]
  release_queue_arns  = [var.release_queue_arn, var.release_dlq_arn]
  # What the AWS provider reads of a bucket (HeadBucket is authorized as s3:ListBucket: key names, not objects).
  bucket_reads = [
    "s3:ListBucket", "s3:GetBucketPolicy", "s3:GetBucketAcl", "s3:GetBucketCORS", "s3:GetBucketWebsite",
    "s3:GetBucketVersioning", "s3:GetAccelerateConfiguration", "s3:GetBucketRequestPayment", "s3:GetBucketLogging",
    "s3:GetLifecycleConfiguration", "s3:GetReplicationConfiguration", "s3:GetEncryptionConfiguration",
    "s3:GetBucketObjectLockConfiguration", "s3:GetBucketTagging", "s3:GetBucketPublicAccessBlock",
    "s3:GetBucketOwnershipControls", "s3:GetBucketPolicyStatus", "s3:GetBucketLocation",
  ]
  iam_reads = [
    "iam:GetRole", "iam:ListRolePolicies", "iam:GetRolePolicy", "iam:ListAttachedRolePolicies",
    "iam:ListInstanceProfilesForRole",
  ]
  ecr_reads = [
    "ecr:DescribeRepositories", "ecr:GetLifecyclePolicy", "ecr:GetRepositoryPolicy", "ecr:ListTagsForResource",
  ]
  eks_reads = [
    "eks:DescribeCluster", "eks:ListNodegroups", "eks:ListAddons", "eks:ListAccessEntries", "eks:DescribeNodegroup",
    "eks:DescribeAddon", "eks:DescribeAccessEntry", "eks:ListAssociatedAccessPolicies",
  ]
  # The cluster and its node groups, add-ons and access entries (their ARNs end in IDs).
  cluster_arns = [
    var.eks_cluster_arn,
    "arn:${local.partition}:eks:${local.region}:${local.account}:nodegroup/${local.cluster_name}/*",
    "arn:${local.partition}:eks:${local.region}:${local.account}:addon/${local.cluster_name}/*",
    "arn:${local.partition}:eks:${local.region}:${local.account}:access-entry/${local.cluster_name}/*",
  ]
  # Read-only metadata calls without a usable resource scope (EC2 Describe*, add-on versions) or of resources whose
  # ARNs carry IDs unknown before apply (KMS keys).
  metadata_reads = [
    "ec2:DescribeAddresses", "ec2:DescribeAddressesAttribute", "ec2:DescribeAvailabilityZones",
    "ec2:DescribeFlowLogs", "ec2:DescribeInternetGateways", "ec2:DescribeLaunchTemplateVersions",
    "ec2:DescribeLaunchTemplates", "ec2:DescribeNatGateways", "ec2:DescribeNetworkAcls",
    "ec2:DescribeNetworkInterfaces", "ec2:DescribePrefixLists", "ec2:DescribeRouteTables",
    "ec2:DescribeSecurityGroupRules", "ec2:DescribeSecurityGroups", "ec2:DescribeSubnets", "ec2:DescribeTags",
    "ec2:DescribeVpcAttribute", "ec2:DescribeVpcEndpoints", "ec2:DescribeVpcs",
    "eks:DescribeAddonVersions",
    "rds:DescribeDBInstances", "rds:DescribeDBParameterGroups", "rds:DescribeDBParameters",
    "rds:DescribeDBSubnetGroups", "rds:ListTagsForResource",
    "kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags",
    "logs:DescribeLogGroups", "logs:ListTagsForResource", "logs:ListTagsLogGroup",
    "sns:GetTopicAttributes", "sns:ListTagsForResource",
    "cloudwatch:DescribeAlarms", "cloudwatch:ListTagsForResource",
    "ecs:DescribeTaskDefinition", # no resource type
  ]
  sqs_reads = ["sqs:GetQueueAttributes", "sqs:ListQueueTags"]
}

data "aws_iam_policy_document" "reads" {
  # checkov:skip=CKV_AWS_356: metadata reads (EC2 Describe*, add-on versions, KMS/RDS/logs/SNS/CloudWatch describes) without a resource scope known before apply; no data, no secret
  statement {
    sid       = "StackRoles"
    actions   = local.iam_reads
    resources = local.stack_role_arns
  }
  statement {
    sid       = "StackOidcProviders"
    actions   = ["iam:GetOpenIDConnectProvider"]
    resources = local.oidc_provider_arns
  }
  statement {
    sid       = "StackBuckets"
    actions   = local.bucket_reads
    resources = local.bucket_arns
  }
  statement {
    sid       = "ImageRepositories"
    actions   = local.ecr_reads
    resources = concat([var.ecr_repository_arn], local.job_repository_arns)
  }
  statement {
    sid       = "JobsCluster"
    actions   = ["ecs:DescribeClusters"]
    resources = [var.ecs_cluster_arn]
  }
  statement {
    sid       = "ReleaseQueues"
    actions   = local.sqs_reads
    resources = local.release_queue_arns
  }
  statement {
    sid       = "Cluster"
    actions   = local.eks_reads
    resources = local.cluster_arns
  }
  statement {
    sid       = "Metadata"
    actions   = local.metadata_reads
    resources = ["*"]
  }
}

data "aws_iam_policy_document" "plan" {
  source_policy_documents = [data.aws_iam_policy_document.state["plan"].json, data.aws_iam_policy_document.reads.json]
}
