# infra: `terraform apply` of this environment's stack (network → EKS → data → IRSA → GitHub OIDC → alarms).
# Scoped by what IAM can scope: IAM roles by the stack's names, OIDC providers by issuer, buckets, the ECR
# repositories, the clusters, the DB and its groups, the log groups, topic, alarms and queues by name; KMS keys by the
# `eksflow:env` tag Terraform puts on everything it makes (default_tags); EC2 deletes by that tag too.
# What stays broad — say so (docs/security.md): creating roles with any inline policy (equivalent to admin,
# guarded by the <env>-infra GitHub environment's reviewers and main-only deployment branch), EC2 network
# creates/modifies (EC2 scopes those per resource type, which one statement cannot follow) and ECS
# RegisterTaskDefinition (no resource type; it can pass only the jobs' roles).

locals {
  rds_arn   = "arn:${local.partition}:rds:${local.region}:${local.account}"
  env_tag   = "eksflow:env"
  log_group = "arn:${local.partition}:logs:${local.region}:${local.account}:log-group:/aws/eks/${local.cluster_name}/cluster"
  # The AWS managed policies the eks module attaches to its cluster and node roles: the only ones infra attaches.
  attachable_policies = [
    for name in ["AmazonEKSClusterPolicy", "AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly", "AmazonSSMManagedInstanceCore"] :
    "arn:${local.partition}:iam::aws:policy/${name}"
  ]
  ec2_network_writes = [
    "ec2:CreateVpc", "ec2:ModifyVpcAttribute", "ec2:CreateSubnet", "ec2:ModifySubnetAttribute",
    "ec2:CreateRouteTable", "ec2:CreateRoute", "ec2:ReplaceRoute", "ec2:DeleteRoute", "ec2:AssociateRouteTable",
    "ec2:DisassociateRouteTable", "ec2:CreateInternetGateway", "ec2:AttachInternetGateway",
    "ec2:DetachInternetGateway", "ec2:AllocateAddress", "ec2:DisassociateAddress", "ec2:CreateNatGateway",
    "ec2:CreateSecurityGroup", "ec2:AuthorizeSecurityGroupIngress", "ec2:AuthorizeSecurityGroupEgress",
    "ec2:RevokeSecurityGroupIngress", "ec2:RevokeSecurityGroupEgress", "ec2:ModifySecurityGroupRules",
    "ec2:UpdateSecurityGroupRuleDescriptionsIngress", "ec2:UpdateSecurityGroupRuleDescriptionsEgress",
    "ec2:CreateVpcEndpoint", "ec2:ModifyVpcEndpoint", "ec2:CreateFlowLogs", "ec2:CreateLaunchTemplate",
    "ec2:CreateLaunchTemplateVersion", "ec2:ModifyLaunchTemplate",
  ]
  # Deletes of what the stack creates: only of resources tagged with this environment.
  ec2_deletes = [
    "ec2:DeleteVpc", "ec2:DeleteSubnet", "ec2:DeleteRouteTable", "ec2:DeleteInternetGateway",
    "ec2:DeleteNatGateway", "ec2:ReleaseAddress", "ec2:DeleteSecurityGroup", "ec2:DeleteVpcEndpoints",
    "ec2:DeleteFlowLogs", "ec2:DeleteLaunchTemplate", "ec2:DeleteLaunchTemplateVersions",
  ]
}

