"""What the registry and serving do when the catalog, the registry or the tenants app say
something changed (registered in RecommendationsConfig.ready)."""

from __future__ import annotations

from collections.abc import Sequence

from django_tenants.utils import tenant_context
from pydantic import BaseModel

from recommendations.registry.bundles import model_storage
from recommendations.services.erasure import erasure_record
from recommendations.serving.cache import bump_generations, refresh_claim
from recommendations.serving.config import serving_changed, serving_config
from tenants.models import Tenant

REFRESH_DEBOUNCE_MS = 500
REFRESH_CHUNK = 200
REFRESH_MAX_PER_BATCH = 1000  # a bulk import does not queue a refresh per shopper


def on_events_ingested(tenant_id: int, customer_ids: Sequence[str]) -> None:
    """New events: the customers' cached lists are stale now; fresh ones are computed on the
    ``scoring`` queue (debounced: one refresh per customer per half second)."""
    customers = list(customer_ids)
    bump_generations(tenant_id, customers)
    if serving_config(tenant_id).active is None:
        return  # nothing to precompute without a model (requests fall back to popularity)
    claimed = refresh_claim(tenant_id, customers[:REFRESH_MAX_PER_BATCH], REFRESH_DEBOUNCE_MS)
    if not claimed:
        return
    from recommendations.tasks import refresh_recommendations

    for start in range(0, len(claimed), REFRESH_CHUNK):
        refresh_recommendations.apply_async(args=(claimed[start : start + REFRESH_CHUNK],), countdown=0)


def on_features_rebuilt(tenant_id: int, customer_ids: Sequence[str]) -> None:
    """The online features were rebuilt: lists ranked while they were partial (or gone, with
    Redis' data) are recomputed on the customers' next requests."""
    customers = list(customer_ids)
    for start in range(0, len(customers), 5000):
        bump_generations(tenant_id, customers[start : start + 5000])


def on_version_promoted(tenant_id: int, name: str, version: int) -> None:
    """A new version is served: every process re-reads its routing (a new serving stamp), and
    the caches of the most active customers are warmed."""
    serving_changed(tenant_id)
    from recommendations.tasks import warm_recommendations

    with tenant_context(Tenant.objects.get(pk=tenant_id)):
        warm_recommendations.delay(version)


def on_customer_erased(tenant_id: int, customer_id: str) -> None:
    """An erased customer is declined by serving from the next request; their rows leave the
    bundles in a task (``services.erasure``)."""
    erasure_record(tenant_id, customer_id)


def on_tenant_deleted(tenant: Tenant) -> None:
    """Delete every model file of the tenant (its schema, with the registry rows, is dropped next)."""
    storage = model_storage()
    _delete_tree(storage, f"models/{tenant.slug}")


def _delete_tree(storage: object, prefix: str) -> None:
    try:
        directories, files = storage.listdir(prefix)  # type: ignore[attr-defined]
    except FileNotFoundError:
        return
    for name in files:
        storage.delete(f"{prefix}/{name}")  # type: ignore[attr-defined]
    for directory in directories:
        _delete_tree(storage, f"{prefix}/{directory}")


def on_training_settings_changed(tenant_id: int, old: BaseModel, new: BaseModel) -> None:
    """Whether lists leave out what customers had is part of the routing: re-read it."""
    if getattr(old, "exclude_seen", None) != getattr(new, "exclude_seen", None):
        serving_changed(tenant_id)
