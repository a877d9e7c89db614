"""The v1 model API: train, follow jobs, list versions, promote and roll back (admin scope)."""

from __future__ import annotations

import uuid
from typing import Any, ClassVar

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from recommendations.models import ModelVersion, TrainingJob
from recommendations.services.registry import PromotionRefused, model_version_promote, model_version_rollback
from recommendations.services.training import (
    TrainingAlreadyRunning,
    TrainingQuotaExceeded,
    TrainingRefused,
    training_job_request,
)
from recommendations.training.algorithms import ALGORITHMS
from shelfwise.http.errors import NOT_FOUND, VALIDATION_ERROR, Problem, problem_type
from shelfwise.http.views import ApiView, OutputSerializer, parse_query, reject_unknown_query_params
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
        ]


class TrainIn(serializers.Serializer[Any]):
    algorithm = serializers.ChoiceField(choices=[*ALGORITHMS, "auto"], required=False)
    tune = serializers.BooleanField(required=False)


class PromoteIn(serializers.Serializer[Any]):
    reason = serializers.CharField(required=False, allow_blank=True, max_length=500)


class VersionListQuery(serializers.Serializer[Any]):
    limit = serializers.IntegerField(min_value=1, max_value=200, default=50)
    status = serializers.ChoiceField(choices=ModelVersion.Status.values, required=False)


def _validated(serializer_class: type[serializers.Serializer[Any]], data: Any) -> dict[str, Any]:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise Problem(VALIDATION_ERROR, "The body must be a JSON object.")
    unknown = sorted(set(data) - set(serializer_class().fields))
    if unknown:
        raise Problem(
            VALIDATION_ERROR,
            errors=[
                {"field": name, "code": "unknown_field", "message": "not a field of this request"} for name in unknown
            ],
        )
    serializer = serializer_class(data=data)
    serializer.is_valid(raise_exception=True)
    return dict(serializer.validated_data)


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
        reject_unknown_query_params(request, set())
        body = _validated(TrainIn, request.data)
        principal = principal_of(request)
        try:
            job = training_job_request(
                trigger=ModelVersion.Trigger.MANUAL,
                requested_by=principal.actor,
                algorithm=body.get("algorithm"),
                tune=body.get("tune"),
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
        response = Response(JobOut(job).data, status=202)
        response["Location"] = f"/api/v1/jobs/{job.id}"
        return response


class JobDetailApi(ApiView):
    required_scopes = keys.SCOPE_ADMIN

    @extend_schema(operation_id="job_get", responses=JobOut, tags=["models"])
    def get(self, request: Request, job_id: uuid.UUID) -> Response:
        reject_unknown_query_params(request, set())
        job = TrainingJob.objects.select_related("version").filter(pk=job_id).first()
        if job is None:
            raise Problem(NOT_FOUND)
        return Response(JobOut(job).data)


class JobListApi(ApiView):
    required_scopes = keys.SCOPE_ADMIN

    @extend_schema(operation_id="jobs_list", responses=JobOut(many=True), tags=["models"])
    def get(self, request: Request) -> Response:
        reject_unknown_query_params(request, set())
        jobs = TrainingJob.objects.select_related("version").order_by("-created_at")[:50]
        return Response(JobOut(jobs, many=True).data)


class ModelListApi(ApiView):
    required_scopes = keys.SCOPE_ADMIN

    @extend_schema(
        operation_id="models_list", parameters=[VersionListQuery], responses=VersionOut(many=True), tags=["models"]
    )
    def get(self, request: Request) -> Response:
        query = parse_query(request, VersionListQuery)
        versions = ModelVersion.objects.order_by("-version")
        if "status" in query:
            versions = versions.filter(status=query["status"])
        return Response(VersionOut(versions[: query["limit"]], many=True).data)


def _version(number: int) -> ModelVersion:
    if number > 2**31 - 1:
        raise Problem(NOT_FOUND)
    version = ModelVersion.objects.filter(name="default", version=number).first()
    if version is None:
        raise Problem(NOT_FOUND)
    return version


class ModelDetailApi(ApiView):
    required_scopes = keys.SCOPE_ADMIN

    @extend_schema(operation_id="model_get", responses=VersionOut, tags=["models"])
    def get(self, request: Request, version: int) -> Response:
        reject_unknown_query_params(request, set())
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
        reject_unknown_query_params(request, set())
        body = _validated(PromoteIn, request.data)
        target = _version(version)
        try:
            promoted = model_version_promote(
                version=target, actor=principal_of(request).actor, reason=body.get("reason", "")
            )
        except PromotionRefused as exc:
            raise Problem(PROMOTION_REFUSED, str(exc)) from exc
        return Response(VersionOut(promoted).data)


class ModelRollbackApi(ApiView):
    """POST /models:rollback — serve the version that was active before the current one."""

    required_scopes = keys.SCOPE_ADMIN

    @extend_schema(operation_id="models_rollback", request=PromoteIn, responses=VersionOut, tags=["models"])
    def post(self, request: Request) -> Response:
        reject_unknown_query_params(request, set())
        body = _validated(PromoteIn, request.data)
        try:
            promoted = model_version_rollback(actor=principal_of(request).actor, reason=body.get("reason", ""))
        except PromotionRefused as exc:
            raise Problem(PROMOTION_REFUSED, str(exc)) from exc
        return Response(VersionOut(promoted).data)
