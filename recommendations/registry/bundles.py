"""Model bundles on Django's storage API: ``models/<tenant>/<name>/<version>/``.

A bundle holds the ONNX graphs (a large catalog's similar items: a verified cosine index,
``similar.faiss``, instead of ``similar.onnx``; with a two-stage version: ``ranker.onnx``, the bought-together
neighbours ``together.npz`` and the items' prices and categories as the training read them,
``attributes.npz``, described under ``ranker`` in the manifest), the id maps, what
serving needs for known customers (their factors or histories), what fold-in needs (item
factors, their Gram matrix) and a manifest written last with the sha256 of every file. A
version is usable only once every file has been read back and matched its checksum; loading
checks them again, so a corrupted or half-written bundle is never served.
"""

from __future__ import annotations

import hashlib
import io
import json
import platform
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import numpy as np
import scipy.sparse as sp
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, storages
from django.utils import timezone

from recommendations.ranking.features import FEATURES_VERSION
from recommendations.ranking.ranker import ranker_onnx, ranker_verify
from recommendations.scoring import ann
from recommendations.training.algorithms import Fitted, need, similar_items
from recommendations.training.data import ItemAttributes
from recommendations.training.export import OPSET, scoring_graph, similar_graph, verify
from recommendations.training.pipeline import PipelineResult

FORMAT = 1
MANIFEST = "manifest.json"


class BundleError(Exception):
    """A bundle that cannot be written, or that fails verification (the message says which file)."""


def model_storage() -> Storage:
    return storages["models"]


def bundle_prefix(tenant_slug: str, name: str, version: int) -> str:
    return f"models/{tenant_slug}/{name}/{version}"


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _npz(**arrays: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)  # type: ignore[arg-type]
    return buffer.getvalue()


def _libraries() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in ("implicit", "numpy", "scipy", "onnx", "onnxruntime", "lightgbm", "onnxmltools", "faiss-cpu", "django"):
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:  # pragma: no cover - all are dependencies
            versions[name] = "unknown"
    return versions


def bundle_files(result: PipelineResult) -> tuple[dict[str, bytes], dict[str, Any]]:
    """Every file of a bundle (in memory) and what the manifest says about scoring."""
    fitted: Fitted = result.fitted
    interactions = result.interactions
    item_ids = interactions.item_ids
    scoring = scoring_graph(fitted, item_ids).SerializeToString()
    history = sp.csr_matrix(interactions.matrix)
    files: dict[str, bytes] = {
        "scoring.onnx": scoring,
        "items.json": json.dumps([str(i) for i in item_ids]).encode(),
        "customers.json": json.dumps([str(c) for c in interactions.customer_ids]).encode(),
        # The known customers' interactions: excluded from their recommendations, and the
        # input of history-based models. Weights are kept for fold-in.
        "history.npz": _npz(
            indptr=history.indptr.astype(np.int64),
            indices=history.indices.astype(np.int32),
            data=history.data.astype(np.float32),
            shape=np.array(history.shape, dtype=np.int64),
        ),
    }
    info: dict[str, Any] = {
        "kind": fitted.kind,
        "opset": OPSET,
        "items": len(item_ids),
        "customers": len(interactions.customer_ids),
    }
    large = fitted.kind == "factors" and fitted.algorithm != "popularity" and ann.ann_wanted(len(item_ids))
    if large:  # similar items searched at request time (docs/adr/0009), not a table of every item's
        files[ann.SIMILAR_FILE], info["similar_ann"] = _similar_ann(need(fitted.item_factors, "item factors"))
    else:
        similar_ids, similar_scores = similar_items(fitted)
        files["similar.onnx"] = similar_graph(similar_ids, similar_scores, item_ids).SerializeToString()
    if fitted.kind == "factors":
        item_factors = need(fitted.item_factors, "item factors")
        files["customer_factors.npy"] = _npy(need(fitted.user_factors, "customer factors").astype(np.float32))
        files["item_factors.npy"] = _npy(item_factors.astype(np.float32))
        info["dimensions"] = int(item_factors.shape[1])
        if large:
            files[ann.FILE], info["ann"] = _ann(item_factors, need(fitted.user_factors, "customer factors"))
        if "gram" in fitted.extra:
            files["gram.npy"] = _npy(fitted.extra["gram"])
            info["fold_in"] = {
                "method": "als",
                "regularization": float(fitted.params["regularization"]),
                "alpha": float(fitted.params["alpha"]),
            }
    elif fitted.kind == "dense_history":
        info["dimensions"] = len(item_ids)
    stage = result.two_stage
    if stage is not None:
        together = sp.csr_matrix(result.together if result.together is not None else (len(item_ids), len(item_ids)))
        files["ranker.onnx"] = ranker_onnx(stage.ranker)
        files["together.npz"] = _npz(
            indptr=together.indptr.astype(np.int64),
            indices=together.indices.astype(np.int32),
            data=together.data.astype(np.float32),
            shape=np.array(together.shape, dtype=np.int64),
        )
        if stage.attributes is not None:  # the catalog's side of its features, in item_ids' order
            categories = sp.csr_matrix(stage.attributes.categories)
            files["attributes.npz"] = _npz(
                price=stage.attributes.price.astype(np.float64),
                indptr=categories.indptr.astype(np.int64),
                indices=categories.indices.astype(np.int32),
                data=categories.data.astype(np.float32),
                shape=np.array(categories.shape, dtype=np.int64),
            )
        info["ranker"] = {
            **stage.summary(),
            "features_version": FEATURES_VERSION,
            "feature_names": list(stage.ranker.feature_names),
            "importance": stage.ranker.importance(),
            "repeats": bool(result.data_counts.get("repeat_aware", False)),
        }
    return files, info


