# ----------------------------------------------------------------------------- where

variable "region" {
  description = "AWS region for every resource."
  type        = string
  default     = "eu-west-1"
}

variable "environment" {
  description = "Environment name; part of every resource name (shelfwise-<environment>-...)."
  type        = string
  default     = "prod"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,15}$", var.environment))
    error_message = "environment: 2-16 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "tags" {
  description = "Extra tags for every resource (the provider adds Project, Environment, ManagedBy)."
  type        = map(string)
  default     = {}
}

variable "availability_zones" {
  description = "Availability zones (names, in var.region) to spread subnets, NAT gateways and tasks over: 2 or 3. Named explicitly so the set never changes by itself."
  type        = list(string)
  default     = ["eu-west-1a", "eu-west-1b"]

  validation {
    condition     = length(var.availability_zones) >= 2 && length(var.availability_zones) <= 3
    error_message = "Give 2 or 3 zones: RDS Multi-AZ and the Redis replica need a second one."
  }

  validation {
    condition     = alltrue([for zone in var.availability_zones : startswith(zone, var.region)])
    error_message = "Every zone must be in var.region."
  }
}

# ----------------------------------------------------------------------------- network

variable "vpc_cidr" {
  description = "CIDR of the VPC; public and private subnets are /20s carved from it."
  type        = string
  default     = "10.40.0.0/16"
}

variable "single_nat_gateway" {
  description = "One NAT gateway for all zones (cheaper, but a zone outage cuts the others' egress). Production: false."
  type        = bool
  default     = false
}

# ----------------------------------------------------------------------------- edge

variable "base_domain" {
  description = "Base domain: the public site (Django admin) is served on it, store dashboards on <slug>.<base_domain>, the API on any host under it (e.g. api.<base_domain>). Becomes SHELFWISE_BASE_DOMAIN."
  type        = string
}

variable "certificate_arn" {
  description = "ACM certificate for the HTTPS listener; must cover <base_domain> and *.<base_domain>."
  type        = string
}

variable "alb_ingress_cidrs" {
  description = "Who may reach the load balancer. Stores' backends and shoppers' browsers call the API, so by default everyone."
  type        = list(string)
  default     = ["0.0.0.0/0"]
}

variable "alb_ssl_policy" {
  description = "TLS policy of the HTTPS listener."
  type        = string
  default     = "ELBSecurityPolicy-TLS13-1-2-2021-06"
}

variable "hsts_seconds" {
  description = "SECURE_HSTS_SECONDS for the dashboard and admin (0 disables HSTS)."
  type        = number
  default     = 31536000
}

# ----------------------------------------------------------------------------- image

variable "image_tag" {
  description = "Image tag (the release, e.g. the git commit) every service runs. Tags are immutable in the repository."
  type        = string
}

variable "migrate_image_tag" {
  description = "Image tag of the migrate task definition; empty means image_tag. A release sets this first, runs the migrate task, then moves image_tag (docs/deploy-aws.md)."
  type        = string
  default     = ""
}

variable "image_repository_url" {
  description = "Image repository to run from; empty means the ECR repository this configuration creates."
  type        = string
  default     = ""
}

variable "cpu_architecture" {
  description = "CPU architecture the image is built for: X86_64 or ARM64 (Graviton, cheaper per vCPU; build the image for linux/arm64 first)."
  type        = string
  default     = "X86_64"

  validation {
    condition     = contains(["X86_64", "ARM64"], var.cpu_architecture)
    error_message = "cpu_architecture must be X86_64 or ARM64."
  }
}

# ----------------------------------------------------------------------------- web

variable "web_cpu" {
  description = "Fargate CPU units of one web task (1024 = 1 vCPU)."
  type        = number
  default     = 2048
}

variable "web_memory" {
  description = "Memory (MiB) of one web task: WEB_CONCURRENCY processes, each with up to model_cache_bytes of models (docs/deploy-aws.md, capacity)."
  type        = number
  default     = 4096
}

