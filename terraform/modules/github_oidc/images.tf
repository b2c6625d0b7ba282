# The image stages. push: main's image, built and pushed by workflows on main. image-tag: a release adds a
# version tag to the image main already pushed — it reads the manifest and puts it again under the new tag, so
# it needs no layer upload and can publish nothing main did not build.

data "aws_iam_policy_document" "push" {
  statement {
    sid       = "Login"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  statement {
    sid = "PushAirflowImage"
    actions = [
      "ecr:BatchCheckLayerAvailability", "ecr:InitiateLayerUpload", "ecr:UploadLayerPart",
      "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchGetImage", "ecr:DescribeImages",
      "ecr:DescribeImageScanFindings",
    ]
    resources = [var.ecr_repository_arn]
  }
}

data "aws_iam_policy_document" "image_tag" {
  statement {
    sid       = "TagMainsImage"
    actions   = ["ecr:BatchGetImage", "ecr:PutImage", "ecr:DescribeImages"]
    resources = [var.ecr_repository_arn]
  }
}
