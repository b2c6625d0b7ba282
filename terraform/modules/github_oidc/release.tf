# release: `make deploy STAGE=release` (src/eksflow_dev/deploy.py) — terraform init and output (the state,
# read only), `aws eks update-kubeconfig` (DescribeCluster), the chart's DB Secret from the RDS-managed secret
# (GetSecretValue of that one secret; its KMS key only through Secrets Manager), and the digest of the image it
# deploys, verified by its revision label (src/eksflow_dev/ecr_image.py VERIFY_ACTIONS: the manifest and its config
# blob). Kubernetes rights come from the eks module's access entry for this role.

data "aws_iam_policy_document" "release_calls" {
  statement {
    sid       = "Kubeconfig"
    actions   = ["eks:DescribeCluster"]
    resources = [var.eks_cluster_arn]
  }
  statement {
    sid       = "DatabaseSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.db_secret_arn]
  }
  statement {
    sid       = "DatabaseSecretKeyThroughSecretsManager"
    actions   = ["kms:Decrypt"]
    resources = [var.db_kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }
  statement {
    sid       = "VerifyTheImageAndItsDigest"
    actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"]
    resources = [var.ecr_repository_arn]
  }
}

data "aws_iam_policy_document" "release" {
  source_policy_documents = [data.aws_iam_policy_document.state["release"].json, data.aws_iam_policy_document.release_calls.json]
}
