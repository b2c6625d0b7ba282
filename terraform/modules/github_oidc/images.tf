# The image stages (.github/workflows/image.yml). push: main's image, built and pushed by workflows on main, and
# verified (`eksflow image verify`: the manifest, then its config blob's revision label). image-tag: a release
# verifies main's image the same way and puts its manifest under the version tag (`eksflow image retag`), so it needs
# no layer upload and can publish nothing main did not build. The ECR calls are src/eksflow_dev/ecr_image.py's
# VERIFY_ACTIONS and RETAG_ACTIONS (tests/test_terraform.py holds them equal).

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
      "ecr:CompleteLayerUpload", "ecr:PutImage", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer",
      "ecr:DescribeImageScanFindings",
    ]
    resources = [var.ecr_repository_arn]
  }
}

data "aws_iam_policy_document" "image_tag" {
  statement {
    sid       = "VerifyAndTagMainsImage"
    actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:PutImage"]
    resources = [var.ecr_repository_arn]
  }
}
