"""Loaded model versions: ONNX Runtime sessions and what scoring needs, in a per-process cache
bounded by bytes.

A version is loaded lazily from its bundle (every file checked against the manifest) and kept
until the byte budget needs room (least recently used goes first) or the version stops being
served. A bundle that fails to load is remembered for a minute, so a damaged version costs one
attempt per process per minute, not one per request.
"""

from __future__ import annotations

import gc
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
from cachetools import LRUCache, TTLCache
from django.conf import settings
from django.db import DatabaseError
from django.utils import timezone

from recommendations.models import ModelVersion
from recommendations.registry.bundles import BundleError, bundle_load
from recommendations.scoring import ann
from recommendations.scoring.ann import AnnCheck, AnnIndex, SimilarIndex
from recommendations.scoring.sessions import onnx_session
from recommendations.serving.metrics import model_load_failed
from recommendations.training.algorithms import NEIGHBOURS_FOR_SIMILAR
from recommendations.training.data import ItemAttributes

if TYPE_CHECKING:
    import onnxruntime as ort  # imported lazily (see scoring.sessions.onnx_session)

logger = logging.getLogger(__name__)

FAILED_LOAD_SECONDS = 60.0
MASK_TTL_SECONDS = 30.0
MAX_MASKS = 64


@dataclass
class LoadedModel:
    tenant_id: int
    version_id: int
    version: int
    algorithm: str
    artifact_path: str  # the bundle revision loaded (an erasure writes a new one)
    kind: str  # factors | dense_history | neighbours
    scoring: ort.InferenceSession
    similar: ort.InferenceSession | None  # each item's neighbours as a table; None: ``similar_index``
    item_ids: list[str]
    item_index: dict[str, int]
    customer_index: dict[str, int]
    history: sp.csr_matrix  # known customers × items (summed event weights)
    customer_factors: np.ndarray | None
    item_factors: np.ndarray | None
    gram: np.ndarray | None
    fold_in: dict[str, float] | None
    last_event_time: float
    takes_penalty: bool  # bundles written before filters became a graph input exclude instead
    size_bytes: int
    # A two-stage version's ranker (features in, scores out), what its manifest says about it,
    # and the bought-together neighbours its source reads (items × items).
    ranker: ort.InferenceSession | None = None
    ranker_info: dict[str, Any] | None = None
    # A large catalog's index over the item factors (docs/adr/0009); None: scored exactly.
    ann: AnnIndex | None = None
    similar_index: SimilarIndex | None = None  # and its similar items, searched per request
    together: sp.csr_matrix | None = None
    attributes: ItemAttributes | None = None  # the ranker's catalog side, in item_ids' order
    loaded_at: float = field(default_factory=time.monotonic)
    # Items by how many known customers had them, most first (``by_popularity``: computed once).
    _by_popularity: tuple[np.ndarray, np.ndarray] | None = field(default=None, repr=False)
    # Penalties per filter (MAX_MASKS, each for MASK_TTL_SECONDS: the catalog changes).
    masks: TTLCache[str, np.ndarray] = field(default_factory=lambda: TTLCache(maxsize=MAX_MASKS, ttl=MASK_TTL_SECONDS))
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    def history_of(self, customer_id: str) -> tuple[np.ndarray, np.ndarray]:
        """A known customer's (item indices, weights) at training time; empty if unknown."""
        row = self.customer_index.get(customer_id)
        if row is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float32)
        start, end = self.history.indptr[row], self.history.indptr[row + 1]
        return self.history.indices[start:end].astype(np.int64), self.history.data[start:end]

    def forget_customer(self, customer_id: str) -> None:
        """Drop an erased customer from this loaded copy at once (the rewritten bundle, loaded
        when this process next re-reads its routing, no longer holds them)."""
        with self.lock:
            row = self.customer_index.pop(customer_id, None)
            if row is None:
                return
            start, end = self.history.indptr[row], self.history.indptr[row + 1]
            self.history.data[start:end] = 0.0
            self._by_popularity = None
            if self.customer_factors is not None:
                self.customer_factors[row] = 0.0

    def by_popularity(self) -> tuple[np.ndarray, np.ndarray]:
        """(item indices, customers who had each) by that count, most first, ties by index —
        computed once per loaded copy (over the history's columns: tens of milliseconds at a
        million items) and again after an erasure. Under the lock: an erasure in between must
        not leave counts that still hold the erased customer."""
        found = self._by_popularity
        if found is not None:
            return found
        with self.lock:
            if self._by_popularity is None:
                history = self.history
                counts = np.bincount(history.indices[history.data != 0], minlength=self.n_items)
                order = np.argsort(-counts, kind="stable")
                self._by_popularity = (order, counts[order].astype(np.float64))
            return self._by_popularity

    def neighbours(self, rows: list[int]) -> tuple[np.ndarray, np.ndarray]:
        """Each row's most similar items, best first: (model indices, similarities), both
        [len(rows), K], −1 and −∞ where a row has fewer."""
        if self.similar_index is not None:
            ids, scores = self.similar_index.search(NEIGHBOURS_FOR_SIMILAR, np.asarray(rows, dtype=np.int64))
            return ids, np.where(ids >= 0, scores, -np.inf).astype(np.float32)
        if self.similar is None:  # pragma: no cover - a bundle has one or the other
            raise BundleError("the version has no similar items")
        scores, index, _ids = self.similar.run(None, {"item": np.asarray(rows, dtype=np.int64)})
        return np.where(index < self.n_items, index, -1), scores

    def mask(self, key: str, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The cached penalty for a filter (``compute()`` builds it)."""
        with self.lock:
            cached = self.masks.get(key)
        if cached is not None:
            return cached
        penalty: np.ndarray = compute()
        with self.lock:
            self.masks[key] = penalty
        return penalty


def _load(tenant_id: int, version_id: int, version: int, artifact_path: str) -> LoadedModel:
    bundle = bundle_load(artifact_path)
    manifest = bundle.manifest
    scoring_info = manifest.get("scoring", {})
    item_ids = bundle.ids("items.json")
    customers = bundle.ids("customers.json")
    files = bundle.files
    model = LoadedModel(
        tenant_id=tenant_id,
        version_id=version_id,
        version=version,
        algorithm=str(manifest.get("algorithm", "")),
        artifact_path=artifact_path,
        kind=str(scoring_info.get("kind", "factors")),
        scoring=onnx_session(files["scoring.onnx"]),
        similar=onnx_session(files["similar.onnx"]) if "similar.onnx" in files else None,
        item_ids=item_ids,
        item_index={item_id: index for index, item_id in enumerate(item_ids)},
        customer_index={customer_id: index for index, customer_id in enumerate(customers)},
        history=bundle.history(),
        customer_factors=bundle.array("customer_factors.npy") if "customer_factors.npy" in files else None,
        item_factors=bundle.array("item_factors.npy") if "item_factors.npy" in files else None,
        gram=bundle.array("gram.npy") if "gram.npy" in files else None,
        fold_in=scoring_info.get("fold_in"),
        takes_penalty=False,
        last_event_time=float(manifest.get("data_counts", {}).get("last_event_time", 0.0)),
        # Sessions hold roughly the ONNX files; the arrays are decoded from the rest.
        size_bytes=sum(len(data) for data in files.values()) + len(files["scoring.onnx"]),
    )
    if "ranker.onnx" in files and "ranker" in scoring_info:
        model.ranker = onnx_session(files["ranker.onnx"])
        model.ranker_info = dict(scoring_info["ranker"])
        model.together = bundle.history("together.npz") if "together.npz" in files else None
        model.attributes = bundle.attributes() if "attributes.npz" in files else None
    if ann.FILE in files and "ann" in scoring_info and model.item_factors is not None:
        model.ann = ann.ann_load(files[ann.FILE], int(scoring_info["ann"]["nprobe"]), model.item_factors)
    similar_info = scoring_info.get("similar_ann")
    if ann.SIMILAR_FILE in files and similar_info is not None and model.item_factors is not None:
        check = AnnCheck(
            int(similar_info["queries"]), float(similar_info["recall_at_100"]), int(similar_info["nprobe"])
        )
        model.similar_index = ann.similar_load(files[ann.SIMILAR_FILE], check, model.item_factors)
        model.size_bytes += model.similar_index.unit.nbytes  # the unit vectors it scores against
    if model.similar is None and model.similar_index is None:
        raise BundleError("the bundle has neither similar.onnx nor a similar-items index")
    model.takes_penalty = any(i.name == "penalty" for i in model.scoring.get_inputs())
    return model


def version_problem_record(version_id: int, problem: str | None) -> None:
    """Say on the version's row (current store) why it cannot be served (None: it loads again),
    for GET /models and the dashboard. Best effort: a serving request never fails for it."""
    try:
        if problem is None:
            ModelVersion.objects.filter(pk=version_id, serving_problem_at__isnull=False).update(
                serving_problem="", serving_problem_at=None
            )
        else:
            ModelVersion.objects.filter(pk=version_id).update(
                serving_problem=problem[:1000], serving_problem_at=timezone.now()
            )
    except DatabaseError as exc:
        logger.warning("could not record the serving problem of version id %s: %s", version_id, exc)


class ModelCache:
    """Loaded versions of every tenant of this process, least recently used evicted first."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        # Least recently used first out, by bytes; a version larger than the whole budget is
        # still served, kept alone (``_oversized``).
        self._models: LRUCache[tuple[int, int], LoadedModel] = LRUCache(
            maxsize=budget_bytes, getsizeof=lambda model: model.size_bytes
        )
        self._oversized: tuple[tuple[int, int], LoadedModel] | None = None
        # Versions whose bundle failed to load: not tried again for FAILED_LOAD_SECONDS.
        self._failed: TTLCache[tuple[int, int, str], bool] = TTLCache(maxsize=10_000, ttl=FAILED_LOAD_SECONDS)
        self._lock = threading.Lock()
        self._loading: dict[tuple[int, int], threading.Lock] = {}

    def _cached(self, key: tuple[int, int]) -> LoadedModel | None:
        """The loaded version (marked as just used), under the lock."""
        if self._oversized is not None and self._oversized[0] == key:
            return self._oversized[1]
        return self._models.get(key)

    def get(
        self,
        *,
        tenant_id: int,
        version_id: int,
        version: int,
        artifact_path: str,
        on_loaded: Callable[[str | None], None] | None = None,
    ) -> LoadedModel | None:
        """The loaded version, loading it if needed; None if its bundle cannot be used.
        ``on_loaded`` hears of each load attempt: None when it loaded, else why not."""
        key = (tenant_id, version_id)
        with self._lock:
            model = self._current(key, artifact_path)
            if model is not None:
                return model
            if (tenant_id, version_id, artifact_path) in self._failed:
                return None
            loading = self._loading.setdefault(key, threading.Lock())
        with loading:  # one thread loads, the others wait for it
            with self._lock:
                model = self._current(key, artifact_path)
            if model is not None:
                return model
            try:
                model = _load(tenant_id, version_id, version, artifact_path)
            except (BundleError, OSError, ValueError, KeyError) as exc:
                logger.error("model version %s of tenant %s cannot be served: %s", version, tenant_id, exc)
                model_load_failed(tenant_id=tenant_id, version=version)
                if on_loaded is not None:
                    on_loaded(str(exc))
                with self._lock:
                    self._failed[(tenant_id, version_id, artifact_path)] = True
                return None
            if on_loaded is not None:
                on_loaded(None)
            settle_heap()
            with self._lock:
                if model.size_bytes > self.budget_bytes:
                    self._models.clear()
                    self._oversized = (key, model)
                else:
                    self._oversized = None
                    self._models[key] = model  # evicts the least recently used beyond the budget
            return model

    def _current(self, key: tuple[int, int], artifact_path: str) -> LoadedModel | None:
        """The loaded version if it is the bundle revision asked for; an older revision (an
        erasure rewrote the bundle) is dropped, under the lock."""
        model = self._cached(key)
        if model is None or model.artifact_path == artifact_path:
            return model
        self._drop(key)
        return None

    def _drop(self, key: tuple[int, int]) -> None:
        self._models.pop(key, None)
        if self._oversized is not None and self._oversized[0] == key:
            self._oversized = None

    def drop_tenant_versions(self, tenant_id: int, keep: dict[int, str]) -> None:
        """Forget a tenant's versions that are no longer served, or no longer from the bundle
        revision loaded (``keep``: the artifact path of each served version, by id)."""
        with self._lock:
            loaded = [(key, self._models[key]) for key in list(self._models)]
            if self._oversized is not None:
                loaded.append(self._oversized)
            for key, model in loaded:
                if key[0] == tenant_id and keep.get(key[1]) != model.artifact_path:
                    self._drop(key)

    def clear(self) -> None:
        with self._lock:
            self._models.clear()
            self._oversized = None
            self._failed.clear()

    def loaded(self) -> list[tuple[int, int]]:
        with self._lock:
            return [*self._models, *([self._oversized[0]] if self._oversized is not None else [])]


def settle_heap() -> None:
    """After a version is loaded: one full garbage collection (what earlier loads and dropped
    versions left), then every live object is moved out of the collector's sight (``gc.freeze``).
    A loaded catalog's id lists and maps hold millions of references, and every full collection
    walked them: 61 ms at 834,238 items (measured in a web worker's heap), a spike on whichever
    request triggered one. Frozen objects are still freed by reference counting when a version
    is dropped; only cycles among them wait for the next load's collection (``gc.unfreeze``)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()


_cache: ModelCache | None = None
_cache_lock = threading.Lock()


def model_cache() -> ModelCache:
    global _cache  # noqa: PLW0603 - one cache per process
    if _cache is None:
        with _cache_lock:
            if _cache is None:
                _cache = ModelCache(settings.SHELFWISE_MODEL_CACHE_BYTES)
    return _cache
