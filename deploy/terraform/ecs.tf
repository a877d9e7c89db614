# ECS on Fargate: one image, one task definition per role (the role is the command), one
# service per long-running role, and two one-off task definitions: migrate (run before every
# deploy) and ops (an operator's pg_dump / pg_restore shell through ECS Exec).
#
#   service          command                                               scaled by
#   web              gunicorn (shelfwise/server/gunicorn_conf.py)                  ALB requests/target, CPU
#   worker-default   celery worker -Q default                              fixed count
#   worker-training  celery worker -Q training                             fixed count
#   worker-scoring   celery worker -Q scoring                              CPU (+ queue backlog)
#   beat             celery beat                                           exactly 1

resource "aws_cloudwatch_log_group" "exec" {
  name              = "/shelfwise/${var.environment}/ecs-exec"
  retention_in_days = var.security_log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

resource "aws_ecs_cluster" "main" {
  name = local.name

  setting {
    name  = "containerInsights"
    value = "enabled"
  }

  configuration {
    execute_command_configuration {
      kms_key_id = aws_kms_key.main.arn
      logging    = "OVERRIDE"

      log_configuration {
        cloud_watch_log_group_name     = aws_cloudwatch_log_group.exec.name
        cloud_watch_encryption_enabled = true
      }
    }
  }
}

resource "aws_ecs_cluster_capacity_providers" "main" {
  cluster_name       = aws_ecs_cluster.main.name
  capacity_providers = ["FARGATE"]

  default_capacity_provider_strategy {
    capacity_provider = "FARGATE"
    weight            = 1
  }
}

# ----------------------------------------------------------------------------- what every task gets

locals {
  migrate_tag   = var.migrate_image_tag != "" ? var.migrate_image_tag : var.image_tag
  image         = "${local.image_repository}:${var.image_tag}"
  migrate_image = "${local.image_repository}:${local.migrate_tag}"

  common_environment = merge(
    {
      SHELFWISE_ENV          = "production"
      SHELFWISE_BASE_DOMAIN  = var.base_domain
      SHELFWISE_PUBLIC_HOSTS = var.base_domain
      # The leading dot admits the base domain and every subdomain (stores' dashboards, the
      # API host); 127.0.0.1 is the container's own health check.
      ALLOWED_HOSTS        = ".${var.base_domain}"
      CSRF_TRUSTED_ORIGINS = "https://${var.base_domain},https://*.${var.base_domain}"
      # The ALB's port 80 already redirects to HTTPS. Redirecting in Django too would send
      # Prometheus' plain-HTTP scrapes of /metrics (task IP, port 8000) to a URL that does not exist.
      SECURE_SSL_REDIRECT = "false"
      SECURE_HSTS_SECONDS = tostring(var.hsts_seconds)
      # One proxy (the ALB) appends to X-Forwarded-For.
      SHELFWISE_TRUSTED_PROXIES   = "1"
      SHELFWISE_MODEL_BUCKET      = aws_s3_bucket.models.id
      AWS_REGION                  = var.region
      SHELFWISE_MODEL_CACHE_BYTES = tostring(var.model_cache_bytes)
      LOG_FORMAT                  = "json"
      SENTRY_ENVIRONMENT          = var.environment
      SENTRY_RELEASE              = var.image_tag
    },
    var.otel_exporter_otlp_endpoint == "" ? {} : { OTEL_EXPORTER_OTLP_ENDPOINT = var.otel_exporter_otlp_endpoint },
    var.extra_environment,
  )

  common_secrets = merge(
    {
      SECRET_KEY              = aws_secretsmanager_secret.django.arn
      DATABASE_URL            = "${aws_secretsmanager_secret.database.arn}:url::"
      REDIS_URL               = "${aws_secretsmanager_secret.redis.arn}:url::"
      CELERY_BROKER_URL       = "${aws_secretsmanager_secret.redis.arn}:broker_url::"
      SHELFWISE_METRICS_TOKEN = aws_secretsmanager_secret.metrics.arn
    },
    local.sentry_enabled ? { SENTRY_DSN = aws_secretsmanager_secret.sentry[0].arn } : {},
  )

  # One entry per role. stop_timeout: seconds between SIGTERM and SIGKILL (Fargate allows 120).
  # gunicorn finishes in-flight requests within graceful_timeout (30 s); a Celery worker stops
  # taking tasks and finishes the running ones (warm shutdown).
  roles = {
    web = {
      command      = ["gunicorn", "-c", "shelfwise/server/gunicorn_conf.py", "shelfwise.wsgi:application"]
      cpu          = var.web_cpu
      memory       = var.web_memory
      task_role    = aws_iam_role.task_models_read.arn
      port         = 8000
      stop_timeout = 40
      sidecar      = false
      environment  = tomap({ WEB_CONCURRENCY = tostring(var.web_concurrency), PORT = "8000" })
    }
    worker-default = {
      command      = ["celery", "-A", "shelfwise", "worker", "-Q", "default", "-c", tostring(var.worker_default.concurrency), "-n", "default@%h", "--without-gossip"]
      cpu          = var.worker_default.cpu
      memory       = var.worker_default.memory
      task_role    = aws_iam_role.task_models_write.arn
      port         = null
      stop_timeout = 120
      sidecar      = var.worker_metrics_sidecar
      environment  = tomap({})
    }
    worker-training = {
      command      = ["celery", "-A", "shelfwise", "worker", "-Q", "training", "-c", tostring(var.worker_training.concurrency), "-n", "training@%h", "--without-gossip"]
      cpu          = var.worker_training.cpu
      memory       = var.worker_training.memory
      task_role    = aws_iam_role.task_models_write.arn
      port         = null
      stop_timeout = 120
      sidecar      = var.worker_metrics_sidecar
      environment  = tomap({ SHELFWISE_TRAINING_THREADS = tostring(var.training_threads) })
    }
    worker-scoring = {
      command      = ["celery", "-A", "shelfwise", "worker", "-Q", "scoring", "-c", tostring(var.worker_scoring.concurrency), "-n", "scoring@%h", "--without-gossip"]
      cpu          = var.worker_scoring.cpu
      memory       = var.worker_scoring.memory
      task_role    = aws_iam_role.task_models_read.arn
      port         = null
      stop_timeout = 120
      sidecar      = var.worker_metrics_sidecar
      environment  = tomap({})
    }
    beat = {
      command      = ["celery", "-A", "shelfwise", "beat", "-s", "/tmp/celerybeat-schedule"]
      cpu          = var.beat.cpu
      memory       = var.beat.memory
      task_role    = aws_iam_role.task_no_aws.arn
      port         = null
      stop_timeout = 30
      sidecar      = false
      environment  = tomap({})
    }
    migrate = {
      # Shared apps in public first, then every store's schema, several at a time
      # (TENANT_MULTIPROCESSING_MAX_PROCESSES, django-tenants' default 2).
      command      = ["python", "manage.py", "migrate_schemas", "--executor=multiprocessing", "--noinput"]
      cpu          = var.migrate.cpu
      memory       = var.migrate.memory
      task_role    = aws_iam_role.task_no_aws.arn
      port         = null
      stop_timeout = 120
      sidecar      = false
      environment  = tomap({ SENTRY_RELEASE = local.migrate_tag })
    }
  }

  log_groups = toset(concat(keys(local.roles), ["ops"]))

  # Container definitions per role. Environment and secrets are sorted by name so ECS's own
  # ordering never shows up as a diff.
  containers = {
    for role, spec in local.roles : role => concat(
      # Fargate creates the /tmp volume owned by root with mode 0755; the app runs as uid
      # 10001 and must write there. This root container opens it up and exits; the others
      # start only after it succeeded.
      [{
        name                   = "tmp-permissions"
        image                  = role == "migrate" ? local.migrate_image : local.image
        essential              = false
        command                = ["chmod", "1777", "/tmp"]
        user                   = "0"
        readonlyRootFilesystem = true
        mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
        logConfiguration = {
          logDriver = "awslogs"
          options = {
            awslogs-group         = aws_cloudwatch_log_group.app[role].name
            awslogs-region        = var.region
            awslogs-stream-prefix = "init"
          }
        }
      }],
      [{
        name                   = role
        image                  = role == "migrate" ? local.migrate_image : local.image
        essential              = true
        command                = spec.command
        user                   = "10001:10001"
        readonlyRootFilesystem = true
        dependsOn              = [{ containerName = "tmp-permissions", condition = "SUCCESS" }]
        stopTimeout            = spec.stop_timeout
        linuxParameters        = { initProcessEnabled = true }
        portMappings           = spec.port == null ? [] : [{ containerPort = spec.port, protocol = "tcp" }]
        mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
        environment = [
          for name, value in merge(local.common_environment, { SHELFWISE_ROLE = role }, spec.environment) :
          { name = name, value = value }
        ]
        secrets = [for name, arn in local.common_secrets : { name = name, valueFrom = arn }]
        healthCheck = spec.port == null ? null : {
          command     = ["CMD", "python", "-c", "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"]
          interval    = 15
          timeout     = 5
          retries     = 3
          startPeriod = 30
        }
        logConfiguration = {
          logDriver = "awslogs"
          options = {
            awslogs-group         = aws_cloudwatch_log_group.app[role].name
            awslogs-region        = var.region
            awslogs-stream-prefix = role
          }
        }
      }],
      # Celery processes write their metrics to /tmp/prometheus; this one-process gunicorn reads
      # the same directory and answers /metrics for them (README "Metrics").
      spec.sidecar ? [{
        name                   = "metrics"
        image                  = local.image
        essential              = false
        command                = ["gunicorn", "-c", "shelfwise/server/gunicorn_conf.py", "shelfwise.wsgi:application"]
        user                   = "10001:10001"
        readonlyRootFilesystem = true
        dependsOn              = [{ containerName = "tmp-permissions", condition = "SUCCESS" }]
        stopTimeout            = 30
        linuxParameters        = { initProcessEnabled = true }
        portMappings           = [{ containerPort = 8000, protocol = "tcp" }]
        mountPoints            = [{ sourceVolume = "tmp", containerPath = "/tmp", readOnly = false }]
        environment = [
          for name, value in merge(local.common_environment, { SHELFWISE_ROLE = "${role}-metrics", WEB_CONCURRENCY = "1", PORT = "8000" }) :
          { name = name, value = value }
        ]
        secrets = [for name, arn in local.common_secrets : { name = name, valueFrom = arn }]
        logConfiguration = {
          logDriver = "awslogs"
          options = {
            awslogs-group         = aws_cloudwatch_log_group.app[role].name
            awslogs-region        = var.region
            awslogs-stream-prefix = "metrics"
          }
        }
      }] : [],
    )
  }
}

resource "aws_cloudwatch_log_group" "app" {
  #checkov:skip=CKV_AWS_338:Application logs carry store ids, paths and request ids; they are kept only as long as operations need them (log_retention_days, 90 by default). The durable record of administrative actions is the audit log in PostgreSQL; security logs (flow, WAF, ECS Exec) keep a year.
  for_each = local.log_groups

  name              = "/shelfwise/${var.environment}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.main.arn
}

# ----------------------------------------------------------------------------- task definitions

resource "aws_ecs_task_definition" "role" {
  for_each = local.roles

  family                   = "${local.name}-${each.key}"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = each.value.cpu
  memory                   = each.value.memory
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = each.value.task_role
  # With a metrics sidecar, both containers write files named after their PIDs into the shared
  # /tmp/prometheus: one PID namespace for the task keeps those names unique.
  pid_mode              = each.value.sidecar ? "task" : null
  container_definitions = jsonencode(local.containers[each.key])

  # The root filesystem is read-only; /tmp (Prometheus' multi-process files, gunicorn's worker
  # heartbeats, beat's schedule) is task-local scratch space, empty at every start.
  volume {
    name = "tmp"
  }

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }
}

