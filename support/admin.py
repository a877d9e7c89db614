"""Django admin for support staff (public host, ``/admin/``): stores and their access.

Writes go through tenants.services / support.services (audited, caches forgotten); nothing here
deletes a tenant (``manage.py tenant_delete`` does) or shows a key's hash. Shoppers' data
(customers, events in the tenant schemas) is not in the admin; stores appear with counts only.
The ``support`` group's permissions are in support.services.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.admin.utils import unquote
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.forms import ModelForm
from django.http import HttpRequest, HttpResponse
from django.http.request import split_domain_port
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.cache import add_never_cache_headers
from django.utils.html import format_html, format_html_join
from django.utils.http import urlencode
from django.utils.safestring import SafeString

from shelfwise.http.login_throttle import ThrottledLoginMixin
from support import admin_pages
from support.services import (
    SupportError,
    domain_delete,
    domain_save,
    membership_add,
    plan_save,
    tenant_profile_update,
)
from tenants.models import ApiKey, AuditLogEntry, Domain, Invitation, Membership, Plan, Tenant, slug_validator
from tenants.services import TenantError, apikey_revoke, tenant_create, tenant_reactivate, tenant_suspend, user_actor
from tenants.team import TeamError, membership_remove, membership_role_set

admin.site.index_template = "admin/tenants/site/index.html"  # adds the cross-tenant support pages
admin.site.site_header = "Shelfwise support"
admin.site.site_title = "Shelfwise support"
admin.site.site_url = None  # the public host has no site to view


class ThrottledAdminAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    """The admin login, with the dashboard's brute-force throttling (shelfwise.http.login_throttle)."""


admin.site.login_form = ThrottledAdminAuthenticationForm


