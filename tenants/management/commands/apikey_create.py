from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants import keys
from tenants.management.commands._base import cli_actor, tenant_by_slug
from tenants.services import TenantError, apikey_create, apikey_signing_secret


class Command(BaseCommand):
    help = "Create an API key for a tenant and print it once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slug", help="the tenant")
        parser.add_argument("--name", required=True)
        parser.add_argument("--kind", choices=["secret", "public"], default="secret")
        parser.add_argument(
            "--scopes",
            help=f"comma-separated, from {', '.join(keys.ALL_SCOPES)} "
            f"(default secret: {','.join(keys.DEFAULT_SECRET_SCOPES)}; "
            f"public: {','.join(sorted(keys.PUBLIC_KEY_SCOPES))})",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = tenant_by_slug(options["slug"])
        scopes = [s.strip() for s in options["scopes"].split(",") if s.strip()] if options.get("scopes") else None
        try:
            api_key, raw = apikey_create(
                tenant=tenant, name=options["name"], kind=options["kind"], scopes=scopes, actor=cli_actor()
            )
        except TenantError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(
            self.style.SUCCESS(f"Created {api_key.kind} key {api_key.prefix} ({', '.join(api_key.scopes)})")
        )
        if api_key.kind == api_key.Kind.PUBLIC:
            secret = apikey_signing_secret(api_key=api_key, actor=cli_actor())
            self.stdout.write(f"signing secret (for your server's customer tokens, never in a page): {secret}")
        self.stdout.write(raw)  # last, alone on its line (scripts take the last line)
        self.stderr.write("(shown once: store it now; only its hash is kept)")
