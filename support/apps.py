from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


class SupportConfig(AppConfig):
    """Support staff's Django admin: stores, their access and their models across schemas."""

    name = "support"
    verbose_name = "Support"

    def ready(self) -> None:
        from support.services import support_group_sync_after_migrate

        # Once per migrate of the tenants app (its tables exist then; public schema only). This
        # app has no models of its own, so Django sends it no post_migrate signal.
        post_migrate.connect(
            support_group_sync_after_migrate, sender=apps.get_app_config("tenants"), dispatch_uid="support.group"
        )