class NoWrites:
    """For admins and inlines that show records nobody adds, changes or deletes here."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def actor_of(request: HttpRequest) -> str:
    """How a support user appears in the audit log (as dashboard users do)."""
    return user_actor(request.user)


def _changelist_url(model: type[Any], **query: int | str) -> str:
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    return f"{url}?{urlencode(query)}" if query else url


def _pretty_json(value: object) -> SafeString:
    return format_html("<pre>{}</pre>", json.dumps(value, indent=2, sort_keys=True, default=str))


class TenantFilter(admin.SimpleListFilter):
    """``?tenant=<id>`` (the links from a tenant's page); shown only while it is applied, so the
    sidebar never lists every store."""

    title = "tenant"
    parameter_name = "tenant"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        value = self.value()
        if value and value.isdigit():
            slug = Tenant.objects.filter(pk=int(value)).values_list("slug", flat=True).first()
            return [(value, slug or f"#{value} (deleted)")]
        return []

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        if value is None:
            return queryset
        if not value.isdigit():
            return queryset.none()
        return queryset.filter(tenant_id=int(value))


class ReasonForm(forms.Form):
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Recorded in the audit log and on the tenant.",
    )


def _admin_form(form: forms.Form) -> helpers.AdminForm:
    """A plain form laid out as the admin lays out its own (one fieldset, all fields)."""
    fieldsets = [(None, {"fields": list(form.fields)})]
    return helpers.AdminForm(form, fieldsets, {})  # type: ignore[arg-type]  # stubs say ModelForm; any Form works


def _confirmation(
    model_admin: admin.ModelAdmin,
    request: HttpRequest,
    *,
    action: str,
    title: str,
    objects: list[Any],
    skipped: list[Any],
    skipped_note: str,
    submit: str,
    form: forms.Form | None = None,
    warning: str = "",
) -> TemplateResponse:
    """An intermediate page for an admin action (posts the action back with ``confirm``)."""
    adminform = _admin_form(form) if form is not None else None
    context = {
        **model_admin.admin_site.each_context(request),
        "title": title,
        "subtitle": None,
        "opts": model_admin.opts,
        "action": action,
        "objects": objects,
        "skipped": skipped,
        "skipped_note": skipped_note,
        "submit": submit,
        "adminform": adminform,
        "errors": form.errors if form is not None and form.is_bound else None,
        "warning": warning,
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/tenants/action_confirmation.html", context)


# --------------------------------------------------------------------------- plans


@admin.register(Plan)
class PlanAdmin(admin.ModelAdmin):
    list_display = (
        "code",
        "name",
        "max_items",
        "max_customers",
        "max_events_per_month",
        "requests_per_minute",
        "burst",
        "trainings_per_day",
        "max_api_keys",
    )
    readonly_fields = ("created_at",)

    def save_model(self, request: HttpRequest, obj: Plan, form: Any, change: bool) -> None:
        plan_save(plan=obj, actor=actor_of(request), created=not change, changed=list(form.changed_data))


# --------------------------------------------------------------------------- tenants


class DomainInline(NoWrites, admin.TabularInline):
    """The store's host names, for reading; they are changed on the Domains page (audited)."""

    model = Domain
    extra = 0
    fields = ("domain", "is_primary")
    readonly_fields = ("domain", "is_primary")
    can_delete = False
    show_change_link = True


class TenantCreateForm(forms.Form):
    slug = forms.CharField(
        max_length=40,
        validators=[slug_validator],
        help_text=f"Names its schema and its host (slug.{settings.SHELFWISE_BASE_DOMAIN}); cannot change later.",
    )
    name = forms.CharField(max_length=200, help_text="The store's display name.")
    plan = forms.ModelChoiceField(queryset=Plan.objects.all(), to_field_name="code", empty_label=None)
    owner_email = forms.EmailField(
        required=False,
        label="Owner e-mail",
        help_text="The store's first dashboard owner; a new account gets a one-time password, shown once.",
    )

    def clean_slug(self) -> str:
        slug: str = self.cleaned_data["slug"]
        if Tenant.objects.filter(slug=slug).exists():
            raise forms.ValidationError("A tenant with this slug already exists.")
        return slug

    def clean_owner_email(self) -> str:
        email: str = self.cleaned_data["owner_email"]
        user = get_user_model().objects.filter(email__iexact=email).first() if email else None
        if user is not None and (user.is_staff or user.is_superuser):
            raise forms.ValidationError("Staff accounts cannot be store members.")
        return email


class TenantChangeForm(ModelForm):
    class Meta:
        model = Tenant
        fields = ("name", "plan")


@admin.register(Tenant)
class TenantAdmin(admin.ModelAdmin):
    form = TenantChangeForm
    list_filter = ("status", "plan")
    search_fields = ("slug", "name")
    list_select_related = ("plan",)
    ordering = ("slug",)
    actions = ("suspend_tenants", "reactivate_tenants")
    fields = (
        "slug",
        "name",
        "plan",
        "status",
        "status_reason",
        "status_changed_at",
        "usage_summary",
        "usage_refreshed_at",
        "outbox_since",
        "schema_name",
        "settings_json",
        "created_at",
    )
    readonly_fields = (
        "slug",
        "status",
        "status_reason",
        "status_changed_at",
        "usage_summary",
        "usage_refreshed_at",
        "outbox_since",
        "schema_name",
        "settings_json",
        "created_at",
    )
    inlines = (DomainInline,)

    # -- permissions: never deleted here; suspension needs its own permission

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # `manage.py tenant_delete` drops the schema, artifacts and caches too

    def has_suspend_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tenants.suspend_tenant")

    # -- list

    def get_queryset(self, request: HttpRequest) -> QuerySet[Tenant]:
        return super().get_queryset(request).prefetch_related("domains")

    def get_list_display(self, request: HttpRequest) -> tuple[Any, ...]:
        # The dashboard link needs the request's scheme and port, hence a column made per request.
        def links(tenant: Tenant) -> SafeString:
            return self._links(request, tenant)

        links.short_description = "Links"  # type: ignore[attr-defined]  # admin column header
        return (
            "slug",
            "name",
            "plan",
            "status_display",
            "items",
            "customers",
            "events_this_month",
            "usage_as_of",
            links,
        )

    @admin.display(description="Status", ordering="status")
    def status_display(self, tenant: Tenant) -> SafeString:
        if tenant.is_active:
            return format_html("{}", tenant.get_status_display())
        return format_html('<strong title="{}">{}</strong>', tenant.status_reason, tenant.get_status_display())

    def _usage(self, tenant: Tenant, key: str) -> str:
        value = (tenant.usage or {}).get(key)
        return f"{value:,}" if isinstance(value, int) else "–"

    @admin.display(description="Items")
    def items(self, tenant: Tenant) -> str:
        return self._usage(tenant, "items")

    @admin.display(description="Customers")
    def customers(self, tenant: Tenant) -> str:
        return self._usage(tenant, "customers")

    @admin.display(description="Events (month)")
    def events_this_month(self, tenant: Tenant) -> str:
        return self._usage(tenant, "events_this_month")

    @admin.display(description="Usage as of", ordering="usage_refreshed_at")
    def usage_as_of(self, tenant: Tenant) -> str:
        refreshed = tenant.usage_refreshed_at
        return f"{timezone.localtime(refreshed):%Y-%m-%d %H:%M}" if refreshed else "never"

    @admin.display(description="Usage")
    def usage_summary(self, tenant: Tenant) -> SafeString:
        plan = tenant.plan
        limits = {
            "items": plan.max_items,
            "customers": plan.max_customers,
            "events_this_month": plan.max_events_per_month,
        }
        return format_html_join(
            "",
            "<div>{}: {} of {}</div>",
            (
                (key.replace("_", " ").capitalize(), self._usage(tenant, key), f"{limit:,}" if limit else "unlimited")
                for key, limit in limits.items()
            ),
        )

    @admin.display(description="Settings")
    def settings_json(self, tenant: Tenant) -> SafeString:
        return _pretty_json(tenant.settings)

    def dashboard_url(self, request: HttpRequest, tenant: Tenant) -> str | None:
        domains = list(tenant.domains.all())
        primary = next((d for d in domains if d.is_primary), domains[0] if domains else None)
        if primary is None:
            return None
        _host, port = split_domain_port(request.get_host())
        default_port = {"http": "80", "https": "443"}[request.scheme or "http"]
        suffix = f":{port}" if port and port != default_port else ""
        return f"{request.scheme}://{primary.domain}{suffix}/dashboard/"

    def related_links(self, request: HttpRequest, tenant: Tenant) -> list[tuple[str, str, str]]:
        """(label, short label, url) of the pages about this tenant."""
        links = [
            ("API keys", "keys", _changelist_url(ApiKey, tenant=tenant.pk)),
            ("Members", "team", _changelist_url(Membership, tenant=tenant.pk)),
            ("Invitations", "invitations", _changelist_url(Invitation, tenant=tenant.pk)),
            ("Audit log", "audit", _changelist_url(AuditLogEntry, tenant=tenant.pk)),
            ("Models and training jobs", "models", reverse("admin:tenants_tenant_models", args=[tenant.pk])),
        ]
        dashboard = self.dashboard_url(request, tenant)
        if dashboard:
            links.insert(0, ("Dashboard", "dashboard", dashboard))
        return links

    def _links(self, request: HttpRequest, tenant: Tenant) -> SafeString:
        return format_html_join(
            " · ",
            '<a href="{}" title="{}">{}</a>',
            ((url, label, short) for label, short, url in self.related_links(request, tenant)),
        )

    # -- change (name and plan, for who may change tenants), through the audited service

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        tenant = self.get_object(request, unquote(object_id))
        extra = dict(extra_context or {})
        if tenant is not None:
            extra["related_links"] = [(label, url) for label, _short, url in self.related_links(request, tenant)]
        return super().change_view(request, object_id, form_url, extra)

    def save_model(self, request: HttpRequest, obj: Tenant, form: Any, change: bool) -> None:
        if not change:  # pragma: no cover - adding goes through add_view
            raise PermissionDenied
        tenant_profile_update(
            tenant=obj, name=form.cleaned_data["name"], plan=form.cleaned_data["plan"], actor=actor_of(request)
        )

    # -- add: through tenants.services.tenant_create (schema, domain, first key, owner)

    def add_view(
        self, request: HttpRequest, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = TenantCreateForm(request.POST if request.method == "POST" else None, initial={"plan": "free"})
        if form.is_bound and form.is_valid():
            try:
                created = tenant_create(
                    slug=form.cleaned_data["slug"],
                    name=form.cleaned_data["name"],
                    plan_code=form.cleaned_data["plan"].code,
                    owner_email=form.cleaned_data["owner_email"] or None,
                    actor=actor_of(request),
                )
            except TenantError as exc:
                form.add_error(None, str(exc))
            else:
                self.log_addition(request, created.tenant, [{"added": {}}])
                self.message_user(request, f"Tenant {created.tenant.slug} created.", messages.SUCCESS)
                context = {
                    **self.admin_site.each_context(request),
                    "title": f"Tenant {created.tenant.slug} created",
                    "subtitle": None,
                    "opts": self.opts,
                    "original": created.tenant,
                    "created": created,
                    "domain": created.tenant.get_primary_domain(),
                    "change_url": reverse("admin:tenants_tenant_change", args=[created.tenant.pk]),
                }
                response = TemplateResponse(request, "admin/tenants/tenant/created.html", context)
                add_never_cache_headers(response)  # the key and password are shown once
                return response
        context = {
            **self.admin_site.each_context(request),
            "title": "Add tenant",
            "subtitle": None,
            "opts": self.opts,
            "adminform": _admin_form(form),
            "errors": form.errors if form.is_bound else None,
            "add": True,
            "change": False,
            "has_view_permission": self.has_view_permission(request),
        }
        return TemplateResponse(request, "admin/tenants/tenant/add_form.html", context)

    # -- suspend / reactivate

    @admin.action(description="Suspend selected tenants…", permissions=["suspend"])
    def suspend_tenants(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> TemplateResponse | None:
        return self._status_action(request, queryset, suspend=True)

    @admin.action(description="Reactivate selected tenants…", permissions=["suspend"])
    def reactivate_tenants(self, request: HttpRequest, queryset: QuerySet[Tenant]) -> TemplateResponse | None:
        return self._status_action(request, queryset, suspend=False)

    def _status_action(
        self, request: HttpRequest, queryset: QuerySet[Tenant], *, suspend: bool
    ) -> TemplateResponse | None:
        target = Tenant.Status.SUSPENDED if suspend else Tenant.Status.ACTIVE
        tenants = list(queryset.order_by("slug"))
        todo = [t for t in tenants if t.status != target]
        skipped = [t for t in tenants if t.status == target]
        verb = "suspend" if suspend else "reactivate"
        if not todo:
            self.message_user(
                request, f"Nothing to {verb}: the selected tenants are already {target}.", messages.WARNING
            )
            return None
        form = ReasonForm(request.POST if "confirm" in request.POST else None)
        if form.is_bound and form.is_valid():
            service = tenant_suspend if suspend else tenant_reactivate
            done = []
            for tenant in todo:
                try:
                    service(tenant=tenant, reason=form.cleaned_data["reason"], actor=actor_of(request))
                except TenantError as exc:
                    self.message_user(request, f"{tenant.slug}: {exc}", messages.ERROR)
                else:
                    done.append(tenant.slug)
                    self.log_change(request, tenant, f"{verb.capitalize()}d: {form.cleaned_data['reason']}")
            if done:
                self.message_user(request, f"{verb.capitalize()}d: {', '.join(done)}.", messages.SUCCESS)
            return None
        return _confirmation(
            self,
            request,
            action="suspend_tenants" if suspend else "reactivate_tenants",
            title=f"{verb.capitalize()} tenants",
            objects=todo,
            skipped=skipped,
            skipped_note=f"already {target}, left as they are",
            submit=f"{verb.capitalize()} {len(todo)} tenant{'s' if len(todo) != 1 else ''}",
            form=form,
            warning=(
                "Their API keys are refused from the next request on and their dashboards close."
                if suspend
                else "Their API keys and dashboards work again from the next request on."
            ),
        )

    # -- extra pages: a tenant's models and jobs; training jobs of all tenants

    def get_urls(self) -> list[URLPattern]:
        wrap = self.admin_site.admin_view
        custom = [
            path(
                "training-jobs/",
                wrap(lambda request: admin_pages.training_jobs_view(self, request)),
                name="tenants_tenant_training_jobs",
            ),
            path(
                "<path:object_id>/models/",
                wrap(lambda request, object_id: admin_pages.tenant_models_view(self, request, unquote(object_id))),
                name="tenants_tenant_models",
            ),
        ]
        return [*custom, *super().get_urls()]


# --------------------------------------------------------------------------- domains


class DomainForm(ModelForm):
    class Meta:
        model = Domain
        fields = ("domain", "tenant", "is_primary")

    def clean_domain(self) -> str:
        domain = self.cleaned_data["domain"].strip().lower().rstrip(".")
        if domain in settings.SHELFWISE_PUBLIC_HOSTS or domain == settings.SHELFWISE_BASE_DOMAIN:
            raise forms.ValidationError("This host serves the public site (this admin); it cannot belong to a tenant.")
        labels = domain.split(".")
        if len(domain) > 253 or len(labels) < 2 or not all(_hostname_label(label) for label in labels):
            raise forms.ValidationError("Enter a host name such as shop.example.com (no scheme, port or path).")
        return domain


def _hostname_label(label: str) -> bool:
    return (
        0 < len(label) <= 63
        and label.replace("-", "").isalnum()
        and label.isascii()
        and label[0] != "-"
        and label[-1] != "-"
    )


@admin.register(Domain)
class DomainAdmin(admin.ModelAdmin):
    form = DomainForm
    list_display = ("domain", "tenant", "is_primary")
    list_filter = (TenantFilter, "is_primary")
    search_fields = ("domain", "tenant__slug")
    list_select_related = ("tenant",)
    autocomplete_fields = ("tenant",)

    def save_model(self, request: HttpRequest, obj: Domain, form: Any, change: bool) -> None:
        domain_save(domain=obj, actor=actor_of(request), created=not change)

    def delete_model(self, request: HttpRequest, obj: Domain) -> None:
        domain_delete(domain=obj, actor=actor_of(request))

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Domain]) -> None:
        for domain in queryset.select_related("tenant"):
            domain_delete(domain=domain, actor=actor_of(request))


# --------------------------------------------------------------------------- API keys


class RevokedFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "Active"), ("revoked", "Revoked")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        if self.value() == "active":
            return queryset.filter(revoked_at__isnull=True)
        if self.value() == "revoked":
            return queryset.filter(revoked_at__isnull=False)
        return queryset


