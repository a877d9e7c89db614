from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.management.commands._base import cli_actor, tenant_by_slug
from tenants.services import TenantError, tenant_reactivate, tenant_suspend


class Command(BaseCommand):
    help = "Suspend a tenant (its API keys answer 403 at once), or reactivate it with --reactivate."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--reason", required=True, help="recorded in the audit log")
        parser.add_argument("--reactivate", action="store_true", help="lift a suspension instead")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_by_slug(options["slug"])
        try:
            if options["reactivate"]:
                tenant = tenant_reactivate(tenant=tenant, reason=options["reason"], actor=cli_actor())
            else:
                tenant = tenant_suspend(tenant=tenant, reason=options["reason"], actor=cli_actor())
        except TenantError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(f"{tenant.slug}: {tenant.status}"))
