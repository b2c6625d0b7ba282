# One repository per job: a job's release pushes its image with an immutable tag and pins it by digest (an ECS
# task-definition revision, a SageMaker model), so an image may be expired only once no release runs it any more.
# ECR cannot know what a revision still runs: the newest images_kept images stay whatever their age (that many
# releases remain runnable and can be rolled back to); untagged images — a push that never put its tag — go after
# untagged_image_days.

resource "aws_ecr_repository" "job" {
  for_each = local.jobs

  name                 = each.value.repository
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }
  encryption_configuration {
    encryption_type = "KMS"
  }
  tags = merge(var.tags, { (local.job_tag_key) = each.key })
}

resource "aws_ecr_lifecycle_policy" "job" {
  for_each = aws_ecr_repository.job

  repository = each.value.name
  policy = jsonencode({
    rules = [
      {
        rulePriority = 1
        description  = "expire untagged images after ${var.untagged_image_days} days"
        selection    = { tagStatus = "untagged", countType = "sinceImagePushed", countUnit = "days", countNumber = var.untagged_image_days }
        action       = { type = "expire" }
      },
      {
        rulePriority = 2
        description  = "keep the newest ${var.images_kept} images (releases pin them by digest)"
        selection    = { tagStatus = "any", countType = "imageCountMoreThan", countNumber = var.images_kept }
        action       = { type = "expire" }
      },
    ]
  })
}
