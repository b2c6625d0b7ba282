# Least-privilege policies of the roles that call AWS besides writing logs.

# RunTask runs only a revision tagged with its family's job (eksflow.jobs.JOB_TAG_KEY = the job's name): Terraform's
# revisions and the job's release role's (tag on create, modules/github_oidc/jobs.tf). ecs-runner registers and tags
# no revision (its ecs:TagResource is on tasks only), so a revision someone else registered untagged — with a job's
# task role and any image or command — is not runnable under it (docs/security.md). One statement per family: the
# tag value is that family's job (the role model's ecs jobs, local.job_of_family).
data "aws_iam_policy_document" "ecs_runner" {
  lifecycle {
    precondition {
      condition     = alltrue([for family in var.ecs_task_definition_families : contains(keys(local.job_of_family), family)])
      error_message = "ecs_task_definition_families must be the role model's ecs job families (${join(", ", keys(local.job_of_family))}): ecs-runner runs a family's revisions only when tagged with its job, so each family must have one (pass the workloads module's ecs_task_definition_families)."
    }
  }
  dynamic "statement" {
    for_each = var.ecs_task_definition_families
    content {
      sid       = "RunTaggedRevisions${replace(title(replace(lookup(local.job_of_family, statement.value, ""), "/[^A-Za-z0-9]+/", " ")), " ", "")}"
      actions   = ["ecs:RunTask"]
      resources = ["arn:${local.partition}:ecs:${local.region}:${local.account}:task-definition/${statement.value}:*"]
      condition {
        test     = "ArnEquals"
        variable = "ecs:cluster"
        values   = var.ecs_cluster_arns
      }
      condition {
        test     = "StringEquals"
        variable = "aws:ResourceTag/${local.job_tag_key}"
        values   = [lookup(local.job_of_family, statement.value, "")]
      }
    }
  }
  statement {
    sid     = "WatchAndStopTasks"
    actions = ["ecs:DescribeTasks", "ecs:StopTask", "ecs:TagResource"]
    resources = [for cluster in var.ecs_cluster_arns :
    "arn:${local.partition}:ecs:${local.region}:${local.account}:task/${element(split("/", cluster), 1)}/*"]
  }
  statement {
    sid       = "ListTasksForReattach"
    actions   = ["ecs:ListTasks"]
    resources = ["*"]
    condition {
      test     = "ArnEquals"
      variable = "ecs:cluster"
      values   = var.ecs_cluster_arns
    }
  }
  statement {
    sid       = "PassTaskRoles"
    actions   = ["iam:PassRole"]
    resources = var.ecs_pass_role_arns
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["ecs-tasks.amazonaws.com"]
    }
  }
  dynamic "statement" {
    for_each = length(var.ecs_log_group_arns) > 0 ? [1] : []
    content {
      sid       = "ReadTaskLogs"
      actions   = ["logs:GetLogEvents", "logs:DescribeLogStreams"]
      resources = [for group in var.ecs_log_group_arns : "${group}:*"]
    }
  }
}

