from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django_tenants.utils import tenant_context

from recommendations.management.commands._base import tenant_by_slug
from recommendations.models import ModelVersion


def _figure(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"


class Command(BaseCommand):
    help = "List a store's model versions with status and metrics next to popularity."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--tenant", required=True)

    def handle(self, *args: Any, **options: Any) -> None:
        with tenant_context(tenant_by_slug(options["tenant"])):
            self.stdout.write(
                f"{'VERSION':>7}  {'ALGORITHM':<15} {'STATUS':<9} {'NDCG@10':>8} {'POPULAR':>8}  TRIGGER   CREATED"
            )
            for version in ModelVersion.objects.order_by("-version")[:50]:
                model = _figure(version.metrics.get("model", {}).get("ndcg@10"))
                baseline = _figure(version.metrics.get("popularity", {}).get("ndcg@10"))
                self.stdout.write(
                    f"{version.version:>7}  {version.algorithm:<15} {version.status:<9} {model:>8} {baseline:>8}  "
                    f"{version.trigger:<9} {version.created_at:%Y-%m-%d %H:%M}"
                )
