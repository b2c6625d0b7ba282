# The ECS cluster every ecs job runs on (Fargate, Container Insights), the tasks' security group, and each ecs job's
# task-definition family.

resource "aws_ecs_cluster" "this" {
  name = local.names.cluster

  setting {
    name  = "containerInsights"
    value = "enabled"
  }
  tags = var.tags
}

resource "aws_ecs_cluster_capacity_providers" "this" {
  cluster_name       = aws_ecs_cluster.this.name
  capacity_providers = ["FARGATE", "FARGATE_SPOT"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

# The jobs' tasks (awsvpc) reach AWS APIs, ECR and their data over HTTPS; nothing reaches them.
resource "aws_security_group" "tasks" {
  # checkov:skip=CKV2_AWS_5: attached per task at RunTask (awsvpc networkConfiguration from the DAG settings' ecsSecurityGroups), not to a resource Terraform makes
  name        = "${local.names.cluster}-tasks"
  description = "ECS tasks of the eksflow-${var.env} jobs: HTTPS out only"
  vpc_id      = var.vpc_id
  tags        = var.tags
}

resource "aws_vpc_security_group_egress_rule" "tasks_https" {
  security_group_id = aws_security_group.tasks.id
  description       = "HTTPS to AWS APIs, ECR and S3"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

# Each ecs job's family. Terraform registers its first revision only: a bootstrap image (the job repository's
# `bootstrap` tag, which no release pushes, so a run before the first release fails to pull instead of running
# something else). Releases then register later revisions of the family with the image pinned by digest (`eksflow
# job release`, copying the family's latest revision), and Terraform must neither roll the family back nor fight them:
# - track_latest: Terraform reads the family's latest ACTIVE revision — the last release's — not the one it made;
# - ignore_changes = [container_definitions]: the containers (image, settings) belong to the releases; a change of
#   what Terraform owns (CPU, memory, roles) registers a new revision that carries the latest release's containers
#   (ignored attributes keep their prior value), never the bootstrap image;
# - skip_destroy: a replaced or destroyed revision is not deregistered, so revisions the DAGs pinned stay runnable.
# (Without track_latest, Terraform would keep refreshing its own first revision and a replacement would copy that
# revision's bootstrap containers; with track_latest but no ignore_changes, every release would plan a replacement
# back to the bootstrap image.) A release copies the family's tags, so the latest revision keeps Terraform's tags.
resource "aws_ecs_task_definition" "job" {
  for_each = local.ecs_jobs

  family                   = each.value.family
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = var.task_cpu
  memory                   = var.task_memory
  task_role_arn            = aws_iam_role.task[each.key].arn
  execution_role_arn       = aws_iam_role.execution.arn
  container_definitions = jsonencode([{
    name                   = each.value.container
    image                  = "${aws_ecr_repository.job[each.key].repository_url}:bootstrap"
    essential              = true
    readonlyRootFilesystem = true
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.job[each.key].name
        awslogs-region        = local.region
        awslogs-stream-prefix = each.key
      }
    }
  }])
  track_latest = true
  skip_destroy = true
  tags         = merge(var.tags, { (local.job_tag_key) = each.key })

  lifecycle {
    ignore_changes = [container_definitions]
  }
}
