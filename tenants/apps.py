from django.apps import AppConfig
from django.db.models.signals import post_migrate


class TenantsConfig(AppConfig):
    name = "tenants"
    verbose_name = "Tenants and access"

    def ready(self) -> None:
        from tenants import openapi  # noqa: F401 - registers the OpenAPI auth extension
        from tenants.support import support_group_sync_after_migrate

        # Once per migrate (sender: this app), after the tables exist; public schema only.
        post_migrate.connect(support_group_sync_after_migrate, sender=self, dispatch_uid="tenants.support_group")
