"""The v1 model API: train, follow jobs, list versions, promote and roll back (admin scope)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, ClassVar

from drf_spectacular.utils import OpenApiResponse, extend_schema
from pydantic import BaseModel, ConfigDict, Field, StrictBool, field_validator
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.contracts import NO_NUL_RE
from recommendations import selectors
from recommendations.models import ModelVersion, TrainingJob
from recommendations.services.registry import PromotionRefused, model_version_promote, model_version_rollback
from recommendations.services.training import (
    TrainingAlreadyRunning,
    TrainingQueueUnavailable,
    TrainingQuotaExceeded,
    TrainingRefused,
    training_job_request,
)
from recommendations.training.settings import ALGORITHM_CHOICES, Algorithm
from shelfwise.http.errors import NOT_FOUND, SERVICE_UNAVAILABLE, Problem, problem_type
from shelfwise.http.input import OpenApiSchema, QueryModel, parse_body, parse_query
from shelfwise.http.openapi import query_parameters
from shelfwise.http.views import ApiView, OutputSerializer
from tenants import keys
from tenants.authentication import principal_of

TRAINING_IN_PROGRESS = problem_type(
    "training_in_progress", 409, "Training in progress", "The store already has a training queued or running."
)
TRAINING_QUOTA_EXCEEDED = problem_type(
    "training_quota_exceeded",
    429,
    "Training quota used up",
    "The plan's trainings per 24 hours are used up; retry after `Retry-After` seconds.",
)
INSUFFICIENT_DATA = problem_type(
    "insufficient_data", 422, "Not enough data", "There is not enough data to train a model yet."
)
PROMOTION_REFUSED = problem_type(
    "promotion_refused", 409, "Promotion refused", "This version cannot be promoted (see detail)."
)


class JobOut(OutputSerializer):
    job_id = serializers.UUIDField(source="id")
    version = serializers.IntegerField(source="version.version", allow_null=True, default=None)
    promoted = serializers.SerializerMethodField(
        help_text="once the job succeeded: whether its version was promoted (see `promotion_reason`)"
    )
    promotion_reason = serializers.SerializerMethodField(
        help_text="the release gate's reason, naming the figures it compared"
    )

    def _gate(self, job: TrainingJob) -> dict[str, Any] | None:
        if job.status != TrainingJob.Status.SUCCEEDED or job.version is None:
            return None
        return job.version.gate or {}

    def get_promoted(self, job: TrainingJob) -> bool | None:
        gate = self._gate(job)
        return None if gate is None else bool(gate.get("promoted", False))

    def get_promotion_reason(self, job: TrainingJob) -> str | None:
        gate = self._gate(job)
        return None if gate is None else str(gate.get("reason", ""))

    class Meta:
        model = TrainingJob
        fields: ClassVar[list[str]] = [
            "job_id",
            "status",
            "stage",
            "progress",
            "trigger",
            "requested_by",
            "options",
            "version",
            "promoted",
            "promotion_reason",
            "error",
            "attempts",
            "created_at",
            "started_at",
            "finished_at",
        ]


class VersionOut(OutputSerializer):
    metrics = serializers.DictField()
    params = serializers.DictField()
    gate = serializers.DictField()
    timings = serializers.DictField()
    data_counts = serializers.DictField()
    promotable = serializers.BooleanField()

    class Meta:
        model = ModelVersion
        fields: ClassVar[list[str]] = [
            "name",
            "version",
            "algorithm",
            "params",
            "status",
            "trigger",
            "metrics",
            "gate",
            "timings",
            "data_counts",
            "failure_reason",
            "promotable",
            "created_at",
            "started_at",
            "finished_at",
            "promoted_at",
            "retired_at",
            "artifacts_purged_at",
            "serving_problem",
            "serving_problem_at",
        ]


def _not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may not be null")
    return value


class TrainIn(BaseModel):
    """The body of POST /models:train (optional: the store's training settings apply)."""

    model_config = ConfigDict(extra="forbid")

    algorithm: Algorithm | None = None
    tune: StrictBool | None = None
    two_stage: StrictBool | None = None

    _present_means_not_null = field_validator("algorithm", "tune", "two_stage", mode="before")(_not_null)

    # Documented exactly as when this was a DRF serializer (docs/openapi.yaml is the contract).
    OPENAPI_SCHEMA: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "algorithm": {"$ref": "#/components/schemas/AlgorithmEnum"},
            "tune": {"type": "boolean"},
            "two_stage": {
                "type": "boolean",
                "description": "also train the two-stage recommender (default: training.two_stage)",
            },
        },
    }
    OPENAPI_COMPONENTS: ClassVar[dict[str, Any]] = {
        "AlgorithmEnum": {
            "enum": list(ALGORITHM_CHOICES),
            "type": "string",
            "description": "\n".join(f"* `{name}` - {name}" for name in ALGORITHM_CHOICES),
        }
    }


