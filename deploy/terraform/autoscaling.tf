# Application Auto Scaling. Two target-tracking policies on one service scale out when either
# asks and scale in only when both allow.
#
# web:            ALB requests per task (the serving cost is per request) and CPU (a cache-miss
#                 burst costs ~4.7x a hit in CPU; see docs/deploy-aws.md, capacity plan).
# worker-scoring: CPU, and optionally the scoring queue's backlog per task — a metric the
#                 app exposes on /metrics (shelfwise_celery_queue_length{queue="scoring"}) and
#                 that has to be published to CloudWatch first (docs/deploy-aws.md).

resource "aws_appautoscaling_target" "web" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.web.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.web_min_count
  max_capacity       = var.web_max_count
}

resource "aws_appautoscaling_policy" "web_requests" {
  name               = "${local.name}-web-requests"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.web.service_namespace
  resource_id        = aws_appautoscaling_target.web.resource_id
  scalable_dimension = aws_appautoscaling_target.web.scalable_dimension

  target_tracking_scaling_policy_configuration {
    predefined_metric_specification {
      predefined_metric_type = "ALBRequestCountPerTarget"
      resource_label         = "${aws_lb.main.arn_suffix}/${aws_lb_target_group.web.arn_suffix}"
    }
    target_value       = var.web_target_requests_per_minute
    scale_out_cooldown = 60
    scale_in_cooldown  = 300
  }
}

resource "aws_appautoscaling_policy" "web_cpu" {
  name               = "${local.name}-web-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.web.service_namespace
  resource_id        = aws_appautoscaling_target.web.resource_id
  scalable_dimension = aws_appautoscaling_target.web.scalable_dimension

  target_tracking_scaling_policy_configuration {
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
    target_value       = var.web_target_cpu_percent
    scale_out_cooldown = 60
    scale_in_cooldown  = 300
  }
}

resource "aws_appautoscaling_target" "scoring" {
  service_namespace  = "ecs"
  resource_id        = "service/${aws_ecs_cluster.main.name}/${aws_ecs_service.scoring.name}"
  scalable_dimension = "ecs:service:DesiredCount"
  min_capacity       = var.scoring_min_count
  max_capacity       = var.scoring_max_count
}

resource "aws_appautoscaling_policy" "scoring_cpu" {
  name               = "${local.name}-scoring-cpu"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.scoring.service_namespace
  resource_id        = aws_appautoscaling_target.scoring.resource_id
  scalable_dimension = aws_appautoscaling_target.scoring.scalable_dimension

  target_tracking_scaling_policy_configuration {
    predefined_metric_specification {
      predefined_metric_type = "ECSServiceAverageCPUUtilization"
    }
    target_value       = var.scoring_target_cpu_percent
    scale_out_cooldown = 60
    scale_in_cooldown  = 300
  }
}

# Backlog per task = queued scoring tasks / running scoring tasks. A queue length alone does not
# fall as tasks are added, so target tracking needs it divided by the task count.
resource "aws_appautoscaling_policy" "scoring_backlog" {
  count = var.scoring_backlog_per_task > 0 ? 1 : 0

  name               = "${local.name}-scoring-backlog"
  policy_type        = "TargetTrackingScaling"
  service_namespace  = aws_appautoscaling_target.scoring.service_namespace
  resource_id        = aws_appautoscaling_target.scoring.resource_id
  scalable_dimension = aws_appautoscaling_target.scoring.scalable_dimension

  target_tracking_scaling_policy_configuration {
    customized_metric_specification {
      metrics {
        id          = "queued"
        return_data = false
        metric_stat {
          stat = "Maximum"
          metric {
            namespace   = "Shelfwise"
            metric_name = "shelfwise_celery_queue_length"
            dimensions {
              name  = "queue"
              value = "scoring"
            }
          }
        }
      }
      metrics {
        id          = "tasks"
        return_data = false
        metric_stat {
          stat = "Average"
          metric {
            namespace   = "ECS/ContainerInsights"
            metric_name = "RunningTaskCount"
            dimensions {
              name  = "ClusterName"
              value = aws_ecs_cluster.main.name
            }
            dimensions {
              name  = "ServiceName"
              value = aws_ecs_service.scoring.name
            }
          }
        }
      }
      metrics {
        id          = "backlog_per_task"
        label       = "Queued scoring tasks per running scoring worker"
        expression  = "queued / tasks" # tasks >= scoring_min_count >= 1
        return_data = true
      }
    }
    target_value       = var.scoring_backlog_per_task
    scale_out_cooldown = 60
    scale_in_cooldown  = 300
  }
}
