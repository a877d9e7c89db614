"""A customer's ALS vector from their interactions, computed exactly as implicit computes a user
row: used when serving (new events since the model was trained, sessions) and verified against
implicit in the tests."""

from __future__ import annotations

import numpy as np


def als_fold_in(
    item_factors: np.ndarray,
    gram: np.ndarray,
    *,
    regularization: float,
    alpha: float,
    items: np.ndarray,
    values: np.ndarray,
) -> np.ndarray:
    """A customer's ALS vector from their interactions, exactly as implicit computes a user row:
    ``(YᵀY + λI + Σ (c−1) y yᵀ)⁻¹ Σ c y`` with confidence ``c = alpha · value``."""
    confidence = alpha * np.asarray(values, dtype=np.float64)
    factors = item_factors[np.asarray(items, dtype=np.int64)].astype(np.float64)
    d = item_factors.shape[1]
    a = gram.astype(np.float64) + regularization * np.eye(d) + (factors.T * (confidence - 1.0)) @ factors
    b = (factors.T * np.where(confidence > 0, confidence, 0.0)).sum(axis=1)
    return np.linalg.solve(a, b).astype(np.float32)
