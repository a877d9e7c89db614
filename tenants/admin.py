"""Django admin for support staff: plans, tenants, domains, API keys, memberships, audit log."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from tenants.models import ApiKey, AuditLogEntry, Domain, Membership, Plan, Tenant


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = ("code", "name", "max_items", "max_events_per_month", "requests_per_minute", "max_api_keys")


class DomainInline(admin.TabularInline):
    model = Domain
    extra = 0


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    list_display = ("slug", "name", "plan", "status", "created_at")
    list_filter = ("status", "plan")
    search_fields = ("slug", "name")
    readonly_fields = ("schema_name", "status", "status_reason", "status_changed_at", "usage", "usage_refreshed_at")
    inlines = (DomainInline,)


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    list_display = ("prefix", "tenant", "name", "kind", "scopes", "last_used_at", "revoked_at")
    list_filter = ("kind",)
    search_fields = ("id", "name", "tenant__slug")
    exclude = ("secret_hash",)
    readonly_fields = ("id", "tenant", "kind", "scopes", "created_at", "created_by", "last_used_at", "revoked_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # keys are created where their secret can be shown once (CLI, dashboard)


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user", "tenant", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("user__email", "tenant__slug")


@admin.register(AuditLogEntry)
class AuditLogEntryAdmin(admin.ModelAdmin):
    list_display = ("created_at", "tenant_slug", "actor", "action", "target")
    list_filter = ("action",)
    search_fields = ("tenant_slug", "actor", "target")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
