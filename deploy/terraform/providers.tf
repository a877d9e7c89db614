provider "aws" {
  region = var.region

  default_tags {
    tags = merge(var.tags, {
      Project     = "shelfwise"
      Environment = var.environment
      ManagedBy   = "terraform"
    })
  }
}

data "aws_caller_identity" "current" {}

data "aws_partition" "current" {}

locals {
  name       = "shelfwise-${var.environment}"
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  azs        = var.availability_zones
  az_count   = length(var.availability_zones)
}
