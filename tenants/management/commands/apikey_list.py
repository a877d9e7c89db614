from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from tenants.management.commands._base import tenant_by_slug
from tenants.models import ApiKey


class Command(BaseCommand):
    help = "List a tenant's API keys (prefix, scopes, last used; never the secret)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_by_slug(options["slug"])
        for key in ApiKey.objects.filter(tenant=tenant).order_by("created_at"):
            state = f"revoked {key.revoked_at:%Y-%m-%d %H:%M}" if key.revoked_at else "active"
            used = f"{key.last_used_at:%Y-%m-%d %H:%M}" if key.last_used_at else "never"
            self.stdout.write(
                f"{key.prefix}  {key.name[:30]:<30}  {','.join(key.scopes):<24}  last used {used:<16}  {state}"
            )