# SageMaker resources of this environment only (local.sagemaker_name_prefix, e.g. eksflow-dev-): the kit names every
# training job, model, endpoint config and endpoint so; another environment's in the same account are out of reach.
data "aws_iam_policy_document" "sagemaker_runner" {
  statement {
    sid = "ManagePrefixedResources"
    actions = [
      "sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob",
      "sagemaker:CreateModel", "sagemaker:DescribeModel",
      "sagemaker:CreateEndpointConfig", "sagemaker:DescribeEndpointConfig",
      "sagemaker:CreateEndpoint", "sagemaker:UpdateEndpoint", "sagemaker:DescribeEndpoint",
      "sagemaker:InvokeEndpoint", "sagemaker:ListTags",
    ]
    resources = [for kind in ["training-job", "model", "endpoint-config", "endpoint"] :
    "${local.sagemaker_arn}:${kind}/${local.sagemaker_name_prefix}*"]
  }
  # The kit tags the endpoints it creates (CreateEndpoint with Tags, which AWS authorizes as sagemaker:AddTags too,
  # with sagemaker:TaggingAction = CreateEndpoint) with housekeeping's tags only: managed by this environment,
  # protected. Only at the create — a later AddTags cannot hand an existing endpoint to housekeeping — with no other
  # key and no other value — so this role cannot unprotect an endpoint or hand one to another environment — and only
  # on endpoints no other environment manages. It has no sagemaker:DeleteTags.
  statement {
    sid       = "TagEndpointsWithHousekeepingTagsOnly"
    actions   = ["sagemaker:AddTags"]
    resources = ["${local.sagemaker_arn}:endpoint/${local.sagemaker_name_prefix}*"]
    condition {
      test     = "StringEquals"
      variable = "sagemaker:TaggingAction"
      values   = ["CreateEndpoint"]
    }
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "aws:TagKeys"
      values   = [local.managed_tag_key, local.protected_tag_key]
    }
    condition {
      test     = "StringEqualsIfExists"
      variable = "aws:RequestTag/${local.managed_tag_key}"
      values   = [local.managed_tag_value]
    }
    condition {
      test     = "StringEqualsIfExists"
      variable = "aws:RequestTag/${local.protected_tag_key}"
      values   = [local.protected_tag_value]
    }
    condition {
      test     = "StringEqualsIfExists"
      variable = "aws:ResourceTag/${local.managed_tag_key}"
      values   = [local.managed_tag_value]
    }
  }
  statement {
    sid       = "PassExecutionRole"
    actions   = ["iam:PassRole"]
    resources = [var.sagemaker_execution_role_arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["sagemaker.amazonaws.com"]
    }
  }
  statement {
    sid       = "CheckTrainingInput"
    actions   = ["s3:ListBucket"]
    resources = [var.data_bucket_arn]
  }
  statement {
    sid       = "ReadTrainingInput"
    actions   = ["s3:GetObject"]
    resources = ["${var.data_bucket_arn}/curated/*"]
  }
  # Processing and batch transform jobs (kit.sagemaker_processing, kit.sagemaker_batch_transform), created without
  # Tags (so no sagemaker:AddTags on them). A processing job passes the execution role (PassExecutionRole); SageMaker
  # reads and writes their S3 data with that role, so no S3 right here.
  statement {
    sid = "RunPrefixedProcessingAndTransformJobs"
    actions = [
      "sagemaker:CreateProcessingJob", "sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob",
      "sagemaker:DescribeTransformJob", "sagemaker:StopTransformJob",
    ]
    resources = [for kind in ["processing-job", "transform-job"] :
    "${local.sagemaker_arn}:${kind}/${local.sagemaker_name_prefix}*"]
  }
  # A transform job runs one of this environment's models only (AWS authorizes CreateTransformJob on the job; the
  # model is the condition key sagemaker:ModelArn).
  statement {
    sid       = "TransformWithThisEnvsModelsOnly"
    actions   = ["sagemaker:CreateTransformJob"]
    resources = ["${local.sagemaker_arn}:transform-job/${local.sagemaker_name_prefix}*"]
    condition {
      test     = "ArnLike"
      variable = "sagemaker:ModelArn"
      values   = ["${local.sagemaker_arn}:model/${local.sagemaker_name_prefix}*"]
    }
  }
}

data "aws_iam_policy_document" "ec2_ops" {
  statement {
    sid       = "Discover"
    actions   = ["ec2:DescribeInstances", "cloudwatch:GetMetricStatistics", "sagemaker:ListEndpoints"]
    resources = ["*"]
  }
  # Acting needs the managed tag naming this environment and no protected tag (StringNotEqualsIgnoreCase also holds
  # when the tag is absent): the kit's own re-check, in IAM.
  statement {
    sid       = "StopOrTerminateThisEnvsUnprotectedInstancesOnly"
    actions   = ["ec2:StopInstances", "ec2:TerminateInstances"]
    resources = ["arn:${local.partition}:ec2:${local.region}:${local.account}:instance/*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.managed_tag_key}"
      values   = [local.managed_tag_value]
    }
    condition {
      test     = "StringNotEqualsIgnoreCase"
      variable = "aws:ResourceTag/${local.protected_tag_key}"
      values   = [local.protected_tag_value]
    }
  }
  statement {
    sid       = "InspectEndpoints"
    actions   = ["sagemaker:DescribeEndpoint", "sagemaker:ListTags"]
    resources = ["${local.sagemaker_arn}:endpoint/${local.sagemaker_name_prefix}*"]
  }
  statement {
    sid       = "DeleteThisEnvsUnprotectedEndpointsOnly"
    actions   = ["sagemaker:DeleteEndpoint"]
    resources = ["${local.sagemaker_arn}:endpoint/${local.sagemaker_name_prefix}*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.managed_tag_key}"
      values   = [local.managed_tag_value]
    }
    condition {
      test     = "StringNotEqualsIgnoreCase"
      variable = "aws:ResourceTag/${local.protected_tag_key}"
      values   = [local.protected_tag_value]
    }
  }
  statement {
    sid       = "WriteReports"
    actions   = ["s3:PutObject"]
    resources = ["${var.data_bucket_arn}/reports/housekeeping/*"]
  }
}

