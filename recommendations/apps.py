from django.apps import AppConfig


class RecommendationsConfig(AppConfig):
    name = "recommendations"
    verbose_name = "Models and recommendations"

    def ready(self) -> None:
        from catalog.hooks import customer_erased_listen, events_ingested_listen, features_rebuilt_listen
        from recommendations.listeners import (
            on_customer_erased,
            on_events_ingested,
            on_features_rebuilt,
            on_tenant_deleted,
            on_training_settings_changed,
            on_version_promoted,
        )
        from recommendations.registry.hooks import version_promoted_listen
        from recommendations.serving.metrics import active_model_gauges
        from recommendations.training.settings import TrainingSettings
        from shelfwise.observability.metrics import scrape_source_register
        from tenants.services import tenant_deletion_hook_register
        from tenants.store_settings import settings_changed_listen, settings_section_register

        settings_section_register("training", TrainingSettings)
        settings_changed_listen("training", on_training_settings_changed)
        customer_erased_listen(on_customer_erased)
        events_ingested_listen(on_events_ingested)
        features_rebuilt_listen(on_features_rebuilt)
        version_promoted_listen(on_version_promoted)
        tenant_deletion_hook_register(on_tenant_deleted)
        scrape_source_register(active_model_gauges)