def _ann(item_factors: np.ndarray, customer_factors: np.ndarray) -> tuple[bytes, dict[str, Any]]:
    """The version's ANN index over its item factors, checked against exact search for sampled
    customers' vectors (docs/adr/0009); ``bundle_write`` refuses it below the recall target."""
    index = ann.ann_build(item_factors)
    rng = np.random.default_rng(0)
    sample = rng.choice(len(customer_factors), size=min(ann.VERIFY_QUERIES, len(customer_factors)), replace=False)
    check = ann.ann_verify(index, item_factors, customer_factors[sample])
    return index.to_bytes(), {
        "library": "faiss",
        "index": "IVFFlat",
        "metric": "inner_product (Euclidean over [x, sqrt(M^2 - |x|^2)])",
        "lists": int(index.index.nlist),
        "nprobe": check.nprobe,
        "queries": check.queries,
        "recall_at_100": round(check.recall, 4),
    }


def _similar_ann(item_factors: np.ndarray) -> tuple[bytes, dict[str, Any]]:
    """The version's cosine index for similar items, checked against exact search for sampled
    items; ``bundle_write`` refuses it below the recall target."""
    built = ann.similar_index(item_factors)
    return built.to_bytes(), {
        "library": "faiss",
        "index": "IVFFlat",
        "metric": "cosine (Euclidean over unit vectors)",
        "lists": int(built.index.index.nlist),
        "nprobe": built.check.nprobe,
        "queries": built.check.queries,
        "recall_at_100": round(built.check.recall, 4),
    }