data "aws_iam_policy_document" "infra_writes" {
  statement {
    sid = "ManageStackRoles"
    actions = [
      "iam:CreateRole", "iam:DeleteRole", "iam:UpdateRole", "iam:UpdateRoleDescription", "iam:UpdateAssumeRolePolicy",
      "iam:TagRole", "iam:UntagRole", "iam:PutRolePolicy", "iam:DeleteRolePolicy", "iam:DetachRolePolicy",
    ]
    resources = local.stack_role_arns
  }
  statement {
    sid       = "AttachOnlyTheEksManagedPolicies"
    actions   = ["iam:AttachRolePolicy"]
    resources = local.stack_role_arns
    condition {
      test     = "ArnEquals"
      variable = "iam:PolicyARN"
      values   = local.attachable_policies
    }
  }
  statement {
    sid       = "PassStackRolesToEks"
    actions   = ["iam:PassRole"]
    resources = local.stack_role_arns
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["eks.amazonaws.com"]
    }
  }
  statement {
    sid = "ManageStackOidcProviders"
    actions = [
      "iam:CreateOpenIDConnectProvider", "iam:DeleteOpenIDConnectProvider", "iam:TagOpenIDConnectProvider",
      "iam:UntagOpenIDConnectProvider", "iam:UpdateOpenIDConnectProviderThumbprint",
      "iam:AddClientIDToOpenIDConnectProvider", "iam:RemoveClientIDFromOpenIDConnectProvider",
    ]
    resources = local.oidc_provider_arns
  }
  statement {
    sid       = "ServiceLinkedRolesOfTheStacksServices"
    actions   = ["iam:CreateServiceLinkedRole"]
    resources = ["${local.iam_arn}:role/aws-service-role/*"]
    condition {
      test     = "StringEquals"
      variable = "iam:AWSServiceName"
      values   = ["eks.amazonaws.com", "eks-nodegroup.amazonaws.com", "rds.amazonaws.com"]
    }
  }
  statement {
    sid = "ManageStackBuckets"
    actions = [
      "s3:CreateBucket", "s3:DeleteBucket", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy",
      "s3:PutBucketPublicAccessBlock", "s3:PutBucketOwnershipControls", "s3:PutEncryptionConfiguration",
      "s3:PutBucketVersioning", "s3:PutLifecycleConfiguration", "s3:PutBucketTagging",
    ]
    resources = local.bucket_arns
  }
  statement {
    sid = "ManageImageRepositories"
    actions = [
      "ecr:CreateRepository", "ecr:DeleteRepository", "ecr:PutLifecyclePolicy", "ecr:DeleteLifecyclePolicy",
      "ecr:PutImageScanningConfiguration", "ecr:PutImageTagMutability", "ecr:TagResource", "ecr:UntagResource",
    ]
    resources = concat([var.ecr_repository_arn], local.job_repository_arns)
  }
  statement {
    sid = "ManageTheJobsCluster"
    actions = [
      "ecs:CreateCluster", "ecs:DeleteCluster", "ecs:UpdateCluster", "ecs:UpdateClusterSettings",
      "ecs:PutClusterCapacityProviders", "ecs:TagResource", "ecs:UntagResource",
    ]
    resources = [var.ecs_cluster_arn]
  }
  # RegisterTaskDefinition has no resource type; its tags (default_tags) are authorized as ecs:TagResource on the
  # jobs' families. Terraform never deregisters a revision (skip_destroy).
  statement {
    sid       = "RegisterTheJobsBootstrapRevisions"
    actions   = ["ecs:RegisterTaskDefinition"]
    resources = ["*"]
  }
  statement {
    sid       = "TagTheJobsRevisions"
    actions   = ["ecs:TagResource", "ecs:UntagResource"]
    resources = [for family in local.job_families : "arn:${local.partition}:ecs:${local.region}:${local.account}:task-definition/${family}:*"]
  }
  statement {
    sid       = "PassTheJobsRolesToEcs"
    actions   = ["iam:PassRole"]
    resources = concat([for job in values(var.jobs) : job.task_role_arn if job.task_role_arn != ""], [var.ecs_execution_role_arn])
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
  statement {
    sid       = "ManageTheReleaseQueues"
    actions   = ["sqs:CreateQueue", "sqs:DeleteQueue", "sqs:SetQueueAttributes", "sqs:TagQueue", "sqs:UntagQueue"]
    resources = local.release_queue_arns
  }
  statement {
    sid = "ManageCluster"
    actions = [
      "eks:CreateCluster", "eks:DeleteCluster", "eks:UpdateClusterConfig", "eks:UpdateClusterVersion",
      "eks:TagResource", "eks:UntagResource", "eks:CreateNodegroup", "eks:DeleteNodegroup",
      "eks:UpdateNodegroupConfig", "eks:UpdateNodegroupVersion", "eks:CreateAddon", "eks:DeleteAddon",
      "eks:UpdateAddon", "eks:CreateAccessEntry", "eks:DeleteAccessEntry", "eks:UpdateAccessEntry",
      "eks:AssociateAccessPolicy", "eks:DisassociateAccessPolicy",
    ]
    resources = local.cluster_arns
  }
  statement {
    sid = "MetadataDatabase"
    actions = [
      "rds:CreateDBInstance", "rds:ModifyDBInstance", "rds:DeleteDBInstance", "rds:RebootDBInstance",
      "rds:CreateDBSnapshot", "rds:AddTagsToResource", "rds:RemoveTagsFromResource",
      "rds:CreateDBSubnetGroup", "rds:ModifyDBSubnetGroup", "rds:DeleteDBSubnetGroup",
      "rds:CreateDBParameterGroup", "rds:ModifyDBParameterGroup", "rds:DeleteDBParameterGroup",
      "rds:ResetDBParameterGroup",
    ]
    resources = [
      "${local.rds_arn}:db:${var.db_identifier}",
      "${local.rds_arn}:subgrp:${var.db_identifier}",
      "${local.rds_arn}:pg:${var.db_identifier}-*",
      "${local.rds_arn}:snapshot:${var.db_identifier}-*",
      "${local.rds_arn}:og:default:postgres-*",
    ]
  }
  statement {
    sid       = "DatabaseSecretManagedByRds"
    actions   = ["secretsmanager:CreateSecret", "secretsmanager:TagResource"]
    resources = ["arn:${local.partition}:secretsmanager:${local.region}:${local.account}:secret:rds!db-*"]
  }
  statement {
    sid       = "CreateKeysTaggedWithThisEnv"
    actions   = ["kms:CreateKey"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/${local.env_tag}"
      values   = [var.env]
    }
  }
  # A CreateKey with tags (the provider's default_tags) is also authorized as kms:TagResource, before the key has
  # tags: allowed to set this env's tag on a key that has none or already this env's (never re-tag another env's).
  statement {
    sid       = "TagKeysAtCreateWithThisEnv"
    actions   = ["kms:TagResource"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/${local.env_tag}"
      values   = [var.env]
    }
    condition {
      test     = "StringEqualsIfExists"
      variable = "aws:ResourceTag/${local.env_tag}"
      values   = [var.env]
    }
  }
  statement {
    sid = "KeysTaggedWithThisEnv"
    actions = [
      "kms:PutKeyPolicy", "kms:EnableKeyRotation", "kms:DisableKeyRotation", "kms:ScheduleKeyDeletion",
      "kms:CancelKeyDeletion", "kms:UpdateKeyDescription", "kms:TagResource", "kms:UntagResource",
      "kms:CreateGrant", "kms:DescribeKey", "kms:GenerateDataKey",
    ]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.env_tag}"
      values   = [var.env]
    }
  }
  statement {
    sid       = "NetworkCreatesAndChanges"
    actions   = local.ec2_network_writes
    resources = ["*"]
  }
  statement {
    sid       = "NetworkDeletesOfThisEnvOnly"
    actions   = local.ec2_deletes
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.env_tag}"
      values   = [var.env]
    }
  }
  statement {
    sid       = "TagWhatItCreates"
    actions   = ["ec2:CreateTags"]
    resources = ["*"]
    condition {
      test     = "Null"
      variable = "ec2:CreateAction"
      values   = ["false"]
    }
  }
  statement {
    sid       = "RetagThisEnvsResources"
    actions   = ["ec2:CreateTags", "ec2:DeleteTags"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.env_tag}"
      values   = [var.env]
    }
  }
  statement {
    # Housekeeping acts on what these tags mark (terraform/modules/irsa): the apply identity never sets them.
    sid       = "NeverTheHousekeepingTags"
    effect    = "Deny"
    actions   = ["ec2:CreateTags", "ec2:DeleteTags"]
    resources = ["*"]
    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "aws:TagKeys"
      values   = var.housekeeping_tag_keys
    }
  }
  statement {
    sid = "ControlPlaneAndJobLogGroups"
    actions = [
      "logs:CreateLogGroup", "logs:DeleteLogGroup", "logs:PutRetentionPolicy", "logs:DeleteRetentionPolicy",
      "logs:AssociateKmsKey", "logs:DisassociateKmsKey", "logs:TagResource", "logs:UntagResource",
      "logs:TagLogGroup", "logs:UntagLogGroup",
    ]
    resources = concat([local.log_group, "${local.log_group}:*"], flatten([for arn in local.job_log_group_arns : [arn, "${arn}:*"]]))
  }
  statement {
    sid       = "FlowLogDeliveryToS3"
    actions   = ["logs:CreateLogDelivery", "logs:DeleteLogDelivery"]
    resources = ["*"]
  }
  statement {
    sid = "AlarmTopicAndAlarms"
    actions = [
      "sns:CreateTopic", "sns:DeleteTopic", "sns:SetTopicAttributes", "sns:TagResource", "sns:UntagResource",
      "cloudwatch:PutMetricAlarm", "cloudwatch:DeleteAlarms", "cloudwatch:TagResource", "cloudwatch:UntagResource",
    ]
    resources = [
      "arn:${local.partition}:sns:${local.region}:${local.account}:eksflow-${var.env}-*",
      "arn:${local.partition}:cloudwatch:${local.region}:${local.account}:alarm:eksflow-${var.env}-*",
    ]
  }
}

data "aws_iam_policy_document" "infra" {
  source_policy_documents = [
    data.aws_iam_policy_document.state["infra"].json,
    data.aws_iam_policy_document.reads.json,
    data.aws_iam_policy_document.infra_writes.json,
  ]
}
