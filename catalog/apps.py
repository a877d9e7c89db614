from django.apps import AppConfig


class CatalogConfig(AppConfig):
    name = "catalog"
    verbose_name = "Catalog, customers and events"

    def ready(self) -> None:
        from catalog.event_settings import EventSettings
        from catalog.listeners import on_event_settings_changed
        from tenants.store_settings import settings_changed_listen, settings_section_register

        settings_section_register("events", EventSettings)
        settings_changed_listen("events", on_event_settings_changed)
