# ElastiCache for Redis: recommendation caches, online features, rate limits and the Celery
# broker/result backend. A primary and a replica in another zone with automatic failover; TLS
# and an AUTH token in transit, the environment's KMS key at rest.

resource "aws_elasticache_subnet_group" "main" {
  name       = local.name
  subnet_ids = aws_subnet.private[*].id
}

resource "aws_elasticache_parameter_group" "main" {
  name        = "${local.name}-redis7"
  family      = "redis7"
  description = "Shelfwise: evict only keys with a TTL"

  # Caches carry TTLs; Celery's queues do not. volatile-lru (ElastiCache's default, stated here
  # on purpose) makes memory pressure drop cached lists, never queued tasks. If the broker ever
  # needs its own guarantees, move CELERY_BROKER_URL to a second replication group with
  # noeviction.
  parameter {
    name  = "maxmemory-policy"
    value = "volatile-lru"
  }
}

resource "random_password" "redis" {
  # ElastiCache AUTH tokens: 16-128 printable characters without @, " or /; letters and digits
  # also need no escaping in the rediss:// URLs.
  length  = 64
  special = false
}

resource "aws_cloudwatch_log_group" "redis_slow" {
  #checkov:skip=CKV_AWS_338:Slow-log entries include command arguments, i.e. keys with store and shopper ids; kept only log_retention_days (90 by default) like the application logs.
  name              = "/shelfwise/${var.environment}/redis-slow-log"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_elasticache_replication_group" "main" {
  replication_group_id = local.name
  description          = "Shelfwise caches, features and Celery broker"

  engine               = "redis"
  engine_version       = var.redis_engine_version
  node_type            = var.redis_node_type
  port                 = 6379
  parameter_group_name = aws_elasticache_parameter_group.main.name

  num_cache_clusters         = var.redis_num_cache_clusters
  automatic_failover_enabled = true
  multi_az_enabled           = true
  subnet_group_name          = aws_elasticache_subnet_group.main.name
  security_group_ids         = [aws_security_group.redis.id]

  at_rest_encryption_enabled = true
  kms_key_id                 = aws_kms_key.main.arn
  transit_encryption_enabled = true
  auth_token                 = random_password.redis.result
  # A new token is added next to the old one (both valid) until it is SET alone, so running
  # tasks keep working through a rotation ("Rotating secrets" in docs/deploy-aws.md).
  auth_token_update_strategy = "ROTATE"

  snapshot_retention_limit   = var.redis_snapshot_retention_days
  snapshot_window            = "01:00-02:00"
  maintenance_window         = "sun:04:00-sun:05:00"
  auto_minor_version_upgrade = true
  apply_immediately          = false

  log_delivery_configuration {
    destination      = aws_cloudwatch_log_group.redis_slow.name
    destination_type = "cloudwatch-logs"
    log_format       = "json"
    log_type         = "slow-log"
  }
}