resource "aws_ecs_task_definition" "ops" {
  #checkov:skip=CKV_AWS_336:ECS Exec, the only way into this task, runs the SSM agent inside the container and does not work with a read-only root filesystem. The task runs only during an operator's session (8 hours at most) and serves nothing.
  family                   = "${local.name}-ops"
  requires_compatibilities = ["FARGATE"]
  network_mode             = "awsvpc"
  cpu                      = 1024
  memory                   = 4096
  execution_role_arn       = aws_iam_role.execution.arn
  task_role_arn            = aws_iam_role.task_ops.arn

  # Room for one store's dump (pg_dump -Fc) on its way through a scratch database.
  ephemeral_storage {
    size_in_gib = 100
  }

  volume {
    name = "scratch"
  }

  container_definitions = jsonencode([{
    name                   = "ops"
    image                  = var.ops_image
    essential              = true
    command                = ["sleep", "28800"] # an operator's session; gone after 8 hours
    readonlyRootFilesystem = false
    linuxParameters        = { initProcessEnabled = true }
    mountPoints            = [{ sourceVolume = "scratch", containerPath = "/scratch", readOnly = false }]
    environment = [
      { name = "PGHOST", value = aws_db_instance.main.address },
      { name = "PGPORT", value = tostring(aws_db_instance.main.port) },
      { name = "PGDATABASE", value = aws_db_instance.main.db_name },
      { name = "PGUSER", value = aws_db_instance.main.username },
      { name = "PGSSLMODE", value = "require" },
    ]
    secrets = [{ name = "PGPASSWORD", valueFrom = "${aws_secretsmanager_secret.database.arn}:password::" }]
    logConfiguration = {
      logDriver = "awslogs"
      options = {
        awslogs-group         = aws_cloudwatch_log_group.app["ops"].name
        awslogs-region        = var.region
        awslogs-stream-prefix = "ops"
      }
    }
  }])

  runtime_platform {
    operating_system_family = "LINUX"
    cpu_architecture        = var.cpu_architecture
  }
}

