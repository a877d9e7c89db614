"""The v1 routing API (admin scope): scenarios, experiments, their results."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from drf_spectacular.utils import extend_schema
from pydantic import BaseModel, ConfigDict, Field
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from catalog.contracts import NO_NUL_RE
from recommendations import selectors
from recommendations.apis.serving import SCENARIO_RE
from recommendations.models import Experiment, Scenario
from recommendations.services.experiments import (
    ExperimentError,
    experiment_create,
    experiment_results,
    experiment_start,
    experiment_stop,
    experiment_update,
    scenario_delete,
    scenario_save,
)
from shelfwise.http.errors import NOT_FOUND, VALIDATION_ERROR, Problem, problem_type
from shelfwise.http.input import parse_body, parse_query
from shelfwise.http.views import ApiView, OutputSerializer
from tenants import keys
from tenants.authentication import principal_of

EXPERIMENT_CONFLICT = problem_type(
    "experiment_conflict", 409, "Not allowed in this state", "The experiment or scenario cannot change this way now."
)


class Source(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    kind: Annotated[str, Field(max_length=40, pattern=NO_NUL_RE)] = Field(
        description="active | version | algorithm | popularity | trending"
    )
    version: int | None = None
    algorithm: Annotated[str, Field(max_length=40, pattern=NO_NUL_RE)] | None = None


class VariantIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    key: Annotated[str, Field(min_length=1, max_length=40, pattern=NO_NUL_RE)]
    share: float = Field(gt=0, le=100, description="percentage of the scenario's traffic")
    source: Source


class ScenarioIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: Annotated[str, Field(max_length=100, pattern=NO_NUL_RE)] = ""
    default_source: Source = Field(default_factory=lambda: Source(kind="active"))


class ExperimentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=NO_NUL_RE)]
    scenario: Annotated[str, Field(pattern=SCENARIO_RE.pattern)]
    variants: Annotated[list[VariantIn], Field(min_length=2, max_length=10)]


class ExperimentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    name: Annotated[str, Field(min_length=1, max_length=100, pattern=NO_NUL_RE)] | None = None
    variants: Annotated[list[VariantIn], Field(min_length=2, max_length=10)] | None = None


class ScenarioOut(OutputSerializer):
    default_source = serializers.DictField()

    class Meta:
        model = Scenario
        fields: ClassVar[list[str]] = ["key", "name", "default_source", "created_at", "updated_at"]


class ExperimentOut(OutputSerializer):
    experiment_id = serializers.IntegerField(source="pk")
    scenario = serializers.CharField(source="scenario.key")
    variants = serializers.ListField(child=serializers.DictField())

    class Meta:
        model = Experiment
        fields: ClassVar[list[str]] = [
            "experiment_id",
            "name",
            "scenario",
            "status",
            "variants",
            "created_at",
            "started_at",
            "stopped_at",
        ]


def _source(source: Source) -> dict[str, Any]:
    return source.model_dump(exclude_none=True)


def _variants(variants: list[VariantIn]) -> list[dict[str, Any]]:
    return [{"key": v.key, "share": v.share, "source": _source(v.source)} for v in variants]


def _conflict(exc: ExperimentError) -> Problem:
    return Problem(EXPERIMENT_CONFLICT, str(exc))


def _scenario(key: str) -> Scenario:
    scenario = selectors.scenario_get(key=key) if SCENARIO_RE.match(key) else None
    if scenario is None:
        raise Problem(NOT_FOUND)
    return scenario


def _experiment(experiment_id: int) -> Experiment:
    experiment = selectors.experiment_get(experiment_id=experiment_id)
    if experiment is None:
        raise Problem(NOT_FOUND)
    return experiment


class ScenarioListApi(ApiView):
    required_scopes = keys.SCOPE_ADMIN

    @extend_schema(operation_id="scenarios_list", responses=ScenarioOut(many=True), tags=["experiments"])
    def get(self, request: Request) -> Response:
        parse_query(request)
        return Response(ScenarioOut(selectors.scenario_list(), many=True).data)


class ScenarioDetailApi(ApiView):
    required_scopes = keys.SCOPE_ADMIN

    @extend_schema(operation_id="scenario_get", responses=ScenarioOut, tags=["experiments"])
    def get(self, request: Request, key: str) -> Response:
        parse_query(request)
        return Response(ScenarioOut(_scenario(key)).data)

    @extend_schema(
        operation_id="scenario_put",
        request=ScenarioIn,
        responses={200: ScenarioOut, 201: ScenarioOut},
        tags=["experiments"],
    )
    def put(self, request: Request, key: str) -> Response:
        parse_query(request)
        if not SCENARIO_RE.match(key):
            raise Problem(
                VALIDATION_ERROR,
                errors=[{"field": "key", "code": "invalid_format", "message": "lowercase letters, digits, - and _"}],
            )
        body: ScenarioIn = parse_body(request, ScenarioIn)
        try:
            scenario, created = scenario_save(
                key=key, name=body.name, default_source=_source(body.default_source), actor=principal_of(request).actor
            )
        except ExperimentError as exc:
            raise Problem(VALIDATION_ERROR, str(exc)) from exc
        return Response(ScenarioOut(scenario).data, status=201 if created else 200)

    @extend_schema(operation_id="scenario_delete", responses={204: None}, tags=["experiments"])
    def delete(self, request: Request, key: str) -> Response:
        parse_query(request)
        try:
            scenario_delete(scenario=_scenario(key), actor=principal_of(request).actor)
        except ExperimentError as exc:
            raise _conflict(exc) from exc
        return Response(status=204)


class ExperimentListApi(ApiView):
    required_scopes = keys.SCOPE_ADMIN

    @extend_schema(operation_id="experiments_list", responses=ExperimentOut(many=True), tags=["experiments"])
    def get(self, request: Request) -> Response:
        parse_query(request)
        return Response(ExperimentOut(selectors.experiment_list(limit=200), many=True).data)

    @extend_schema(
        operation_id="experiment_create", request=ExperimentIn, responses={201: ExperimentOut}, tags=["experiments"]
    )
    def post(self, request: Request) -> Response:
        parse_query(request)
        body: ExperimentIn = parse_body(request, ExperimentIn)
        scenario = selectors.scenario_get(key=body.scenario)
        if scenario is None:
            raise Problem(
                VALIDATION_ERROR,
                errors=[
                    {
                        "field": "scenario",
                        "code": "not_found",
                        "message": "create the scenario first (PUT /scenarios/{key})",
                    }
                ],
            )
        try:
            experiment = experiment_create(
                name=body.name, scenario=scenario, variants=_variants(body.variants), actor=principal_of(request).actor
            )
        except ExperimentError as exc:
            raise Problem(VALIDATION_ERROR, str(exc)) from exc
        return Response(ExperimentOut(experiment).data, status=201)


class ExperimentDetailApi(ApiView):
    required_scopes = keys.SCOPE_ADMIN

    @extend_schema(operation_id="experiment_get", responses=ExperimentOut, tags=["experiments"])
    def get(self, request: Request, experiment_id: int) -> Response:
        parse_query(request)
        return Response(ExperimentOut(_experiment(experiment_id)).data)

    @extend_schema(
        operation_id="experiment_update", request=ExperimentPatch, responses=ExperimentOut, tags=["experiments"]
    )
    def patch(self, request: Request, experiment_id: int) -> Response:
        parse_query(request)
        body: ExperimentPatch = parse_body(request, ExperimentPatch)
        experiment = _experiment(experiment_id)
        try:
            experiment = experiment_update(
                experiment=experiment,
                name=body.name,
                variants=_variants(body.variants) if body.variants is not None else None,
                actor=principal_of(request).actor,
            )
        except ExperimentError as exc:
            raise _conflict(exc) from exc
        return Response(ExperimentOut(experiment).data)


class _Transition(ApiView):
    required_scopes = keys.SCOPE_ADMIN
    action = "start"

    def post(self, request: Request, experiment_id: int) -> Response:
        parse_query(request)
        experiment = _experiment(experiment_id)
        change = experiment_start if self.action == "start" else experiment_stop
        try:
            experiment = change(experiment=experiment, actor=principal_of(request).actor)
        except ExperimentError as exc:
            raise _conflict(exc) from exc
        return Response(ExperimentOut(experiment).data)


class ExperimentStartApi(_Transition):
    action = "start"

    @extend_schema(operation_id="experiment_start", request=None, responses=ExperimentOut, tags=["experiments"])
    def post(self, request: Request, experiment_id: int) -> Response:
        return super().post(request, experiment_id)


class ExperimentStopApi(_Transition):
    action = "stop"

    @extend_schema(operation_id="experiment_stop", request=None, responses=ExperimentOut, tags=["experiments"])
    def post(self, request: Request, experiment_id: int) -> Response:
        return super().post(request, experiment_id)


class ExperimentResultsApi(ApiView):
    required_scopes = keys.SCOPE_ADMIN

    @extend_schema(operation_id="experiment_results", responses={200: dict[str, Any]}, tags=["experiments"])
    def get(self, request: Request, experiment_id: int) -> Response:
        parse_query(request)
        return Response(experiment_results(experiment=_experiment(experiment_id)))
