"""The release gate: whether a newly trained version may replace what the store serves, judged on
the same holdout, with the same protocol, as its alternatives."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _ndcg(metrics: Mapping[str, Any] | None) -> float:
    return float((metrics or {}).get("ndcg@10", 0.0))


def release_gate(*, algorithm: str, metrics: Mapping[str, Any], tolerance: float) -> tuple[bool, str]:
    """Promote automatically only if the model beats what the store serves without a model (the
    fallback chain as served: decayed popularity, or buy-again first where the store recommends
    repeats) and is not worse than the active version beyond ``tolerance`` (relative NDCG@10).

    Compared at the precision the reason shows: a tie is not a win (0.2000 does not beat
    0.2000). Versions trained before the fallback was measured compare with popularity."""
    model = _ndcg(metrics.get("model"))
    fallback = metrics.get("fallback") or metrics.get("popularity") or {}
    fallback_name = str(fallback.get("name", "popularity"))
    baseline = _ndcg(fallback)
    if algorithm == "popularity":
        return False, "a popularity model is the baseline itself; promote it by hand if that is what you want"
    if round(model, 4) <= round(baseline, 4):
        return False, (
            f"NDCG@10 {model:.4f} does not beat what the store serves without a model "
            f"({fallback_name}: {baseline:.4f}) on the same holdout"
        )
    active = metrics.get("active")
    if active:
        active_ndcg = _ndcg(active)
        if model < active_ndcg * (1.0 - tolerance):
            return False, (
                f"NDCG@10 {model:.4f} is more than {tolerance:.0%} below the active version's "
                f"{active_ndcg:.4f} on the same holdout"
            )
        return True, (
            f"NDCG@10 {model:.4f} beats {fallback_name} ({baseline:.4f}) and holds up against the active "
            f"version ({active_ndcg:.4f}) on the same holdout"
        )
    return (
        True,
        f"NDCG@10 {model:.4f} beats {fallback_name} ({baseline:.4f}) on the same holdout; no version was active",
    )