def bundle_write(*, prefix: str, result: PipelineResult, meta: dict[str, Any]) -> dict[str, Any]:
    """Verify the scoring graph, write every file, then the manifest; read all back and check.

    Returns the manifest. Raises BundleError (nothing usable is left: the caller marks the
    version failed and the files are removed)."""
    files, scoring = bundle_files(result)
    check = verify(files["scoring.onnx"], result.fitted, sp.csr_matrix(result.interactions.matrix))
    if not check.ok:
        raise BundleError(
            f"ONNX Runtime's top-k differs from numpy's for {check.mismatches} of {check.customers} customers"
        )
    verification: dict[str, Any] = {"customers": check.customers, "max_score_error": check.max_score_error}
    for key, index, of in (("ann", "ANN index", "customers"), ("similar_ann", "similar-items index", "items")):
        found = scoring.get(key)
        if found is None:
            continue
        if found["recall_at_100"] < ann.RECALL_TARGET:
            raise BundleError(
                f"the {index} found {found['recall_at_100']:.3f} of the exact top-100 for {found['queries']} "
                f"{of} (needs {ann.RECALL_TARGET}), searching {found['nprobe']} of its {found['lists']} lists"
            )
        verification[key] = {"queries": found["queries"], "recall_at_100": found["recall_at_100"]}
    if result.two_stage is not None:
        ranked = ranker_verify(files["ranker.onnx"], result.two_stage.ranker, result.two_stage.sample)
        if not ranked.ok:
            raise BundleError(
                f"the ranker's ONNX scores differ from LightGBM's by up to {ranked.max_error:.2e} "
                f"on {ranked.rows} feature rows"
            )
        verification["ranker"] = {
            "rows": ranked.rows, "missing_rows": ranked.missing_rows, "max_score_error": ranked.max_error,
        }  # fmt: skip
    storage = model_storage()
    bundle_delete(prefix)  # a retried attempt starts clean
    manifest: dict[str, Any] = {
        "format": FORMAT,
        **meta,
        "algorithm": result.algorithm,
        "params": result.params,
        "data_counts": result.data_counts,
        "metrics": result.metrics,
        "timings": result.timings,
        "scoring": scoring,
        "verification": verification,
        "libraries": _libraries(),
        "written_at": timezone.now().isoformat(),
        "files": {},
    }
    for name, data in files.items():
        _save(storage, f"{prefix}/{name}", data)
        manifest["files"][name] = {"sha256": _sha256(data), "bytes": len(data)}
    _save(storage, f"{prefix}/{MANIFEST}", json.dumps(manifest, indent=2, sort_keys=True).encode())
    problems = bundle_verify(prefix)
    if problems:
        raise BundleError("bundle did not verify after writing: " + "; ".join(problems))
    return manifest


def bundle_revision_prefix(prefix: str) -> str:
    """Where a rewritten copy of the bundle at ``prefix`` goes: ``<version dir>/r<n+1>``."""
    base, _, last = prefix.rpartition("/")
    if base and last.startswith("r") and last[1:].isdigit():
        return f"{base}/r{int(last[1:]) + 1}"
    return f"{prefix}/r2"


def bundle_drop_customers(prefix: str, drop: Callable[[str], bool]) -> str | None:
    """Write a new revision of the bundle without the customers for whom ``drop(id)`` is true
    (their id, history and factors) and return its prefix; None if it holds none of them."""
    bundle = bundle_load(prefix)
    customers = bundle.ids("customers.json")
    keep = np.array([not drop(customer) for customer in customers], dtype=bool)
    if keep.all():
        return None
    kept = [customer for customer, kept_here in zip(customers, keep, strict=True) if kept_here]
    history = sp.csr_matrix(bundle.history()[keep])
    replaced = {
        "customers.json": json.dumps(kept).encode(),
        "history.npz": _npz(
            indptr=history.indptr.astype(np.int64),
            indices=history.indices.astype(np.int32),
            data=history.data.astype(np.float32),
            shape=np.array(history.shape, dtype=np.int64),
        ),
    }
    if "customer_factors.npy" in bundle.files:
        replaced["customer_factors.npy"] = _npy(bundle.array("customer_factors.npy")[keep])
    return _bundle_rewrite(prefix, bundle, replaced, {"customers": len(kept)})


