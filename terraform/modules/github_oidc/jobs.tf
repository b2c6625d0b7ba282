# The job repositories' release roles: one per job of the role model, trusted only from that job's own GitHub
# repository (job_repositories) in the GitHub environment named after this environment
# (repo:<owner>/<name>:environment:<env>; StringEquals, audience sts.amazonaws.com), and allowed exactly the release
# (`eksflow job release`): push the image to the job's own repository and read it back (the digest), for an ecs job
# register a revision of its own family with that image and pass its own task role and the execution role to ECS, and
# announce the release on the release queue.
#
# What IAM cannot narrow (the Service Authorization Reference for ECS): ecs:RegisterTaskDefinition and
# ecs:DescribeTaskDefinition support no resource type, so neither can be limited to the job's family. Register is held
# to the one condition key it supports, aws:RequestTag: each revision must carry job_tag_key = <job> (the release
# copies the family's tags, which include it), so every revision names the job whose role registered it. A revision
# this role registered in another family could name no task role but this job's (iam:PassRole) and would carry this
# job's tag — what a RunTask condition on aws:ResourceTag, or the kit, can check. Describe reads any family's
# definition (the platform keeps no secret in container definitions).

locals {
  job_subjects = { for name, repository in var.job_repositories : name => "repo:${repository}:environment:${var.env}" }
  ecs_service  = "ecs-tasks.amazonaws.com"
  sqs_service  = "sqs.${local.region}.amazonaws.com"
}

data "aws_iam_policy_document" "job_trust" {
  for_each = var.jobs

  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [local.provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.issuer}:aud"
      values   = [local.audience]
    }
    condition {
      test     = "StringEquals"
      variable = "${local.issuer}:sub"
      values   = [local.job_subjects[each.key]]
    }
  }
}

resource "aws_iam_role" "job" {
  for_each = var.jobs

  name                 = each.value.github_release_role_name
  assume_role_policy   = data.aws_iam_policy_document.job_trust[each.key].json
  max_session_duration = 3600
  tags                 = merge(var.tags, { (var.job_tag_key) = each.key })
}

data "aws_iam_policy_document" "job_release" {
  for_each = var.jobs

  statement {
    sid       = "RegistryLogin"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  statement {
    sid = "PushAndReadItsImages"
    actions = [
      "ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart", "ecr:CompleteLayerUpload",
      "ecr:PutImage", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:DescribeImages",
    ]
    resources = [each.value.repository_arn]
  }
  dynamic "statement" {
    for_each = each.value.runs_on == "ecs" ? [1] : []
    content {
      sid       = "ReadTheFamilyToCopy"
      actions   = ["ecs:DescribeTaskDefinition"]
      resources = ["*"]
    }
  }
  dynamic "statement" {
    for_each = each.value.runs_on == "ecs" ? [1] : []
    content {
      sid       = "RegisterRevisionsTaggedWithItsJob"
      actions   = ["ecs:RegisterTaskDefinition"]
      resources = ["*"]
      condition {
        test     = "StringEquals"
        variable = "aws:RequestTag/${var.job_tag_key}"
        values   = [each.key]
      }
    }
  }
  # A RegisterTaskDefinition with tags is also authorized as ecs:TagResource (tag on create): only there, only so.
  dynamic "statement" {
    for_each = each.value.runs_on == "ecs" ? [1] : []
    content {
      sid       = "TagRevisionsAtRegistration"
      actions   = ["ecs:TagResource"]
      resources = ["*"]
      condition {
        test     = "StringEquals"
        variable = "ecs:CreateAction"
        values   = ["RegisterTaskDefinition"]
      }
      condition {
        test     = "StringEquals"
        variable = "aws:RequestTag/${var.job_tag_key}"
        values   = [each.key]
      }
    }
  }
  dynamic "statement" {
    for_each = each.value.runs_on == "ecs" ? [1] : []
    content {
      sid       = "PassItsTaskRoleAndTheExecutionRoleToEcs"
      actions   = ["iam:PassRole"]
      resources = [each.value.task_role_arn, var.ecs_execution_role_arn]
      condition {
        test     = "StringEquals"
        variable = "iam:PassedToService"
        values   = [local.ecs_service]
      }
    }
  }
  statement {
    sid       = "AnnounceTheRelease"
    actions   = ["sqs:SendMessage"]
    resources = [var.release_queue_arn]
  }
  statement {
    sid       = "ReleaseQueueKeyThroughSqs"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.release_queue_kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [local.sqs_service]
    }
  }
}

resource "aws_iam_role_policy" "job" {
  for_each = var.jobs

  name   = "release"
  role   = aws_iam_role.job[each.key].id
  policy = data.aws_iam_policy_document.job_release[each.key].json
}