variable "web_concurrency" {
  description = "gunicorn worker processes per web task (WEB_CONCURRENCY); one more than the vCPUs, as the serving benchmark runs (docs/deploy-aws.md, capacity)."
  type        = number
  default     = 3
}

variable "web_min_count" {
  description = "Fewest web tasks; at least one per availability zone."
  type        = number
  default     = 2

  validation {
    condition     = var.web_min_count >= length(var.availability_zones)
    error_message = "web_min_count must be at least the number of zones, so that losing a zone never leaves the API without a task."
  }
}

variable "web_max_count" {
  description = "Most web tasks auto scaling may run."
  type        = number
  default     = 12
}

variable "web_target_requests_per_minute" {
  description = "Auto scaling target: ALB requests per web task per minute (30000 = 500 req/s; see the capacity plan)."
  type        = number
  default     = 30000
}

variable "web_target_cpu_percent" {
  description = "Auto scaling target: average CPU of the web service."
  type        = number
  default     = 60
}

variable "model_cache_bytes" {
  description = "SHELFWISE_MODEL_CACHE_BYTES: per-process budget for loaded model versions (web and scoring)."
  type        = number
  default     = 536870912
}

# ----------------------------------------------------------------------------- workers

variable "worker_default" {
  description = "Celery worker for the default queue (schedules, housekeeping, erasure): size, pool processes, task count."
  type = object({
    cpu         = number
    memory      = number
    concurrency = number
    count       = number
  })
  default = { cpu = 1024, memory = 2048, concurrency = 2, count = 1 }
}

variable "worker_training" {
  description = "Celery worker for the training queue: size, pool processes, task count. One training per store at a time; memory bounds the largest store's matrix."
  type = object({
    cpu         = number
    memory      = number
    concurrency = number
    count       = number
  })
  default = { cpu = 2048, memory = 8192, concurrency = 1, count = 1 }
}

variable "training_threads" {
  description = "SHELFWISE_TRAINING_THREADS: threads implicit may use per training (at most the task's vCPUs / concurrency)."
  type        = number
  default     = 2
}

variable "worker_scoring" {
  description = "Celery worker for the scoring queue (refresh after events, warm after a release): size and pool processes per task."
  type = object({
    cpu         = number
    memory      = number
    concurrency = number
  })
  default = { cpu = 2048, memory = 4096, concurrency = 2 }
}

variable "scoring_min_count" {
  description = "Fewest scoring worker tasks."
  type        = number
  default     = 2

  validation {
    condition     = var.scoring_min_count >= 1
    error_message = "scoring_min_count must be at least 1: refreshes after events must always have a consumer."
  }
}

variable "scoring_max_count" {
  description = "Most scoring worker tasks auto scaling may run."
  type        = number
  default     = 10
}

variable "scoring_target_cpu_percent" {
  description = "Auto scaling target: average CPU of the scoring service."
  type        = number
  default     = 60
}

variable "scoring_backlog_per_task" {
  description = "If > 0, also scale scoring on queue backlog: the Shelfwise/Celery QueueLength metric (queue=scoring) divided by running tasks, kept near this value. Needs that metric published to CloudWatch (docs/deploy-aws.md); 0 = CPU only."
  type        = number
  default     = 0
}

variable "beat" {
  description = "Celery beat (exactly one task): size."
  type = object({
    cpu    = number
    memory = number
  })
  default = { cpu = 256, memory = 512 }
}

variable "migrate" {
  description = "One-off migrate task (migrate_schemas --executor=multiprocessing): size."
  type = object({
    cpu    = number
    memory = number
  })
  default = { cpu = 1024, memory = 2048 }
}

variable "worker_metrics_sidecar" {
  description = "Run a one-process gunicorn next to each Celery worker, sharing its PROMETHEUS_MULTIPROC_DIR, so workers' metrics can be scraped on :8000/metrics."
  type        = bool
  default     = true
}

variable "metrics_scraper_security_group_ids" {
  description = "Security groups of the Prometheus scraper (ADOT collector, CloudWatch agent, ...) allowed to reach tasks on :8000 for /metrics."
  type        = list(string)
  default     = []
}

