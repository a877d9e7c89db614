# Roles, least privilege:
#   execution role      ECS itself: pull the image, write logs, read this environment's secrets
#   task-models-read    web, worker-scoring: read model bundles
#   task-models-write   worker-default, worker-training: write, rewrite (erasure) and delete bundles
#   task-no-aws         beat, migrate: nothing beyond the database and Redis
#   task-ops            ops task: ECS Exec sessions for an operator (pg_dump / pg_restore)

data "aws_iam_policy_document" "ecs_tasks_assume" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["ecs-tasks.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

# ----------------------------------------------------------------------------- execution role

resource "aws_iam_role" "execution" {
  name               = "${local.name}-ecs-execution"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy_attachment" "execution" {
  role       = aws_iam_role.execution.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"
}

locals {
  secret_arns = concat(
    [
      aws_secretsmanager_secret.django.arn,
      aws_secretsmanager_secret.database.arn,
      aws_secretsmanager_secret.redis.arn,
      aws_secretsmanager_secret.metrics.arn,
    ],
    aws_secretsmanager_secret.sentry[*].arn,
  )
}

data "aws_iam_policy_document" "execution" {
  statement {
    sid       = "ReadThisEnvironmentsSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = local.secret_arns
  }
  statement {
    sid       = "DecryptThem"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
  }
}

resource "aws_iam_role_policy" "execution" {
  name   = "secrets"
  role   = aws_iam_role.execution.id
  policy = data.aws_iam_policy_document.execution.json
}

# ----------------------------------------------------------------------------- task roles

data "aws_iam_policy_document" "models_read" {
  statement {
    sid       = "ListBundles"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.models.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["models/*"]
    }
  }
  statement {
    sid       = "ReadBundles"
    actions   = ["s3:GetObject"]
    resources = ["${aws_s3_bucket.models.arn}/models/*"]
  }
  statement {
    sid       = "DecryptBundles"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.main.arn]
  }
}

data "aws_iam_policy_document" "models_write" {
  source_policy_documents = [data.aws_iam_policy_document.models_read.json]

  statement {
    sid = "WriteAndDeleteBundles"
    actions = [
      "s3:PutObject",
      "s3:DeleteObject",
      "s3:AbortMultipartUpload",
    ]
    resources = ["${aws_s3_bucket.models.arn}/models/*"]
  }
  statement {
    sid       = "EncryptBundles"
    actions   = ["kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
  }
}

resource "aws_iam_role" "task_models_read" {
  name               = "${local.name}-task-models-read"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy" "task_models_read" {
  name   = "models-read"
  role   = aws_iam_role.task_models_read.id
  policy = data.aws_iam_policy_document.models_read.json
}

resource "aws_iam_role" "task_models_write" {
  name               = "${local.name}-task-models-write"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role_policy" "task_models_write" {
  name   = "models-write"
  role   = aws_iam_role.task_models_write.id
  policy = data.aws_iam_policy_document.models_write.json
}

resource "aws_iam_role" "task_no_aws" {
  name               = "${local.name}-task-no-aws"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

resource "aws_iam_role" "task_ops" {
  name               = "${local.name}-task-ops"
  assume_role_policy = data.aws_iam_policy_document.ecs_tasks_assume.json
}

data "aws_iam_policy_document" "ops" {
  statement {
    # ssmmessages actions support no resource-level permissions: "*" is the only resource.
    sid = "EcsExecChannels"
    actions = [
      "ssmmessages:CreateControlChannel",
      "ssmmessages:CreateDataChannel",
      "ssmmessages:OpenControlChannel",
      "ssmmessages:OpenDataChannel",
    ]
    resources = ["*"]
  }
  statement {
    sid = "EcsExecSessionLogs"
    actions = [
      "logs:CreateLogStream",
      "logs:DescribeLogStreams",
      "logs:PutLogEvents",
    ]
    resources = ["${aws_cloudwatch_log_group.exec.arn}:*"]
  }
  statement {
    sid       = "EcsExecDescribeLogGroups"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["arn:${local.partition}:logs:${var.region}:${local.account_id}:log-group:*"]
  }
  statement {
    sid       = "EcsExecSessionEncryption"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.main.arn]
  }
}

resource "aws_iam_role_policy" "task_ops" {
  name   = "ecs-exec"
  role   = aws_iam_role.task_ops.id
  policy = data.aws_iam_policy_document.ops.json
}
