# Managed node groups: "system" (on-demand, Airflow control plane) and "tasks" (tainted, spot-capable,
# scales from a low minimum). IMDSv2 only, hop limit 1: pods cannot borrow the node's role.

data "aws_iam_policy_document" "node_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "node" {
  name               = "${var.cluster_name}-node"
  assume_role_policy = data.aws_iam_policy_document.node_trust.json
  tags               = var.tags
}

resource "aws_iam_role_policy_attachment" "node" {
  for_each = toset(["AmazonEKSWorkerNodePolicy", "AmazonEKS_CNI_Policy", "AmazonEC2ContainerRegistryReadOnly", "AmazonSSMManagedInstanceCore"])

  role       = aws_iam_role.node.name
  policy_arn = "${local.policy}/${each.value}"
}

resource "aws_launch_template" "node" {
  for_each = toset(["system", "tasks"])

  name_prefix = "${var.cluster_name}-${each.value}-"
  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }
  block_device_mappings {
    device_name = "/dev/xvda"
    ebs {
      volume_size = 50
      volume_type = "gp3"
      encrypted   = true
    }
  }
  tag_specifications {
    resource_type = "instance"
    tags          = merge(var.tags, { Name = "${var.cluster_name}-${each.value}" })
  }
  tags = var.tags
}

locals {
  node_groups = {
    system = {
      capacity_type  = "ON_DEMAND"
      instance_types = var.system_instance_types
      scaling        = var.system_nodes
      taints         = []
    }
    tasks = {
      capacity_type  = var.tasks_capacity_type
      instance_types = var.task_instance_types
      scaling        = var.task_nodes
      taints         = [{ key = "eksflow.io/tasks", value = "true", effect = "NO_SCHEDULE" }]
    }
  }
}

resource "aws_eks_node_group" "this" {
  for_each = local.node_groups

  cluster_name    = aws_eks_cluster.this.name
  node_group_name = each.key
  node_role_arn   = aws_iam_role.node.arn
  subnet_ids      = var.subnet_ids
  capacity_type   = each.value.capacity_type
  instance_types  = each.value.instance_types
  labels          = { "eksflow.io/node-group" = each.key }

  scaling_config {
    min_size     = each.value.scaling.min
    desired_size = each.value.scaling.desired
    max_size     = each.value.scaling.max
  }

  update_config {
    max_unavailable = 1
  }

  launch_template {
    id      = aws_launch_template.node[each.key].id
    version = aws_launch_template.node[each.key].latest_version
  }

  dynamic "taint" {
    for_each = each.value.taints
    content {
      key    = taint.value.key
      value  = taint.value.value
      effect = taint.value.effect
    }
  }

  tags = var.tags

  lifecycle {
    ignore_changes = [scaling_config[0].desired_size] # the autoscaler owns it
  }

  depends_on = [aws_iam_role_policy_attachment.node]
}
