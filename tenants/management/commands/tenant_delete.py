from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants.management.commands._base import cli_actor, tenant_by_slug
from tenants.services import tenant_delete


class Command(BaseCommand):
    help = "Delete a tenant and everything keyed by it (schema, keys, caches, model artifacts)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug")
        parser.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_by_slug(options["slug"])
        if not options["yes"]:
            answer = input(f"Delete tenant {tenant.slug} and ALL its data? Type the slug to confirm: ")
            if answer.strip() != tenant.slug:
                raise CommandError("not confirmed; nothing deleted")
        tenant_delete(tenant=tenant, actor=cli_actor())
        self.stdout.write(self.style.SUCCESS(f"deleted {options['slug']}"))
