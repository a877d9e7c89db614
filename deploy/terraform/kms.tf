# One customer-managed key for this environment's data at rest: secrets, the database and its
# Performance Insights, Redis, the model bucket, log groups and the image repository. Access
# is granted per principal in IAM (the key policy delegates to the account), except for
# CloudWatch Logs, which must be named in the key policy itself.

data "aws_iam_policy_document" "kms" {
  #checkov:skip=CKV_AWS_109:This is a key policy: "*" as resource means this key only. The account statement is AWS's default key policy, which hands access control to IAM (every role here is granted the key by ARN).
  #checkov:skip=CKV_AWS_111:Same key policy: "*" is this key, and write access is granted to principals in IAM, per role.
  #checkov:skip=CKV_AWS_356:Same key policy: a key policy's resource can only be the key itself, written "*".
  statement {
    sid       = "AccountAdministersKeyThroughIam"
    actions   = ["kms:*"]
    resources = ["*"] # in a key policy, "*" is this key
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }

  statement {
    sid = "CloudWatchLogsEncryptsThisEnvironmentsLogGroups"
    actions = [
      "kms:Encrypt*",
      "kms:Decrypt*",
      "kms:ReEncrypt*",
      "kms:GenerateDataKey*",
      "kms:Describe*",
    ]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${var.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:*"]
    }
  }
}

resource "aws_kms_key" "main" {
  description             = "${local.name}: data at rest (secrets, RDS, ElastiCache, S3 models, logs, ECR)"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.kms.json
}

resource "aws_kms_alias" "main" {
  name          = "alias/${local.name}"
  target_key_id = aws_kms_key.main.key_id
}