variable "ops_image" {
  description = "Image of the ops task (pg_dump / pg_restore / psql for backups and single-tenant restores); its PostgreSQL client major must be >= the server's."
  type        = string
  default     = "public.ecr.aws/docker/library/postgres:16"
}

# ----------------------------------------------------------------------------- PostgreSQL

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.m7g.large"
}

variable "db_engine_version" {
  description = "PostgreSQL version: the major (minor upgrades are automatic in the maintenance window)."
  type        = string
  default     = "16"
}

variable "db_allocated_storage" {
  description = "Initial gp3 storage (GiB)."
  type        = number
  default     = 100
}

variable "db_max_allocated_storage" {
  description = "Storage autoscaling ceiling (GiB)."
  type        = number
  default     = 1000
}

variable "db_backup_retention_days" {
  description = "Automated backups kept (days); also the point-in-time-restore window."
  type        = number
  default     = 14
}

variable "db_deletion_protection" {
  description = "Refuse to delete the database (turn off deliberately before a teardown)."
  type        = bool
  default     = true
}

variable "db_iam_auth" {
  description = "Allow IAM database authentication (for operators; the app uses the password in DATABASE_URL)."
  type        = bool
  default     = true
}

variable "db_performance_insights_retention_days" {
  description = "Performance Insights retention (7 is the free tier; longer in months: 31, 62, ... 731)."
  type        = number
  default     = 7
}

variable "db_monitoring_interval" {
  description = "Enhanced Monitoring interval in seconds (0 disables)."
  type        = number
  default     = 30
}

# ----------------------------------------------------------------------------- Redis

variable "redis_node_type" {
  description = "ElastiCache node type (cache, online features and the Celery broker)."
  type        = string
  default     = "cache.m7g.large"
}

variable "redis_engine_version" {
  description = "Redis engine version."
  type        = string
  default     = "7.1"
}

variable "redis_num_cache_clusters" {
  description = "Nodes in the replication group (primary + replicas, one per zone at most)."
  type        = number
  default     = 2

  validation {
    condition     = var.redis_num_cache_clusters >= 2
    error_message = "At least 2 nodes: automatic failover and Multi-AZ need a replica."
  }
}

variable "redis_snapshot_retention_days" {
  description = "Daily Redis snapshots kept. Caches rebuild themselves; the snapshot mostly protects queued tasks."
  type        = number
  default     = 1
}

# ----------------------------------------------------------------------------- models, logs, secrets

variable "model_noncurrent_version_days" {
  description = "Days an overwritten or deleted model file stays recoverable in S3. Also the delay before a customer's erasure reaches the bucket's old versions."
  type        = number
  default     = 30
}

variable "log_retention_days" {
  description = "Retention of application log groups (web, workers, migrate, ops)."
  type        = number
  default     = 90
}

variable "security_log_retention_days" {
  description = "Retention of VPC flow logs, WAF logs and ECS Exec session logs."
  type        = number
  default     = 365
}

variable "secret_recovery_window_days" {
  description = "Days a deleted secret can still be restored."
  type        = number
  default     = 7
}

variable "sentry_dsn" {
  description = "Sentry DSN; stored in Secrets Manager and injected as SENTRY_DSN. Empty: no Sentry."
  type        = string
  default     = ""
  sensitive   = true
}

variable "otel_exporter_otlp_endpoint" {
  description = "OTEL_EXPORTER_OTLP_ENDPOINT (OTLP/HTTP collector, e.g. an ADOT collector); empty: no tracing."
  type        = string
  default     = ""
}

variable "enable_waf" {
  description = "Put an AWS WAF web ACL (AWS managed rules) in front of the load balancer."
  type        = bool
  default     = true
}

variable "extra_environment" {
  description = "More plain environment variables for every task (e.g. EMAIL_HOST, DEFAULT_FROM_EMAIL, SENTRY_TRACES_SAMPLE_RATE). Never secrets."
  type        = map(string)
  default     = {}
}