# ----------------------------------------------------------------------------- services

locals {
  private_network = {
    subnets          = aws_subnet.private[*].id
    assign_public_ip = false
  }
  # Long-running roles with a fixed task count. worker-scoring and web are scaled below.
  fixed_services = {
    worker-default  = { count = var.worker_default.count, min_healthy = 100, max = 200 }
    worker-training = { count = var.worker_training.count, min_healthy = 100, max = 200 }
    # Never two beats (every schedule would fire twice): stop the old one, then start the new.
    beat = { count = 1, min_healthy = 0, max = 100 }
  }
}

resource "aws_ecs_service" "web" {
  name             = "web"
  cluster          = aws_ecs_cluster.main.id
  task_definition  = aws_ecs_task_definition.role["web"].arn
  desired_count    = var.web_min_count
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  # Rolling deploy: new tasks join and pass health checks before any old task leaves.
  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  health_check_grace_period_seconds  = 60
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = local.private_network.subnets
    assign_public_ip = local.private_network.assign_public_ip
    security_groups  = [aws_security_group.web.id]
  }

  load_balancer {
    target_group_arn = aws_lb_target_group.web.arn
    container_name   = "web"
    container_port   = 8000
  }

  propagate_tags          = "SERVICE"
  enable_ecs_managed_tags = true
  wait_for_steady_state   = true

  lifecycle {
    ignore_changes = [desired_count] # owned by auto scaling
  }

  depends_on = [aws_lb_listener.https]
}

