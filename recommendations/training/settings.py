"""The store's ``training`` settings: algorithm, hyper-parameters, schedule, release gate."""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from tenants.models import Tenant
from tenants.store_settings import settings_section_get

Algorithm = Literal["als", "bpr", "itemknn_cosine", "itemknn_bm25", "ease", "popularity", "auto"]
ALGORITHM_CHOICES: tuple[str, ...] = get_args(Algorithm)


class TrainingSettings(BaseModel):
    """Settings section ``training``."""

    # Strict JSON types, as documented: `true`, not "yes"; a number, not a numeric string.
    model_config = ConfigDict(extra="forbid", strict=True)

    algorithm: Algorithm = Field(
        default="auto", description="what to train; `auto` trains the candidates and keeps the best on validation"
    )
    params: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="hyper-parameters per algorithm, overriding the defaults"
    )
    tune: bool = Field(
        default=True, description="search hyper-parameters on a validation split (within the tuning budget)"
    )
    tuning_budget_seconds: int = Field(
        default=300,
        ge=10,
        le=86_400,
        description="the search stops trying parameter sets after this long (each candidate's defaults are tried)",
    )
    retune_days: int = Field(
        default=7,
        ge=1,
        le=365,
        description="retrainings reuse the recipe a search chose; a new search runs after this many days",
    )
    retune_growth: float = Field(
        default=1.0,
        ge=0,
        le=100,
        description="… or once the events grew by this share since that search (1.0: doubled)",
    )
    two_stage: bool = Field(
        default=True,
        description=(
            "also train the two-stage recommender (candidates from several sources, a learned ranker); "
            "it serves only if it beats the single-stage model on the same holdout"
        ),
    )
    exclude_seen: bool | Literal["auto"] = Field(
        default="auto",
        description=(
            "whether recommendations leave out what a customer already had when a request does not say; "
            "`auto`: leave it out unless the store's repeat rate (measured at training) is 20 % or more"
        ),
    )
    time_decay_half_life_days: float | None = Field(
        default=None, gt=0, le=3650, description="weigh older events down with this half-life (none: no decay)"
    )
    holdout_fraction: float = Field(default=0.2, ge=0.05, le=0.5, description="latest share of events held out")
    max_evaluation_customers: int = Field(
        default=10_000,
        ge=100,
        le=1_000_000,
        description="evaluate on at most this many customers of the holdout (a seeded random sample)",
    )
    schedule_hour_utc: int | None = Field(default=3, ge=0, le=23, description="retrain daily at this hour (UTC)")
    retrain_growth: float = Field(
        default=0.25, ge=0, le=10, description="also retrain when events grew by this share since the last training"
    )
    # Bounded above so that no accepted value can overflow a query (a count beyond PostgreSQL's
    # bigint failed every training) or ask for more data than any store holds.
    min_interactions: int = Field(default=100, ge=1, le=1_000_000_000)
    min_customers: int = Field(default=10, ge=1, le=100_000_000)
    min_items: int = Field(default=10, ge=2, le=100_000_000)
    auto_promote: bool = Field(default=True, description="promote a new version that passes the release gate")
    gate_tolerance: float = Field(
        default=0.02, ge=0, le=0.5, description="how much worse than the active version (relative NDCG@10) is allowed"
    )
    keep_versions: int = Field(default=5, ge=2, le=100, description="versions whose files are kept (for rollback)")

    @field_validator("params")
    @classmethod
    def _known_params_in_bounds(cls, value: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Checked when set, not first when a training runs (where a bad value would fail them all)."""
        from recommendations.training.algorithms import DEFAULT_PARAMS, PARAM_BOUNDS

        for algorithm, overrides in value.items():
            if algorithm not in DEFAULT_PARAMS:
                raise ValueError(f"unknown algorithm {algorithm!r} (one of: {', '.join(DEFAULT_PARAMS)})")
            for name, number in overrides.items():
                if name not in DEFAULT_PARAMS[algorithm]:
                    known = ", ".join(DEFAULT_PARAMS[algorithm]) or "none"
                    raise ValueError(f"{algorithm} has no parameter {name!r} (parameters: {known})")
                low, high = PARAM_BOUNDS[name]
                if isinstance(number, bool) or not isinstance(number, int | float) or not low <= number <= high:
                    raise ValueError(f"{algorithm}.{name} must be a number from {low:g} to {high:g}")
                if isinstance(DEFAULT_PARAMS[algorithm][name], int) and number != int(number):
                    raise ValueError(f"{algorithm}.{name} must be a whole number")
        return value


def training_settings_for(tenant_id: int) -> TrainingSettings:
    settings_json = Tenant.objects.filter(pk=tenant_id).values_list("settings", flat=True).first() or {}
    return settings_section_get(settings_json, "training", TrainingSettings)
