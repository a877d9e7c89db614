from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from tenants.models import Tenant


class Command(BaseCommand):
    help = "List tenants with plan, status, domain and active key count."

    def handle(self, *args: Any, **options: Any) -> None:
        tenants = Tenant.objects.select_related("plan").prefetch_related("domains", "api_keys").order_by("slug")
        rows = [("SLUG", "NAME", "PLAN", "STATUS", "DOMAIN", "KEYS", "CREATED")]
        for tenant in tenants:
            domains = [d.domain for d in tenant.domains.all() if d.is_primary]
            active_keys = sum(1 for k in tenant.api_keys.all() if k.revoked_at is None)
            rows.append(
                (
                    tenant.slug,
                    tenant.name[:30],
                    tenant.plan.code,
                    tenant.status,
                    domains[0] if domains else "-",
                    str(active_keys),
                    f"{tenant.created_at:%Y-%m-%d}",
                )
            )
        widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
        for row in rows:
            self.stdout.write("  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip())
