"""The model registry's writes: promotion (and rollback), retention, erasure from bundles."""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from catalog.online_features import features_forget_customer
from recommendations.models import ErasedCustomer, ModelVersion, erasure_hash
from recommendations.registry.bundles import BundleError, bundle_delete, bundle_drop_customers, bundle_verify
from recommendations.registry.hooks import version_promoted_notify
from recommendations.serving.config import serving_changed
from tenants.current import tenant_current
from tenants.services import audit_record

logger = logging.getLogger(__name__)


class PromotionRefused(ValueError):
    """A version that cannot be promoted (the message says why)."""


@transaction.atomic
def model_version_promote(
    *, version: ModelVersion, actor: str, reason: str = "", automatic: bool = False
) -> ModelVersion:
    """Make ``version`` the one served (the active one is retired). Atomic and audited; the
    bundle's files are checked first, so a damaged version is never promoted."""
    locked = ModelVersion.objects.select_for_update().get(pk=version.pk)
    if locked.status == ModelVersion.Status.ACTIVE:
        return locked
    if not locked.promotable:
        state = "its files were removed by retention" if locked.artifacts_purged_at else f"it is {locked.status}"
        raise PromotionRefused(f"version {locked.version} cannot be promoted: {state}")
    problems = bundle_verify(locked.artifact_path)
    if problems:
        raise PromotionRefused(f"version {locked.version} cannot be promoted: {problems[0]}")
    now = timezone.now()
    current = (
        ModelVersion.objects.select_for_update().filter(name=locked.name, status=ModelVersion.Status.ACTIVE).first()
    )
    if current is not None:
        current.status = ModelVersion.Status.RETIRED
        current.retired_at = now
        current.save(update_fields=["status", "retired_at"])
    locked.status = ModelVersion.Status.ACTIVE
    locked.promoted_at = now
    locked.retired_at = None
    locked.save(update_fields=["status", "promoted_at", "retired_at"])
    tenant = tenant_current()
    audit_record(
        action="model.promote",
        actor=actor,
        tenant=tenant,
        target=f"model:{locked.name}:v{locked.version}",
        metadata={
            "previous": current.version if current else None,
            "reason": reason[:500],
            "automatic": automatic,
        },
    )
    tenant_id, name, number = tenant.pk, locked.name, locked.version
    transaction.on_commit(lambda: version_promoted_notify(tenant_id, name, number), robust=True)
    return locked


def model_version_rollback(*, name: str = "default", actor: str, reason: str = "") -> ModelVersion:
    """Promote the version that was active before the current one."""
    previous = (
        ModelVersion.objects.filter(name=name, status=ModelVersion.Status.RETIRED, artifacts_purged_at__isnull=True)
        .order_by("-retired_at", "-version")
        .first()
    )
    if previous is None:
        raise PromotionRefused("there is no earlier version with its files to roll back to")
    return model_version_promote(version=previous, actor=actor, reason=reason or "rollback")


def model_versions_retain(*, name: str = "default", keep: int) -> list[int]:
    """Remove the files of all but the newest ``keep`` versions (never the active one).
    Returns the versions whose files were removed."""
    purged = []
    candidates = ModelVersion.objects.filter(name=name, artifacts_purged_at__isnull=True).exclude(
        status__in=[ModelVersion.Status.ACTIVE, ModelVersion.Status.QUEUED, ModelVersion.Status.TRAINING]
    )
    kept = set(
        ModelVersion.objects.filter(name=name)
        .exclude(status=ModelVersion.Status.FAILED)
        .order_by("-version")
        .values_list("version", flat=True)[:keep]
    )
    for version in candidates.order_by("version"):
        if version.version in kept and version.status != ModelVersion.Status.FAILED:
            continue
        if version.artifact_path:
            bundle_delete(version.artifact_path)
        version.artifacts_purged_at = timezone.now()
        version.save(update_fields=["artifacts_purged_at"])
        purged.append(version.version)
    if purged:
        serving_changed(tenant_current().pk)  # an experiment may have pointed at a purged version
    # A tombstone protects against models whose data was read before the erasure (a version is
    # created before its training reads data): once every stored or running one is newer, and
    # the clean-up is done (pending ones are still declined), it protects nothing any more.
    oldest = (
        ModelVersion.objects.filter(artifacts_purged_at__isnull=True)
        .exclude(status=ModelVersion.Status.FAILED)
        .order_by("created_at")
        .values_list("created_at", flat=True)
        .first()
    )
    cleaned = ErasedCustomer.objects.filter(cleaned_at__isnull=False)
    if oldest is not None:
        cleaned = cleaned.filter(erased_at__lt=oldest)
    cleaned.delete()
    return purged


def customer_erase_from_models(*, customer_hash: str) -> int:
    """Remove an erased customer (by ``erasure_hash``) from every stored bundle; returns how
    many bundles were rewritten. Then their Redis traces are deleted once more and the erasure
    is marked clean: serving stops declining the id (a returning shopper starts afresh)."""
    rewritten = 0
    stored = ModelVersion.objects.filter(artifacts_purged_at__isnull=True).exclude(artifact_path="")
    for version_id in stored.values_list("pk", flat=True):
        try:
            if model_version_drop_customers(version_id=version_id, hashes={customer_hash}):
                rewritten += 1
        except BundleError as exc:
            # Damaged (never served) or still being written (the training drops erased
            # customers itself once it has written it).
            logger.warning("erasure skipped the bundle of version id %s: %s", version_id, exc)
    tombstone = ErasedCustomer.objects.filter(customer_hash=customer_hash).first()
    if tombstone is not None and tombstone.cleaned_at is None:
        if tombstone.online_key:
            # Also what a request racing the erasure may have cached since (raises without
            # Redis: the task is retried, the tombstone stays pending).
            features_forget_customer(tenant_current().pk, tombstone.online_key)
        ErasedCustomer.objects.filter(pk=tombstone.pk, erased_at=tombstone.erased_at).update(cleaned_at=timezone.now())
    if rewritten:
        serving_changed(tenant_current().pk)  # every process loads the rewritten bundles
    return rewritten


def model_version_drop_customers(*, version_id: int, hashes: set[str]) -> bool:
    """Rewrite a version's bundle without the customers whose ``erasure_hash`` is in ``hashes``
    as a new revision, then point the version at it; False if the bundle holds none of them.
    The version row is locked meanwhile (concurrent erasures take turns); the old revision's
    files are deleted once the switch is committed."""
    with transaction.atomic():
        version = ModelVersion.objects.select_for_update().filter(pk=version_id).exclude(artifact_path="").first()
        if version is None or version.artifacts_purged_at is not None:
            return False
        prefix = version.artifact_path
        target = bundle_drop_customers(prefix, lambda customer: erasure_hash(customer) in hashes)
        if target is None:
            return False
        ModelVersion.objects.filter(pk=version.pk).update(artifact_path=target)
        transaction.on_commit(lambda: bundle_delete(prefix), robust=True)
    return True