class PromoteIn(BaseModel):
    """The body of POST /models/{version}:promote and /models:rollback (optional)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, coerce_numbers_to_str=True)

    reason: Annotated[str, Field(max_length=500, pattern=NO_NUL_RE)] = ""

    _present_means_not_null = field_validator("reason", mode="before")(_not_null)

    OPENAPI_SCHEMA: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"reason": {"type": "string", "maxLength": 500}},
    }


class VersionListQuery(QueryModel):
    limit: Annotated[
        int, Field(ge=1, le=200), OpenApiSchema({"type": "integer", "maximum": 200, "minimum": 1, "default": 50})
    ] = 50
    status: Annotated[
        ModelVersion.Status | None,
        OpenApiSchema(
            {"enum": list(ModelVersion.Status.values), "type": "string", "minLength": 1},
            description="\n".join(f"* `{value}` - {value}" for value in ModelVersion.Status.values),
        ),
    ] = None


class ModelTrainApi(ApiView):
    """POST /models:train — queue a training; follow it at /jobs/{job_id}."""

    required_scopes = keys.SCOPE_ADMIN

    @extend_schema(
        operation_id="models_train",
        request=TrainIn,
        responses={202: JobOut},
        tags=["models"],
        description="Queue a training of the store's model (one at a time). 409 `training_in_progress` "
        "names the running job; 422 `insufficient_data` says what is missing; 429 "
        "`training_quota_exceeded` when the plan's trainings per 24 hours are used up (see `Retry-After`).",
    )
    def post(self, request: Request) -> Response:
        parse_query(request)
        body = parse_body(request, TrainIn, optional=True)
        principal = principal_of(request)
        try:
            job = training_job_request(
                trigger=ModelVersion.Trigger.MANUAL,
                requested_by=principal.actor,
                algorithm=body.algorithm,
                tune=body.tune,
                two_stage=body.two_stage,
            )
        except TrainingAlreadyRunning as exc:
            raise Problem(
                TRAINING_IN_PROGRESS, f"Job {exc.job.id} is {exc.job.status}.", extra={"job_id": str(exc.job.id)}
            ) from exc
        except TrainingQuotaExceeded as exc:
            raise Problem(
                TRAINING_QUOTA_EXCEEDED, str(exc), headers={"Retry-After": str(exc.retry_after_seconds)}
            ) from exc
        except TrainingRefused as exc:
            raise Problem(INSUFFICIENT_DATA, str(exc)) from exc
        except TrainingQueueUnavailable as exc:
            raise Problem(SERVICE_UNAVAILABLE, str(exc), headers={"Retry-After": "30"}) from exc
        response = Response(JobOut(job).data, status=202)
        response["Location"] = f"/api/v1/jobs/{job.id}"
        return response


class JobDetailApi(ApiView):
    required_scopes = keys.SCOPE_ADMIN

    @extend_schema(operation_id="job_get", responses=JobOut, tags=["models"])
    def get(self, request: Request, job_id: uuid.UUID) -> Response:
        parse_query(request)
        job = selectors.training_job_get(job_id=job_id)
        if job is None:
            raise Problem(NOT_FOUND)
        return Response(JobOut(job).data)


class JobListApi(ApiView):
    required_scopes = keys.SCOPE_ADMIN

    @extend_schema(operation_id="jobs_list", responses=JobOut(many=True), tags=["models"])
    def get(self, request: Request) -> Response:
        parse_query(request)
        return Response(JobOut(selectors.training_job_list(limit=50), many=True).data)


class ModelListApi(ApiView):
    required_scopes = keys.SCOPE_ADMIN

    @extend_schema(
        operation_id="models_list",
        parameters=query_parameters(VersionListQuery),
        responses=VersionOut(many=True),
        tags=["models"],
    )
    def get(self, request: Request) -> Response:
        query = parse_query(request, VersionListQuery)
        versions = selectors.model_version_list(status=query.status)[: query.limit]
        return Response(VersionOut(versions, many=True).data)


def _version(number: int) -> ModelVersion:
    version = selectors.model_version_get(version=number)
    if version is None:
        raise Problem(NOT_FOUND)
    return version


class ModelDetailApi(ApiView):
    required_scopes = keys.SCOPE_ADMIN

    @extend_schema(operation_id="model_get", responses=VersionOut, tags=["models"])
    def get(self, request: Request, version: int) -> Response:
        parse_query(request)
        return Response(VersionOut(_version(version)).data)


class ModelPromoteApi(ApiView):
    """POST /models/{version}:promote — serve this version (rollback = promote an older one)."""

    required_scopes = keys.SCOPE_ADMIN

    @extend_schema(
        operation_id="model_promote",
        request=PromoteIn,
        responses={200: VersionOut, 409: OpenApiResponse(description="`promotion_refused`")},
        tags=["models"],
    )
    def post(self, request: Request, version: int) -> Response:
        parse_query(request)
        body = parse_body(request, PromoteIn, optional=True)
        target = _version(version)
        try:
            promoted = model_version_promote(version=target, actor=principal_of(request).actor, reason=body.reason)
        except PromotionRefused as exc:
            raise Problem(PROMOTION_REFUSED, str(exc)) from exc
        return Response(VersionOut(promoted).data)


class ModelRollbackApi(ApiView):
    """POST /models:rollback — serve the version that was active before the current one."""

    required_scopes = keys.SCOPE_ADMIN

    @extend_schema(operation_id="models_rollback", request=PromoteIn, responses=VersionOut, tags=["models"])
    def post(self, request: Request) -> Response:
        parse_query(request)
        body = parse_body(request, PromoteIn, optional=True)
        try:
            promoted = model_version_rollback(actor=principal_of(request).actor, reason=body.reason)
        except PromotionRefused as exc:
            raise Problem(PROMOTION_REFUSED, str(exc)) from exc
        return Response(VersionOut(promoted).data)
