"""Provision the demo store for `make run` (idempotent).

Creates the `demo` tenant with an owner login, a Django-admin superuser and a support-staff
account (the least-privilege `support` group), imports the UCI
Online Retail data (`data/online-retail/`) into it the first time, and keeps the credentials
and the demo API key in `.dev/demo.json` (git-ignored, mode 0600, development only) so every
`make run` can print them again; keys and passwords are otherwise shown once.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django_tenants.utils import tenant_context

from catalog.importers import event_reader, item_reader
from catalog.models import Event
from catalog.services.imports import events_import, items_import
from catalog.tasks import usage_refresh
from recommendations.models import ModelVersion, TrainingJob
from recommendations.services.training import training_job_request
from support.services import support_user_create
from tenants import keys
from tenants.models import ApiKey, Membership, Tenant
from tenants.services import apikey_create, tenant_create

DEMO_SLUG = "demo"
DEMO_DATA = settings.BASE_DIR / "data" / "online-retail" / "online_retail.csv.xz"
OWNER_EMAIL = "owner@demo.shelfwise.test"
ADMIN_EMAIL = "admin@shelfwise.test"  # superuser
SUPPORT_EMAIL = "agent@shelfwise.test"  # the support group only


def _key_still_valid(raw: str | None) -> bool:
    parsed = keys.parse_key(raw or "")
    if parsed is None:
        return False
    row = ApiKey.objects.filter(pk=parsed.key_id, revoked_at__isnull=True, tenant__slug=DEMO_SLUG).first()
    return row is not None and keys.secret_matches(parsed.secret, row.secret_hash)


def _user_with_password(email: str, password: str | None, *, superuser: bool = False) -> tuple[Any, str]:
    user_model = get_user_model()
    user = user_model.objects.filter(email__iexact=email).first()
    if user is not None and password and user.check_password(password):
        return user, password
    password = secrets.token_urlsafe(12)
    if user is None:
        user = user_model.objects.create_user(username=email, email=email, password=password)
    else:
        user.set_password(password)
    if superuser:
        user.is_staff = True
        user.is_superuser = True
    user.save()
    return user, password


class Command(BaseCommand):
    help = "Create (or reuse) the demo store, its login and API key, for `make run`."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--file", type=Path, default=settings.SHELFWISE_DEMO_FILE)
        parser.add_argument("--data", type=Path, default=DEMO_DATA, help="Online Retail CSV to import")
        parser.add_argument("--skip-import", action="store_true", help="do not import the demo data")

    def handle(self, *args: Any, **options: Any) -> None:
        if settings.PRODUCTION:
            raise CommandError("demo_setup is for development only")
        path: Path = options["file"]
        saved: dict[str, Any] = json.loads(path.read_text()) if path.exists() else {}
        actor = "cli:demo_setup"

        tenant = Tenant.objects.filter(slug=DEMO_SLUG).first()
        if tenant is None:
            created = tenant_create(slug=DEMO_SLUG, name="Demo Gift Shop", plan_code="pro", actor=actor)
            tenant, saved["api_key"] = created.tenant, created.raw_key
            self.stdout.write(f"Created the demo store ({tenant.schema_name})")
        elif not _key_still_valid(saved.get("api_key")):
            _row, saved["api_key"] = apikey_create(tenant=tenant, name="make run", actor=actor)

        owner, saved["password"] = _user_with_password(OWNER_EMAIL, saved.get("password"))
        Membership.objects.update_or_create(user=owner, tenant=tenant, defaults={"role": Membership.Role.OWNER})
        _admin, saved["admin_password"] = _user_with_password(ADMIN_EMAIL, saved.get("admin_password"), superuser=True)
        saved["support_password"] = self._support_account(saved.get("support_password"), actor)
        saved.update(
            {"slug": DEMO_SLUG, "email": OWNER_EMAIL, "admin_email": ADMIN_EMAIL, "support_email": SUPPORT_EMAIL}
        )
        if not options["skip_import"]:
            self._import(tenant, options["data"])
            self._first_model(tenant)
        with tenant_context(tenant):
            usage_refresh()  # the admin's usage columns, now rather than at the next beat

        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            json.dump(saved, handle, indent=2)
        self.stdout.write(self.style.SUCCESS(f"Demo store ready: {DEMO_SLUG} (credentials in {path})"))

    def _support_account(self, password: str | None, actor: str) -> str:
        user = get_user_model().objects.filter(email__iexact=SUPPORT_EMAIL).first()
        if user is not None and password and user.check_password(password):
            return password
        created = support_user_create(email=SUPPORT_EMAIL, actor=actor, reset_password=True)
        assert created.password is not None  # noqa: S101 - reset_password always sets one
        return created.password

    def _import(self, tenant: Tenant, data: Path) -> None:
        """Import the Online Retail data once (a store that already has events is left alone)."""
        with tenant_context(tenant):
            if Event.objects.exists():
                return
            self.stdout.write(f"Importing the demo store from {data.name} (once; ~1 minute)…")
            items = items_import(rows=item_reader("online-retail", data))
            self.stdout.write(f"  items: {items.created} created")
            events = events_import(rows=event_reader("online-retail", data))
            self.stdout.write(
                f"  events: {events.stored} purchases stored from {events.read} invoice lines "
                f"({sum(events.skipped.values())} skipped: "
                + ", ".join(f"{count} {reason}" for reason, count in events.skipped.most_common())
                + ")"
            )

    def _first_model(self, tenant: Tenant) -> None:
        """Queue the first training (the training worker picks it up once `make run` starts it)."""
        with tenant_context(tenant):
            if ModelVersion.objects.exists() or TrainingJob.objects.filter(active_slot=True).exists():
                return
            job = training_job_request(trigger=ModelVersion.Trigger.CLI, requested_by="cli:demo_setup")
            self.stdout.write(f"Queued the demo store's first model training (job {job.id})")
