from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.management.commands._base import cli_actor
from tenants.services import TenantError, tenant_create


class Command(BaseCommand):
    help = "Create a tenant (store): schema, domain <slug>.<base domain>, and a first API key (printed once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="lowercase letters, digits, hyphens; 3-40 characters")
        parser.add_argument("--name", required=True, help="the store's display name")
        parser.add_argument("--plan", default="free", help="plan code (default: free)")
        parser.add_argument("--owner-email", help="dashboard owner; created with a one-time password if new")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            created = tenant_create(
                slug=options["slug"],
                name=options["name"],
                plan_code=options["plan"],
                owner_email=options.get("owner_email"),
                actor=cli_actor(),
            )
        except TenantError as exc:
            raise CommandError(str(exc)) from exc
        tenant = created.tenant
        domain = tenant.get_primary_domain()
        self.stdout.write(self.style.SUCCESS(f"Created tenant {tenant.slug} ({tenant.name}), plan {tenant.plan.code}"))
        self.stdout.write(f"  schema:  {tenant.schema_name}")
        self.stdout.write(f"  domain:  {domain.domain if domain else '-'}")
        self.stdout.write(f"  API key: {created.raw_key}")
        self.stdout.write("           (shown once: store it now; only its hash is kept)")
        if created.owner is not None:
            self.stdout.write(f"  owner:   {created.owner.email}")
            if created.owner_password:
                self.stdout.write(f"  password: {created.owner_password}  (shown once)")
