"""The API's request and response shapes: TypedDicts generated from the OpenAPI schema
(``_schema.py``), under the names the client uses. Plain dicts at run time."""

from ._core import ClientOptions
from ._schema import AlgorithmEnum as Algorithm
from ._schema import BatchOut as BatchRecommendations
from ._schema import BatchRequest as BatchRecommendationRequest
from ._schema import (
    CustomerIn,
    CustomerPage,
    EventBatchResult,
    EventIn,
    EventPage,
    ItemIn,
    ItemPage,
    Problem,
    RecommendedItem,
    Source,
    UpsertBatchResult,
    VariantIn,
)
from ._schema import CustomerOut as Customer
from ._schema import Error as ProblemError
from ._schema import EventOut as Event
from ._schema import ExperimentOut as Experiment
from ._schema import ExperimentOutStatusEnum as ExperimentStatus
from ._schema import FilterBody as Filters
from ._schema import ItemOut as Item
from ._schema import JobOut as Job
from ._schema import JobOutStatusEnum as JobStatus
from ._schema import Output as WhoAmI
from ._schema import RecommendationsOut as Recommendations
from ._schema import RowErrorOut as RowError
from ._schema import ScenarioOut as Scenario
from ._schema import StrategyEnum as Strategy
from ._schema import TriggerEnum as Trigger
from ._schema import VersionOut as ModelVersion
from ._schema import VersionOutStatusEnum as ModelVersionStatus

__all__ = [
    "Algorithm",
    "BatchRecommendationRequest",
    "BatchRecommendations",
    "ClientOptions",
    "Customer",
    "CustomerIn",
    "CustomerPage",
    "Event",
    "EventBatchResult",
    "EventIn",
    "EventPage",
    "Experiment",
    "ExperimentStatus",
    "Filters",
    "Item",
    "ItemIn",
    "ItemPage",
    "Job",
    "JobStatus",
    "ModelVersion",
    "ModelVersionStatus",
    "Problem",
    "ProblemError",
    "Recommendations",
    "RecommendedItem",
    "RowError",
    "Scenario",
    "Source",
    "Strategy",
    "Trigger",
    "UpsertBatchResult",
    "VariantIn",
    "WhoAmI",
]
