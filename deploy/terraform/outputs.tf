output "load_balancer_dns_name" {
  description = "Point <base_domain> and *.<base_domain> here (Route 53 alias records, or CNAMEs)."
  value       = aws_lb.main.dns_name
}

output "load_balancer_zone_id" {
  description = "Hosted zone of the load balancer, for Route 53 alias records."
  value       = aws_lb.main.zone_id
}

output "image_repository_url" {
  description = "Where the release pipeline pushes the image (docker/Dockerfile)."
  value       = local.image_repository
}

output "cluster_name" {
  description = "ECS cluster."
  value       = aws_ecs_cluster.main.name
}

output "service_names" {
  description = "ECS services by role."
  value = merge(
    { web = aws_ecs_service.web.name, worker-scoring = aws_ecs_service.scoring.name },
    { for role, service in aws_ecs_service.fixed : role => service.name },
  )
}

output "migrate_task_definition" {
  description = "Task definition (family:revision) of the one-off migrate task; run it before moving image_tag."
  value       = "${aws_ecs_task_definition.role["migrate"].family}:${aws_ecs_task_definition.role["migrate"].revision}"
}

output "task_definitions" {
  description = "Task definition ARNs by role (run-task of worker-default with a command override runs manage.py commands)."
  value       = { for role, definition in aws_ecs_task_definition.role : role => definition.arn }
}

output "ops_task_definition" {
  description = "Task definition of the ops task (psql, pg_dump, pg_restore; start it with --enable-execute-command)."
  value       = aws_ecs_task_definition.ops.arn
}

output "run_task_network_configuration" {
  description = "The --network-configuration for aws ecs run-task (migrate, management commands, ops)."
  value = jsonencode({
    awsvpcConfiguration = {
      subnets        = aws_subnet.private[*].id
      securityGroups = [aws_security_group.worker.id]
      assignPublicIp = "DISABLED"
    }
  })
}

output "models_bucket" {
  description = "SHELFWISE_MODEL_BUCKET."
  value       = aws_s3_bucket.models.id
}

output "database_endpoint" {
  description = "PostgreSQL host:port (private)."
  value       = aws_db_instance.main.endpoint
}

output "database_instance_id" {
  description = "RDS instance identifier (for snapshot and point-in-time restores)."
  value       = aws_db_instance.main.identifier
}

output "redis_primary_endpoint" {
  description = "Redis primary endpoint (private, TLS)."
  value       = aws_elasticache_replication_group.main.primary_endpoint_address
}

output "secret_arns" {
  description = "Secrets Manager ARNs by name."
  value = merge(
    {
      django_secret_key = aws_secretsmanager_secret.django.arn
      database          = aws_secretsmanager_secret.database.arn
      redis             = aws_secretsmanager_secret.redis.arn
      metrics_token     = aws_secretsmanager_secret.metrics.arn
    },
    local.sentry_enabled ? { sentry_dsn = aws_secretsmanager_secret.sentry[0].arn } : {},
  )
}

output "kms_key_arn" {
  description = "The environment's data key."
  value       = aws_kms_key.main.arn
}

output "log_groups" {
  description = "CloudWatch log groups by role."
  value       = { for role, group in aws_cloudwatch_log_group.app : role => group.name }
}

output "task_security_group_ids" {
  description = "Security groups of web and worker tasks (e.g. to allow them on a collector)."
  value       = local.task_security_groups
}
