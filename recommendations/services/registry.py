"""The model registry's writes: promotion (and rollback), retention, erasure from bundles."""

from __future__ import annotations

import hashlib
import io
import json
import logging

import numpy as np
import scipy.sparse as sp
from django.db import transaction
from django.utils import timezone

from recommendations.models import ErasedCustomer, ModelVersion
from recommendations.registry.bundles import (
    MANIFEST,
    BundleError,
    bundle_delete,
    bundle_load,
    bundle_verify,
    model_storage,
)
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
    oldest = ModelVersion.objects.filter(artifacts_purged_at__isnull=True).order_by("finished_at").first()
    if oldest is None or oldest.finished_at is None:
        ErasedCustomer.objects.all().delete()
    else:  # tombstones older than every stored model protect nothing any more
        ErasedCustomer.objects.filter(erased_at__lt=oldest.finished_at).delete()
    return purged


def erasure_hash(external_id: str) -> str:
    """How an erased customer is recorded (ErasedCustomer): a hash, never the id itself."""
    return hashlib.sha256(external_id.encode()).hexdigest()


def customer_erase_from_models(*, external_id: str) -> int:
    """Remove an erased customer's row (id, history, factors) from every stored bundle; returns
    how many bundles were rewritten. Serving ignores the customer meanwhile (ErasedCustomer)."""
    ErasedCustomer.objects.update_or_create(customer_hash=erasure_hash(external_id), defaults={})
    rewritten = 0
    for version in ModelVersion.objects.filter(artifacts_purged_at__isnull=True).exclude(artifact_path=""):
        try:
            if _bundle_drop_customer(version.artifact_path, external_id):
                rewritten += 1
        except BundleError:
            logger.warning("bundle of version %s is damaged; erasure skipped it", version.version)
    return rewritten


def _bundle_drop_customer(prefix: str, external_id: str) -> bool:
    bundle = bundle_load(prefix)
    customers = bundle.ids("customers.json")
    if external_id not in customers:
        return False
    row = customers.index(external_id)
    keep = np.array([index != row for index in range(len(customers))])
    history = bundle.history()[keep]
    replaced: dict[str, bytes] = {"customers.json": json.dumps(customers[:row] + customers[row + 1 :]).encode()}
    buffer = io.BytesIO()
    history = sp.csr_matrix(history)
    np.savez(buffer, indptr=history.indptr.astype(np.int64), indices=history.indices.astype(np.int32),
             data=history.data.astype(np.float32), shape=np.array(history.shape, dtype=np.int64))  # fmt: skip
    replaced["history.npz"] = buffer.getvalue()
    if "customer_factors.npy" in bundle.files:
        factors = bundle.array("customer_factors.npy")[keep]
        buffer = io.BytesIO()
        np.save(buffer, factors, allow_pickle=False)
        replaced["customer_factors.npy"] = buffer.getvalue()
    storage = model_storage()
    manifest = bundle.manifest
    from django.core.files.base import ContentFile

    for name, data in replaced.items():
        storage.delete(f"{prefix}/{name}")
        storage.save(f"{prefix}/{name}", ContentFile(data))
        manifest["files"][name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    manifest.setdefault("scoring", {})["customers"] = len(customers) - 1
    storage.delete(f"{prefix}/{MANIFEST}")
    storage.save(f"{prefix}/{MANIFEST}", ContentFile(json.dumps(manifest, indent=2, sort_keys=True).encode()))
    return True
