# Who may talk to whom, and nothing else:
#   internet ──443/80──▶ alb ──8000──▶ web
#   web, workers ──5432──▶ db      web, workers ──6379──▶ redis
#   web, workers ──443──▶ AWS APIs / Sentry / OTLP (through NAT or the S3 endpoint)
#   scraper ──8000──▶ web, workers (/metrics, bearer token)

resource "aws_security_group" "alb" {
  name        = "${local.name}-alb"
  description = "Load balancer: HTTPS (and HTTP, redirected) from the internet"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-alb" }
}

resource "aws_security_group" "web" {
  name        = "${local.name}-web"
  description = "Web tasks: port 8000 from the load balancer"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-web" }
}

resource "aws_security_group" "worker" {
  name        = "${local.name}-worker"
  description = "Celery workers, beat, migrate and ops tasks: no inbound except metrics scrapes"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-worker" }
}

resource "aws_security_group" "db" {
  name        = "${local.name}-db"
  description = "PostgreSQL: 5432 from web and worker tasks"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-db" }
}

resource "aws_security_group" "redis" {
  name        = "${local.name}-redis"
  description = "Redis: 6379 from web and worker tasks"
  vpc_id      = aws_vpc.main.id

  tags = { Name = "${local.name}-redis" }
}

# ----------------------------------------------------------------------------- load balancer

resource "aws_vpc_security_group_ingress_rule" "alb_https" {
  for_each = toset(var.alb_ingress_cidrs)

  security_group_id = aws_security_group.alb.id
  description       = "HTTPS from clients"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_ingress_rule" "alb_http" {
  #checkov:skip=CKV_AWS_260:Port 80 only answers a 301 to HTTPS (aws_lb_listener.http); nothing is served over plain HTTP.
  for_each = toset(var.alb_ingress_cidrs)

  security_group_id = aws_security_group.alb.id
  description       = "HTTP from clients, redirected to HTTPS"
  cidr_ipv4         = each.value
  ip_protocol       = "tcp"
  from_port         = 80
  to_port           = 80
}

resource "aws_vpc_security_group_egress_rule" "alb_to_web" {
  security_group_id            = aws_security_group.alb.id
  description                  = "Forward to web tasks"
  referenced_security_group_id = aws_security_group.web.id
  ip_protocol                  = "tcp"
  from_port                    = 8000
  to_port                      = 8000
}

# ----------------------------------------------------------------------------- tasks

resource "aws_vpc_security_group_ingress_rule" "web_from_alb" {
  security_group_id            = aws_security_group.web.id
  description                  = "gunicorn from the load balancer"
  referenced_security_group_id = aws_security_group.alb.id
  ip_protocol                  = "tcp"
  from_port                    = 8000
  to_port                      = 8000
}

locals {
  task_security_groups = {
    web    = aws_security_group.web.id
    worker = aws_security_group.worker.id
  }
  scrape_rules = {
    for pair in setproduct(keys(local.task_security_groups), var.metrics_scraper_security_group_ids) :
    "${pair[0]}-${pair[1]}" => { task = pair[0], scraper = pair[1] }
  }
}

resource "aws_vpc_security_group_ingress_rule" "metrics_scrape" {
  for_each = local.scrape_rules

  security_group_id            = local.task_security_groups[each.value.task]
  description                  = "Prometheus scrape of /metrics"
  referenced_security_group_id = each.value.scraper
  ip_protocol                  = "tcp"
  from_port                    = 8000
  to_port                      = 8000
}

resource "aws_vpc_security_group_egress_rule" "tasks_https" {
  for_each = local.task_security_groups

  security_group_id = each.value
  description       = "HTTPS to AWS APIs (ECR, Secrets Manager, S3, CloudWatch), Sentry and the OTLP collector"
  cidr_ipv4         = "0.0.0.0/0"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
}

resource "aws_vpc_security_group_egress_rule" "tasks_db" {
  for_each = local.task_security_groups

  security_group_id            = each.value
  description                  = "PostgreSQL"
  referenced_security_group_id = aws_security_group.db.id
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_vpc_security_group_egress_rule" "tasks_redis" {
  for_each = local.task_security_groups

  security_group_id            = each.value
  description                  = "Redis (cache and Celery broker)"
  referenced_security_group_id = aws_security_group.redis.id
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
}

# An OTLP/HTTP collector inside the VPC usually listens on 4318.
resource "aws_vpc_security_group_egress_rule" "tasks_otlp" {
  for_each = var.otel_exporter_otlp_endpoint == "" ? {} : local.task_security_groups

  security_group_id = each.value
  description       = "OTLP/HTTP traces to a collector in the VPC"
  cidr_ipv4         = var.vpc_cidr
  ip_protocol       = "tcp"
  from_port         = 4318
  to_port           = 4318
}

# ----------------------------------------------------------------------------- data stores

resource "aws_vpc_security_group_ingress_rule" "db_from_tasks" {
  for_each = local.task_security_groups

  security_group_id            = aws_security_group.db.id
  description                  = "PostgreSQL from ${each.key} tasks"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
}

resource "aws_vpc_security_group_ingress_rule" "redis_from_tasks" {
  for_each = local.task_security_groups

  security_group_id            = aws_security_group.redis.id
  description                  = "Redis from ${each.key} tasks"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
}
