# Secrets Manager holds every secret the tasks need; ECS injects them as environment variables
# at task start (container definition "secrets"), so they never appear in a task definition.
# The app reads connection URLs, so the database and Redis secrets are JSON documents holding
# both the raw credential (for operators) and the URL (for the app, picked by JSON key).
#
# Rotation is deliberate, not automatic: tasks read secrets only when they start, so a value
# changed underneath them breaks running tasks until they are replaced. docs/deploy-aws.md
# ("Rotating secrets") gives the order of steps for each.

resource "random_password" "django_secret_key" {
  length           = 64
  override_special = "!#%&*()-_=+[]{}<>:?"
}

resource "random_password" "metrics_token" {
  length  = 48
  special = false
}

locals {
  database_url = format(
    "postgres://%s:%s@%s:%d/%s?sslmode=require",
    aws_db_instance.main.username,
    random_password.db.result,
    aws_db_instance.main.address,
    aws_db_instance.main.port,
    aws_db_instance.main.db_name,
  )
  # Caches on database 0, Celery's broker and results on 1 (as in development). Celery refuses
  # a rediss:// URL without ssl_cert_reqs; redis-py accepts the same parameter.
  # Whether a DSN was given is not itself secret; count cannot use a sensitive value.
  sentry_enabled = nonsensitive(var.sentry_dsn != "")
  redis_base_url = format(
    "rediss://:%s@%s:%d",
    random_password.redis.result,
    aws_elasticache_replication_group.main.primary_endpoint_address,
    aws_elasticache_replication_group.main.port,
  )
}

resource "aws_secretsmanager_secret" "django" {
  #checkov:skip=CKV2_AWS_57:Rotated deliberately (docs/deploy-aws.md): every task reads it only at start, and a new SECRET_KEY signs users out, so it changes with a rolling deploy, not on a timer.
  name                    = "${local.name}/django-secret-key"
  description             = "Django SECRET_KEY"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = var.secret_recovery_window_days
}

resource "aws_secretsmanager_secret_version" "django" {
  secret_id     = aws_secretsmanager_secret.django.id
  secret_string = random_password.django_secret_key.result
}

resource "aws_secretsmanager_secret" "database" {
  #checkov:skip=CKV2_AWS_57:The password is also embedded in DATABASE_URL, which tasks read only at start; an automatic rotation would lock out every running task. Rotated by the documented procedure with a rolling deploy.
  name                    = "${local.name}/database"
  description             = "PostgreSQL credentials and DATABASE_URL"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = var.secret_recovery_window_days
}

resource "aws_secretsmanager_secret_version" "database" {
  secret_id = aws_secretsmanager_secret.database.id
  secret_string = jsonencode({
    engine   = "postgres"
    username = aws_db_instance.main.username
    password = random_password.db.result
    host     = aws_db_instance.main.address
    port     = aws_db_instance.main.port
    dbname   = aws_db_instance.main.db_name
    url      = local.database_url
  })
}

resource "aws_secretsmanager_secret" "redis" {
  #checkov:skip=CKV2_AWS_57:The AUTH token is embedded in REDIS_URL and CELERY_BROKER_URL, read only at task start; it is rotated with ElastiCache's ROTATE/SET strategy and a rolling deploy (docs/deploy-aws.md), which a rotation Lambda cannot coordinate.
  name                    = "${local.name}/redis"
  description             = "Redis AUTH token, REDIS_URL and CELERY_BROKER_URL"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = var.secret_recovery_window_days
}

resource "aws_secretsmanager_secret_version" "redis" {
  secret_id = aws_secretsmanager_secret.redis.id
  secret_string = jsonencode({
    auth_token = random_password.redis.result
    url        = "${local.redis_base_url}/0?ssl_cert_reqs=required"
    broker_url = "${local.redis_base_url}/1?ssl_cert_reqs=required"
  })
}

resource "aws_secretsmanager_secret" "metrics" {
  #checkov:skip=CKV2_AWS_57:Shared with the Prometheus scraper's configuration; rotating it on a timer would break scraping until both sides change. Rotated by the documented procedure.
  name                    = "${local.name}/metrics-token"
  description             = "Bearer token for /metrics (SHELFWISE_METRICS_TOKEN)"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = var.secret_recovery_window_days
}

resource "aws_secretsmanager_secret_version" "metrics" {
  secret_id     = aws_secretsmanager_secret.metrics.id
  secret_string = random_password.metrics_token.result
}

resource "aws_secretsmanager_secret" "sentry" {
  #checkov:skip=CKV2_AWS_57:Issued by Sentry, not generated here: it changes when Sentry's project key is rotated, then is put here.
  count = local.sentry_enabled ? 1 : 0

  name                    = "${local.name}/sentry-dsn"
  description             = "SENTRY_DSN"
  kms_key_id              = aws_kms_key.main.arn
  recovery_window_in_days = var.secret_recovery_window_days
}

resource "aws_secretsmanager_secret_version" "sentry" {
  count = local.sentry_enabled ? 1 : 0

  secret_id     = aws_secretsmanager_secret.sentry[0].id
  secret_string = var.sentry_dsn
}
