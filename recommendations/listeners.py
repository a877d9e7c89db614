"""What the registry does when the catalog or the tenants app tells it something changed."""

from __future__ import annotations

from django.db import transaction

from recommendations.artifacts import model_storage
from recommendations.models import ErasedCustomer
from recommendations.services.registry import customer_hash
from tenants.models import Tenant


def on_customer_erased(tenant_id: int, customer_id: str) -> None:
    """An erased customer is ignored by serving at once; their rows leave the bundles in a task."""
    from recommendations.tasks import erase_customer_from_models

    ErasedCustomer.objects.update_or_create(customer_hash=customer_hash(customer_id), defaults={})
    transaction.on_commit(lambda: erase_customer_from_models.delay(customer_id))


def on_tenant_deleted(tenant: Tenant) -> None:
    """Delete every model file of the tenant (its schema, with the registry rows, is dropped next)."""
    storage = model_storage()
    prefix = f"models/{tenant.slug}"
    _delete_tree(storage, prefix)


def _delete_tree(storage: object, prefix: str) -> None:
    try:
        directories, files = storage.listdir(prefix)  # type: ignore[attr-defined]
    except FileNotFoundError:
        return
    for name in files:
        storage.delete(f"{prefix}/{name}")  # type: ignore[attr-defined]
    for directory in directories:
        _delete_tree(storage, f"{prefix}/{directory}")