@admin.register(ApiKey)
class ApiKeyAdmin(admin.ModelAdmin):
    """Keys are read-only here (never their hash) and can only be revoked; they are created where
    their secret can be shown once (the dashboard, `manage.py apikey_create`)."""

    list_display = ("prefix", "tenant", "name", "kind", "scope_list", "last_used_at", "revoked_at")
    list_filter = (TenantFilter, RevokedFilter, "kind")
    search_fields = ("id", "name", "tenant__slug")
    list_select_related = ("tenant",)
    fields = (
        "prefix",
        "tenant",
        "name",
        "kind",
        "scope_list",
        "created_at",
        "created_by",
        "last_used_at",
        "revoked_at",
    )
    readonly_fields = fields
    actions = ("revoke_keys",)

    @admin.display(description="Scopes")
    def scope_list(self, key: ApiKey) -> str:
        return ", ".join(key.scopes)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[ApiKey], search_term: str
    ) -> tuple[QuerySet[ApiKey], bool]:
        # A key's prefix (sk_live_<id>) or the whole key pasted by a customer finds it by its id.
        term = search_term.strip()
        for prefix in ("sk_live_", "pk_live_"):
            if term.startswith(prefix):
                term = term[len(prefix) :].split("_", 1)[0]
        return super().get_search_results(request, queryset, term)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # revoke instead: a deleted key could still be served from the key cache

    def has_revoke_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("tenants.revoke_apikey")

    @admin.action(description="Revoke selected API keys…", permissions=["revoke"])
    def revoke_keys(self, request: HttpRequest, queryset: QuerySet[ApiKey]) -> TemplateResponse | None:
        keys = list(queryset.select_related("tenant").order_by("tenant__slug", "created_at"))
        todo = [k for k in keys if not k.is_revoked]
        skipped = [k for k in keys if k.is_revoked]
        if not todo:
            self.message_user(request, "Nothing to revoke: the selected keys are already revoked.", messages.WARNING)
            return None
        if "confirm" in request.POST:
            for key in todo:
                apikey_revoke(api_key=key, actor=actor_of(request))
                self.log_change(request, key, "Revoked")
            self.message_user(request, f"Revoked: {', '.join(k.prefix for k in todo)}.", messages.SUCCESS)
            return None
        return _confirmation(
            self,
            request,
            action="revoke_keys",
            title="Revoke API keys",
            objects=todo,
            skipped=skipped,
            skipped_note="already revoked",
            submit=f"Revoke {len(todo)} key{'s' if len(todo) != 1 else ''}",
            warning="Revoked keys are refused from the next request on. This cannot be undone.",
        )