resource "aws_ecs_service" "scoring" {
  name             = "worker-scoring"
  cluster          = aws_ecs_cluster.main.id
  task_definition  = aws_ecs_task_definition.role["worker-scoring"].arn
  desired_count    = var.scoring_min_count
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  deployment_minimum_healthy_percent = 100
  deployment_maximum_percent         = 200
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = local.private_network.subnets
    assign_public_ip = local.private_network.assign_public_ip
    security_groups  = [aws_security_group.worker.id]
  }

  propagate_tags          = "SERVICE"
  enable_ecs_managed_tags = true
  wait_for_steady_state   = true

  lifecycle {
    ignore_changes = [desired_count] # owned by auto scaling
  }
}

resource "aws_ecs_service" "fixed" {
  for_each = local.fixed_services

  name             = each.key
  cluster          = aws_ecs_cluster.main.id
  task_definition  = aws_ecs_task_definition.role[each.key].arn
  desired_count    = each.value.count
  launch_type      = "FARGATE"
  platform_version = "LATEST"

  deployment_minimum_healthy_percent = each.value.min_healthy
  deployment_maximum_percent         = each.value.max
  deployment_circuit_breaker {
    enable   = true
    rollback = true
  }

  network_configuration {
    subnets          = local.private_network.subnets
    assign_public_ip = local.private_network.assign_public_ip
    security_groups  = [aws_security_group.worker.id]
  }

  propagate_tags          = "SERVICE"
  enable_ecs_managed_tags = true
  wait_for_steady_state   = true
}