# The triggerer runs every deferred wait, so it may read the status of what tasks start; and the AssetWatchers (Airflow
# runs every trigger in the triggerer), whose job-release watcher receives, deletes and keeps invisible the messages
# of the release queue, reads its attributes and sets a malformed message aside in the DLQ — nothing more.
data "aws_iam_policy_document" "triggerer" {
  statement {
    sid     = "DescribeEcsTasks"
    actions = ["ecs:DescribeTasks"]
    resources = [for cluster in var.ecs_cluster_arns :
    "arn:${local.partition}:ecs:${local.region}:${local.account}:task/${element(split("/", cluster), 1)}/*"]
  }
  statement {
    sid = "DescribeSageMakerJobs"
    actions = ["sagemaker:DescribeTrainingJob", "sagemaker:DescribeEndpoint",
    "sagemaker:DescribeTransformJob", "sagemaker:DescribeProcessingJob"]
    resources = ["${local.sagemaker_arn}:*/${local.sagemaker_name_prefix}*"]
  }
  statement {
    sid       = "DescribeInstances"
    actions   = ["ec2:DescribeInstances", "ec2:DescribeInstanceStatus"]
    resources = ["*"]
  }
  statement {
    sid       = "WatchJobReleases"
    actions   = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueAttributes"]
    resources = [var.release_queue_arn]
  }
  statement {
    sid       = "SetAsideMalformedReleases"
    actions   = ["sqs:SendMessage"]
    resources = [var.release_dlq_arn]
  }
  dynamic "statement" {
    for_each = var.release_queue_kms_key_arn == null ? [] : [var.release_queue_kms_key_arn]
    content {
      sid       = "ReleaseQueueKeyThroughSqs"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["sqs.${local.region}.amazonaws.com"]
      }
    }
  }
}

# The AWS auth manager in the api-server: GetSchema at start-up, (Batch)IsAuthorized per request, on its
# policy store only.
data "aws_iam_policy_document" "api_server" {
  statement {
    sid       = "AuthorizeWithVerifiedPermissions"
    actions   = ["verifiedpermissions:GetSchema", "verifiedpermissions:IsAuthorized", "verifiedpermissions:BatchIsAuthorized"]
    resources = ["arn:${local.partition}:verifiedpermissions::${local.account}:policy-store/${var.avp_policy_store_id}"]
  }
}

# Airflow's Secrets Manager backend (the chart's airflow.secretsBackend): Airflow 3.3.2 consults the [secrets]
# backend in every process the chart runs — api-server (execution API connections/variables), scheduler (DagRun
# deadlines from Variables), dag-processor (manager and parsing children), triggerer (supervisor and triggers) — and,
# with [workers] secrets_backend unset, in every task pod (task runner lookups, the supervisor's remote-log
# connection). The backend calls only GetSecretValue, on <prefix>/<id> (team-scoped: <prefix>/<team>--<id>), with
# this environment's prefixes only: environments sharing an account never read each other's Connections/Variables.
# Secrets encrypted with the default aws/secretsmanager key need no kms permission; a customer key would.
data "aws_iam_policy_document" "secrets_backend" {
  statement {
    sid     = "ReadAirflowConnectionsAndVariables"
    actions = ["secretsmanager:GetSecretValue"]
    resources = [for prefix in values(local.secrets_backend_prefixes) :
    "arn:${local.partition}:secretsmanager:${local.region}:${local.account}:secret:${prefix}/*"]
  }
}

resource "aws_iam_role_policy" "secrets_backend" {
  for_each = var.secrets_backend_enabled ? local.roles : {}

  name   = "secrets-backend"
  role   = aws_iam_role.this[each.key].id
  policy = data.aws_iam_policy_document.secrets_backend.json
}

locals {
  role_policies = merge({
    "task-ecs-runner"       = data.aws_iam_policy_document.ecs_runner.json
    "task-sagemaker-runner" = data.aws_iam_policy_document.sagemaker_runner.json
    "task-ec2-ops"          = data.aws_iam_policy_document.ec2_ops.json
    "triggerer"             = data.aws_iam_policy_document.triggerer.json
  }, var.avp_policy_store_id == "" ? {} : { "api-server" = data.aws_iam_policy_document.api_server.json })
}

