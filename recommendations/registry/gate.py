"""The release gate: whether a newly trained version may replace what the store serves, judged on
the same holdout as its alternatives."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def release_gate(*, algorithm: str, metrics: Mapping[str, Any], tolerance: float) -> tuple[bool, str]:
    """Promote automatically only if the model beats popularity and is not worse than the
    active version beyond ``tolerance`` (relative NDCG@10), both on the same holdout."""
    model = float(metrics.get("model", {}).get("ndcg@10", 0.0))
    baseline = float(metrics.get("popularity", {}).get("ndcg@10", 0.0))
    if algorithm == "popularity":
        return False, "a popularity model is the baseline itself; promote it by hand if that is what you want"
    # Compared at the precision the reason shows: a model at 0.0000 does not "beat" 0.0000.
    if round(model, 4) <= round(baseline, 4):
        return False, f"NDCG@10 {model:.4f} does not beat popularity's {baseline:.4f} on the same holdout"
    active = metrics.get("active")
    if active:
        active_ndcg = float(active.get("ndcg@10", 0.0))
        if model < active_ndcg * (1.0 - tolerance):
            return False, (
                f"NDCG@10 {model:.4f} is more than {tolerance:.0%} below the active version's "
                f"{active_ndcg:.4f} on the same holdout"
            )
        return True, (
            f"NDCG@10 {model:.4f} beats popularity ({baseline:.4f}) and holds up against the active version "
            f"({active_ndcg:.4f})"
        )
    return True, f"NDCG@10 {model:.4f} beats popularity ({baseline:.4f}); no version was active"
