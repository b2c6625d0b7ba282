variable "env" {
  description = "Environment name (dev, prod): {env} in every name of the role model."
  type        = string
  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.env))
    error_message = "env must be 2-16 lowercase letters, digits or '-', starting with a letter (e.g. dev, prod)."
  }
}

variable "role_model" {
  description = "The platform role model: `eksflow roles --format json` (terraform/role-model.json); its `workloads` and `jobs` name everything here."
  type = object({
    workloads = object({
      ecs_cluster_name_pattern              = string
      ecs_execution_role_name_pattern       = string
      sagemaker_execution_role_name_pattern = string
      release_queue_name_pattern            = string
      release_dlq_name_pattern              = string
      job_tag_key                           = string
    })
    jobs = map(object({
      runs_on                          = string
      container                        = string
      reads                            = list(string)
      writes                           = list(string)
      repository_pattern               = string
      ecs_family_pattern               = string
      task_role_name_pattern           = string
      log_group_pattern                = string
      github_release_role_name_pattern = string
    }))
    # What every SageMaker name of an environment starts with (the kit's names): the execution role's log streams.
    sagemaker_name_prefix_pattern = string
  })
  # {env} in every name: environments sharing an account never share a cluster, role, repository or queue.
  validation {
    condition = alltrue(concat(
      [for key, pattern in var.role_model.workloads : strcontains(pattern, "{env}") if endswith(key, "_pattern")],
      flatten([for job in values(var.role_model.jobs) : [
        for pattern in [job.repository_pattern, job.github_release_role_name_pattern] : strcontains(pattern, "{env}")
      ]]),
    ))
    error_message = "role_model.workloads' and role_model.jobs' name patterns must each contain {env} (one environment's names never another's): regenerate terraform/role-model.json with `make role-model`."
  }
  validation {
    condition = alltrue([
      for job in values(var.role_model.jobs) : contains(["ecs", "sagemaker"], job.runs_on) && (
        job.runs_on != "ecs" || alltrue([for value in [job.container, job.ecs_family_pattern, job.task_role_name_pattern, job.log_group_pattern] : value != ""])
      )
    ])
    error_message = "role_model.jobs: each job runs_on ecs or sagemaker, and an ecs job has a container, an ECS family, a task role and a log group: regenerate terraform/role-model.json with `make role-model`."
  }
  # A prefix is a folder of the data bucket ("raw/"): without the trailing "/", "raw" would also grant "raw-old/".
  validation {
    condition = alltrue([
      for job in values(var.role_model.jobs) : alltrue([
        for prefix in concat(job.reads, job.writes) : can(regex("^([A-Za-z0-9_.=-]+/)+$", prefix))
      ])
    ])
    error_message = "role_model.jobs' reads and writes must be data-bucket prefixes ending in '/' without wildcards (e.g. curated/): regenerate terraform/role-model.json with `make role-model`."
  }
  validation {
    condition     = can(regex("^[A-Za-z0-9_.:/=+@-]{1,128}$", var.role_model.workloads.job_tag_key)) && !startswith(lower(var.role_model.workloads.job_tag_key), "aws:")
    error_message = "role_model.workloads.job_tag_key must be a tag key (1-128 letters, digits or _.:/=+@-, not aws:...): regenerate terraform/role-model.json with `make role-model`."
  }
}

variable "data_bucket_arn" {
  description = "ARN of the data bucket: each ecs job's task role reads its `reads` and writes its `writes` prefixes; the SageMaker execution role reads curated/."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.data_bucket_arn))
    error_message = "data_bucket_arn must be an S3 bucket ARN (arn:aws:s3:::<bucket>)."
  }
}

variable "ml_artifacts_bucket_arn" {
  description = "ARN of the ML artifacts bucket: the SageMaker execution role reads and writes its models/ prefix."
  type        = string
  validation {
    condition     = can(regex("^arn:aws[a-z-]*:s3:::[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.ml_artifacts_bucket_arn))
    error_message = "ml_artifacts_bucket_arn must be an S3 bucket ARN (arn:aws:s3:::<bucket>)."
  }
}

variable "bucket_kms_key_arn" {
  description = "The customer-managed KMS key the data and ML artifacts buckets encrypt with, if any: the job roles then use it through S3 only. null (the data module's default, SSE-KMS with the AWS managed aws/s3 key, which every principal of the account may use through S3): no KMS permission is needed."
  type        = string
  default     = null
  validation {
    condition     = var.bucket_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-f-]+$", coalesce(var.bucket_kms_key_arn, "-")))
    error_message = "bucket_kms_key_arn must be a KMS key ARN (arn:aws:kms:<region>:<account>:key/<id>), or null for the AWS managed aws/s3 key."
  }
}

variable "vpc_id" {
  description = "VPC of the ECS tasks (awsvpc): the tasks' security group lives in it."
  type        = string
}

variable "log_retention_days" {
  description = "Days the ecs jobs' CloudWatch logs are kept."
  type        = number
  default     = 365
  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a CloudWatch Logs retention: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "images_kept" {
  description = "Images each job repository keeps (the newest; older ones expire): a release pins its image by digest, so this many releases stay runnable and can be rolled back to."
  type        = number
  default     = 100
  validation {
    condition     = var.images_kept >= 10 && floor(var.images_kept) == var.images_kept
    error_message = "images_kept must be a whole number of at least 10: fewer would expire images that recent releases' task-definition revisions and models still run."
  }
}

variable "untagged_image_days" {
  description = "Days after which an untagged image expires (a release always pushes with an immutable tag: untagged images are leftovers of aborted pushes)."
  type        = number
  default     = 14
  validation {
    condition     = var.untagged_image_days >= 1 && floor(var.untagged_image_days) == var.untagged_image_days
    error_message = "untagged_image_days must be a whole number of days, at least 1."
  }
}

variable "task_cpu" {
  description = "CPU units of each ecs job's bootstrap task definition (Fargate); a release copies the family's latest revision, so a job's own size set there stays."
  type        = number
  default     = 256
  validation {
    condition     = contains([256, 512, 1024, 2048, 4096, 8192, 16384], var.task_cpu)
    error_message = "task_cpu must be a Fargate CPU size: 256, 512, 1024, 2048, 4096, 8192 or 16384."
  }
}

variable "task_memory" {
  description = "Memory (MiB) of each ecs job's bootstrap task definition (Fargate; must fit task_cpu)."
  type        = number
  default     = 512
  validation {
    condition     = var.task_memory >= 512 && var.task_memory <= 122880 && floor(var.task_memory) == var.task_memory
    error_message = "task_memory must be MiB between 512 and 122880 that Fargate allows with task_cpu."
  }
}

variable "tags" {
  description = "Tags for every resource."
  type        = map(string)
  default     = {}
}
