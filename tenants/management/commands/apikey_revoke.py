from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from tenants import keys
from tenants.management.commands._base import cli_actor
from tenants.models import ApiKey
from tenants.services import apikey_revoke


class Command(BaseCommand):
    help = "Revoke an API key, given its prefix (sk_live_<id>) or the whole key. Takes effect at once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("key", help="the key's prefix (sk_live_<id>), its id, or the full key")

    def handle(self, *args: Any, **options: Any) -> None:
        given = options["key"].strip()
        parsed = keys.parse_key(given)
        key_id = parsed.key_id if parsed else given.split("_")[2] if given.count("_") >= 2 else given
        api_key = ApiKey.objects.select_related("tenant").filter(pk=key_id).first()
        if api_key is None:
            raise CommandError(f"no API key {given!r}")
        api_key = apikey_revoke(api_key=api_key, actor=cli_actor())
        self.stdout.write(self.style.SUCCESS(f"revoked {api_key.prefix} of {api_key.tenant.slug}"))
