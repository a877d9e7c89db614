from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from support.services import SUPPORT_GROUP, SupportError, support_user_create
from tenants.management.commands._base import cli_actor


class Command(BaseCommand):
    help = (
        f"Create (or update) a support account for Django admin: staff, not superuser, in the {SUPPORT_GROUP!r} "
        "group only. A new account's password is generated and printed once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--email", required=True, help="the support person's e-mail (also the login)")
        parser.add_argument(
            "--reset-password", action="store_true", help="generate a new password for an existing account"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            result = support_user_create(
                email=options["email"], actor=cli_actor(), reset_password=options["reset_password"]
            )
        except SupportError as exc:
            raise CommandError(str(exc)) from exc
        user = result.user
        verb = "Created" if result.created else "Updated"
        self.stdout.write(self.style.SUCCESS(f"{verb} support account {user.email} (group {SUPPORT_GROUP!r})"))
        self.stdout.write(f"  login:    {user.get_username()}  at /admin/ on the public host")
        if result.password:
            self.stdout.write(f"  password: {result.password}  (shown once)")
        else:
            self.stdout.write("  password: unchanged (--reset-password sets a new one)")