resource "aws_iam_role_policy" "job" {
  for_each = { for key, policy in local.role_policies : key => policy if contains(keys(local.roles), key) }

  name   = "job"
  role   = aws_iam_role.this[each.key].id
  policy = each.value
}

# DAG notifications (the kit's SnsNotifier): Airflow 3.3.2 runs a task's on_failure/on_success callbacks in its
# worker (task_runner.py finalize), under the task's role; the failure callbacks of a task lost outside its pod
# (heartbeat timeout, stuck in queued, an executor-reported failure) and DAG-level callbacks run in the
# dag-processor (dag_processing/processor.py). So every task role and the dag-processor may publish to this
# environment's topic — sns:Publish only, on that one topic (the role model's pattern with var.env; the
# notifications module makes it and lets these roles use its key through SNS).
locals {
  notification_topic_arn = "arn:${local.partition}:sns:${local.region}:${local.account}:${replace(var.role_model.notification_topic_name_pattern, "{env}", var.env)}"
  notification_publishers = merge(
    { for key, role in local.task_roles : key => role },
    { for key, role in local.control_plane_roles : key => role if key == "dag-processor" },
  )
}

data "aws_iam_policy_document" "notify" {
  statement {
    sid       = "PublishDagNotifications"
    actions   = ["sns:Publish"]
    resources = [local.notification_topic_arn]
  }
}

resource "aws_iam_role_policy" "notify" {
  for_each = local.notification_publishers

  name   = "notify"
  role   = aws_iam_role.this[each.key].id
  policy = data.aws_iam_policy_document.notify.json
}

# What the runner roles need to run what the job repositories released (the kit: ecs_run_task(job=..., image=...),
# released_image; eksflow/revisions.py, eksflow/released.py), in a policy of its own ("released") beside "job".
# Names from the role model's jobs and workloads with var.env.
locals {
  ecs_jobs       = { for name, job in var.role_model.jobs : name => job if job.runs_on == "ecs" }
  sagemaker_jobs = { for name, job in var.role_model.jobs : name => job if job.runs_on == "sagemaker" }

  # The tag a runnable revision carries, and each ecs job's family -> the job (its value there).
  job_tag_key   = var.role_model.workloads.job_tag_key
  job_of_family = { for name, job in local.ecs_jobs : replace(job.ecs_family_pattern, "{env}", var.env) => name }
  sagemaker_job_repository_arns = [for job in values(local.sagemaker_jobs) :
  "arn:${local.partition}:ecr:${local.region}:${local.account}:repository/${replace(job.repository_pattern, "{env}", var.env)}"]
}

data "aws_iam_policy_document" "ecs_runner_released" {
  # checkov:skip=CKV_AWS_355: ecs:DescribeTaskDefinition and ecs:ListTaskDefinitions support no resource-level permissions: "*" is required
  #
  # Read-only: ecs-runner registers no revision (the releases and Terraform do, tagged with the job; RunTask runs only
  # those, the "job" policy). ecs_run_task(job=...) finds the revision to run among the family's ACTIVE revisions
  # tagged with the job: the one whose container runs image=, else the newest registered before the run started.
  # ecs:DescribeTaskDefinition (tags included) and ecs:ListTaskDefinitions have no resource type and no condition key
  # (Service Authorization Reference): "*" is the only resource IAM takes; they reveal definitions, change nothing.
  statement {
    sid       = "ReadTaskDefinitions"
    actions   = ["ecs:DescribeTaskDefinition"]
    resources = ["*"]
  }
  statement {
    sid       = "ListRevisionsToPinARun"
    actions   = ["ecs:ListTaskDefinitions"]
    resources = ["*"]
  }
}

# The released image of a SageMaker job: the newest git-SHA tag of its repository (metadata only: no pull, no push).
data "aws_iam_policy_document" "sagemaker_runner_released" {
  statement {
    sid       = "FindReleasedJobImages"
    actions   = ["ecr:DescribeImages"]
    resources = local.sagemaker_job_repository_arns
  }
}

locals {
  released_policies = {
    "task-ecs-runner"       = data.aws_iam_policy_document.ecs_runner_released.json
    "task-sagemaker-runner" = data.aws_iam_policy_document.sagemaker_runner_released.json
  }
}

resource "aws_iam_role_policy" "released" {
  for_each = { for key, policy in local.released_policies : key => policy if contains(keys(local.roles), key) }

  name   = "released"
  role   = aws_iam_role.this[each.key].id
  policy = each.value
}
