# Shelfwise on AWS: the production shape (see docs/deploy-aws.md).
#
# State lives in S3 (encrypted, versioned, locked). The backend is configured at init time so
# one configuration serves staging and production:
#   terraform init -backend-config=env/prod.s3.tfbackend
# where the file holds bucket, key, region, encrypt = true, kms_key_id and use_lockfile = true.
# The state contains the generated secrets (Django SECRET_KEY, database password, Redis token),
# so the state bucket must be as tightly held as Secrets Manager itself.

terraform {
  required_version = ">= 1.10.0"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.80"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.6"
    }
  }

  backend "s3" {}
}