# --------------------------------------------------------------------------- memberships


class MembershipAddForm(ModelForm):
    email = forms.EmailField(label="User e-mail", help_text="An existing dashboard user (not a staff account).")

    class Meta:
        model = Membership
        fields = ("email", "tenant", "role")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        email, tenant = cleaned.get("email"), cleaned.get("tenant")
        if not email:
            return cleaned
        user = get_user_model().objects.filter(email__iexact=email).first()
        if user is None:
            self.add_error("email", "No user with this e-mail; invite them from the store's dashboard instead.")
        elif user.is_staff or user.is_superuser:
            self.add_error("email", "Staff accounts cannot be store members.")
        elif tenant is not None and Membership.objects.filter(user=user, tenant=tenant).exists():
            self.add_error("email", "Already a member of this store; change their role instead.")
        else:
            self.instance.user = user
        return cleaned


class MembershipChangeForm(ModelForm):
    class Meta:
        model = Membership
        fields = ("role",)

    def clean_role(self) -> str:
        role: str = self.cleaned_data["role"]
        current = self.instance
        if (
            current.pk
            and current.role == Membership.Role.OWNER
            and role != Membership.Role.OWNER
            and not Membership.objects.filter(tenant_id=current.tenant_id, role=Membership.Role.OWNER)
            .exclude(pk=current.pk)
            .exists()
        ):
            raise forms.ValidationError("The store must keep at least one owner.")
        return role


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ("user_email", "tenant", "role", "created_at")
    list_filter = (TenantFilter, "role")
    search_fields = ("user__email", "tenant__slug")
    list_select_related = ("user", "tenant")
    autocomplete_fields = ("tenant",)

    @admin.display(description="User", ordering="user__email")
    def user_email(self, membership: Membership) -> str:
        return membership.user.email or membership.user.get_username()

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return ["email", "tenant", "role"] if obj is None else ["user_email", "tenant", "role", "created_at"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> tuple[str, ...]:
        return () if obj is None else ("user_email", "tenant", "created_at")

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        kwargs["form"] = MembershipAddForm if obj is None else MembershipChangeForm
        return super().get_form(request, obj, change, **kwargs)

    def save_model(self, request: HttpRequest, obj: Membership, form: Any, change: bool) -> None:
        try:
            if change:
                membership_role_set(membership=obj, role=obj.role, actor=actor_of(request))
            else:
                created = membership_add(tenant=obj.tenant, user=obj.user, role=obj.role, actor=actor_of(request))
                obj.pk, obj.created_at = created.pk, created.created_at
                obj._state.adding = False
        except (SupportError, TeamError) as exc:  # a race with another change since the form was checked
            raise PermissionDenied(str(exc)) from exc

    def delete_model(self, request: HttpRequest, obj: Membership) -> None:
        try:
            membership_remove(membership=obj, actor=actor_of(request))
        except TeamError as exc:  # the store's last owner
            raise PermissionDenied(str(exc)) from exc

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Membership]) -> None:
        for membership in queryset.select_related("user", "tenant"):
            self.delete_model(request, membership)