def _bundle_rewrite(prefix: str, bundle: LoadedBundle, replaced: dict[str, bytes], scoring: dict[str, Any]) -> str:
    """Write a new revision of a bundle — its files with ``replaced`` ones swapped in, the
    manifest last, all read back and checked — and return its prefix. The original is left as
    it was: serving switches when the version row points at the new prefix."""
    target = bundle_revision_prefix(prefix)
    storage = model_storage()
    bundle_delete(target)  # what a crashed attempt left
    manifest = json.loads(json.dumps(bundle.manifest))
    for name, original in bundle.files.items():
        data = replaced.get(name, original)
        _save(storage, f"{target}/{name}", data)
        manifest["files"][name] = {"sha256": _sha256(data), "bytes": len(data)}
    manifest.setdefault("scoring", {}).update(scoring)
    manifest["rewritten_at"] = timezone.now().isoformat()
    _save(storage, f"{target}/{MANIFEST}", json.dumps(manifest, indent=2, sort_keys=True).encode())
    problems = bundle_verify(target)
    if problems:
        bundle_delete(target)
        raise BundleError("rewritten bundle did not verify: " + "; ".join(problems))
    return target


def _save(storage: Storage, name: str, data: bytes) -> None:
    saved = storage.save(name, ContentFile(data))
    if saved != name:  # the storage renamed it: a stale file was in the way
        storage.delete(saved)
        raise BundleError(f"could not write {name} (a file with that name already exists)")


def bundle_read_manifest(prefix: str) -> dict[str, Any]:
    storage = model_storage()
    name = f"{prefix}/{MANIFEST}"
    if not storage.exists(name):
        raise BundleError(f"{name} is missing")
    with storage.open(name, "rb") as handle:
        manifest: dict[str, Any] = json.loads(handle.read())
    return manifest


def bundle_read(prefix: str, name: str, manifest: dict[str, Any]) -> bytes:
    """One file of the bundle, checked against the manifest's sha256."""
    expected = manifest["files"].get(name)
    if expected is None:
        raise BundleError(f"{name} is not part of the bundle")
    storage = model_storage()
    path = f"{prefix}/{name}"
    if not storage.exists(path):
        raise BundleError(f"{path} is missing")
    with storage.open(path, "rb") as handle:
        data: bytes = handle.read()
    if _sha256(data) != expected["sha256"]:
        raise BundleError(f"{path} does not match its checksum")
    return data


def bundle_verify(prefix: str) -> list[str]:
    """Problems with a bundle (missing files, checksum mismatches); empty when it is intact."""
    try:
        manifest = bundle_read_manifest(prefix)
    except (BundleError, ValueError) as exc:
        return [str(exc)]
    problems = []
    for name in manifest.get("files", {}):
        try:
            bundle_read(prefix, name, manifest)
        except BundleError as exc:
            problems.append(str(exc))
    return problems


def bundle_delete(prefix: str) -> None:
    storage = model_storage()
    try:
        _directories, names = storage.listdir(prefix)
    except FileNotFoundError:
        return
    for name in names:
        storage.delete(f"{prefix}/{name}")


@dataclass
class LoadedBundle:
    manifest: dict[str, Any]
    files: dict[str, bytes]

    def array(self, name: str) -> np.ndarray:
        return np.load(io.BytesIO(self.files[name]), allow_pickle=False)

    def history(self, name: str = "history.npz") -> sp.csr_matrix:
        parts = np.load(io.BytesIO(self.files[name]), allow_pickle=False)
        return sp.csr_matrix(
            (parts["data"], parts["indices"], parts["indptr"]), shape=tuple(int(n) for n in parts["shape"])
        )

    def attributes(self, name: str = "attributes.npz") -> ItemAttributes:
        parts = np.load(io.BytesIO(self.files[name]), allow_pickle=False)
        categories = sp.csr_matrix(
            (parts["data"], parts["indices"], parts["indptr"]), shape=tuple(int(n) for n in parts["shape"])
        )
        return ItemAttributes(np.asarray(parts["price"], dtype=np.float64), categories)

    def ids(self, name: str) -> list[str]:
        ids: list[str] = json.loads(self.files[name])
        return ids


def bundle_load(prefix: str) -> LoadedBundle:
    """Every file of a bundle, each checked against the manifest (BundleError otherwise)."""
    manifest = bundle_read_manifest(prefix)
    return LoadedBundle(manifest, {name: bundle_read(prefix, name, manifest) for name in manifest["files"]})
