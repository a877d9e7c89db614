from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import tenant_context

from recommendations.management.commands._base import tenant_by_slug
from recommendations.models import ModelVersion
from recommendations.services.registry import PromotionRefused, model_version_promote, model_version_rollback
from tenants.management.commands._base import cli_actor


class Command(BaseCommand):
    help = "Promote a model version (serve it): model_promote 3 --tenant demo; or --rollback to the previous one."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("number", nargs="?", type=int, help="the version to promote")
        parser.add_argument("--tenant", required=True)
        parser.add_argument("--rollback", action="store_true", help="promote the previously active version")
        parser.add_argument("--reason", default="")

    def handle(self, *args: Any, **options: Any) -> None:
        if (options["number"] is None) == (not options["rollback"]):
            raise CommandError("give a version number or --rollback")
        with tenant_context(tenant_by_slug(options["tenant"])):
            try:
                if options["rollback"]:
                    version = model_version_rollback(actor=cli_actor(), reason=options["reason"])
                else:
                    target = ModelVersion.objects.filter(version=options["number"]).first()
                    if target is None:
                        raise CommandError(f"no version {options['number']}")
                    version = model_version_promote(version=target, actor=cli_actor(), reason=options["reason"])
            except PromotionRefused as exc:
                raise CommandError(str(exc)) from exc
            self.stdout.write(self.style.SUCCESS(f"version {version.version} ({version.algorithm}) is active"))