# --------------------------------------------------------------------------- read-only records


class ReadOnlyAdmin(NoWrites, admin.ModelAdmin):
    """Viewable by who has the view permission; added, changed or deleted by nobody here."""


@admin.register(Invitation)
class InvitationAdmin(ReadOnlyAdmin):
    list_display = ("email", "tenant", "role", "invited_by", "created_at", "expires_at", "accepted_at", "revoked_at")
    list_filter = (TenantFilter, "role")
    search_fields = ("email", "tenant__slug")
    list_select_related = ("tenant", "invited_by")
    # Never the token's hash.
    fields = ("email", "tenant", "role", "invited_by", "created_at", "expires_at", "accepted_at", "revoked_at")
    readonly_fields = fields


@admin.register(AuditLogEntry)
class AuditLogEntryAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "tenant_slug", "actor", "action", "target")
    list_filter = (TenantFilter, "action")
    search_fields = ("tenant_slug", "actor", "action", "target", "request_id")
    date_hierarchy = "created_at"
    fields = ("created_at", "tenant", "tenant_slug", "actor", "action", "target", "metadata_json", "request_id")
    readonly_fields = fields

    @admin.display(description="Metadata")
    def metadata_json(self, entry: AuditLogEntry) -> SafeString:
        return _pretty_json(entry.metadata)
