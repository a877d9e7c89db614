# The image repository (docker/Dockerfile builds one image for every role). Tags are immutable:
# a tag names one release, so a rollback is a deploy of the previous tag.

resource "aws_ecr_repository" "app" {
  count = var.image_repository_url == "" ? 1 : 0

  name                 = "shelfwise-${var.environment}"
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = aws_kms_key.main.arn
  }
}

resource "aws_ecr_lifecycle_policy" "app" {
  count = var.image_repository_url == "" ? 1 : 0

  repository = aws_ecr_repository.app[0].name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the newest 50 images (releases to roll back to)"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = 50
      }
      action = { type = "expire" }
    }]
  })
}

locals {
  image_repository = var.image_repository_url != "" ? var.image_repository_url : aws_ecr_repository.app[0].repository_url
}
