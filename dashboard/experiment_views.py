"""Dashboard: scenarios, their experiments between variants, and the experiments' results."""

from __future__ import annotations

from django.contrib import messages
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods

from dashboard.access import actor_of, member_required
from dashboard.forms import ExperimentForm, ScenarioForm, VariantFormSet
from dashboard.views import context_for
from recommendations import selectors as recommendation_selectors
from recommendations.models import Experiment, Scenario
from recommendations.services.experiments import (
    ExperimentError,
    experiment_create,
    experiment_results,
    experiment_start,
    experiment_stop,
    scenario_delete,
    scenario_save,
)
from tenants.models import Membership


@require_http_methods(["GET", "POST"])
@member_required()
def experiments(request: HttpRequest) -> HttpResponse:
    """Scenarios (with what serves each by default) and every experiment; adds a scenario."""
    form = ScenarioForm(initial={"kind": "active"})
    if request.method == "POST":
        form = ScenarioForm(request.POST)
        if form.is_valid():
            try:
                with transaction.atomic():
                    _, created = scenario_save(
                        key=form.cleaned_data["key"],
                        name=form.cleaned_data["name"],
                        default_source=form.source(),
                        actor=actor_of(request),
                    )
            except ExperimentError as exc:
                form.add_error(None, str(exc))
            else:
                verb = "added" if created else "updated"
                messages.success(request, f"Scenario “{form.cleaned_data['key']}” {verb}.")
                return redirect("dashboard:experiments")
    scenarios = Scenario.objects.order_by("key")
    rows = Experiment.objects.select_related("scenario").order_by("-created_at")
    running = {e.scenario_id: e for e in rows if e.status == Experiment.Status.RUNNING}
    return render(
        request,
        "dashboard/experiments.html",
        context_for(
            request,
            "experiments",
            scenarios=[(s, running.get(s.pk)) for s in scenarios],
            experiments=rows,
            form=form,
        ),
    )


@member_required()
@require_http_methods(["POST"])
def scenario_remove(request: HttpRequest, key: str) -> HttpResponse:
    scenario = recommendation_selectors.scenario_get(key=key)
    if scenario is None:
        raise Http404
    try:
        with transaction.atomic():
            scenario_delete(scenario=scenario, actor=actor_of(request))
        messages.success(request, f"Scenario “{key}” deleted; requests for it get the default scenario's answer.")
    except ExperimentError as exc:
        messages.error(request, str(exc))
    return redirect("dashboard:experiments")


@require_http_methods(["GET", "POST"])
@member_required(Membership.Role.ADMIN)
def experiment_new(request: HttpRequest) -> HttpResponse:
    scenarios = list(Scenario.objects.order_by("key").values_list("key", flat=True))
    if not scenarios:
        messages.info(request, "Add a scenario first: an experiment splits one scenario's traffic.")
        return redirect("dashboard:experiments")
    if request.method == "POST":
        form = ExperimentForm(request.POST, scenarios=scenarios)
        variants = VariantFormSet(request.POST, prefix="v")
        if form.is_valid() and variants.is_valid():
            try:
                with transaction.atomic():
                    experiment = experiment_create(
                        name=form.cleaned_data["name"],
                        scenario=Scenario.objects.get(key=form.cleaned_data["scenario"]),
                        variants=[
                            {"key": v.cleaned_data["key"], "share": v.cleaned_data["share"], "source": v.source()}
                            for v in variants
                            if v.cleaned_data
                        ],
                        actor=actor_of(request),
                    )
            except ExperimentError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"Experiment “{experiment.name}” created as a draft; start it when ready.")
                return redirect("dashboard:experiment", experiment_id=experiment.pk)
    else:
        form = ExperimentForm(scenarios=scenarios, initial={"scenario": request.GET.get("scenario")})
        variants = VariantFormSet(
            prefix="v",
            initial=[
                {"key": "control", "share": 50, "kind": "active"},
                {"key": "challenger", "share": 50, "kind": "popularity"},
            ],
        )
    return render(
        request,
        "dashboard/experiment_new.html",
        context_for(request, "experiments", form=form, variants=variants),
    )


def _experiment(experiment_id: int) -> Experiment:
    row = recommendation_selectors.experiment_get(experiment_id=experiment_id)
    if row is None:
        raise Http404
    return row


@member_required()
def experiment(request: HttpRequest, experiment_id: int) -> HttpResponse:
    row = _experiment(experiment_id)
    results = experiment_results(experiment=row)
    chart = {
        "labels": [v["key"] for v in results["variants"]],
        "ctr": [round(v["ctr"] * 100, 4) for v in results["variants"]],
        "ctr_ci": [[round(x * 100, 4) for x in v["ctr_ci95"]] for v in results["variants"]],
        "conversion": [round(v["conversion"] * 100, 4) for v in results["variants"]],
        "conversion_ci": [[round(x * 100, 4) for x in v["conversion_ci95"]] for v in results["variants"]],
    }
    return render(
        request,
        "dashboard/experiment.html",
        context_for(request, "experiments", experiment=row, results=results, charts={"experiment": chart}),
    )


def _transition(request: HttpRequest, experiment_id: int, *, start: bool) -> HttpResponse:
    row = _experiment(experiment_id)
    try:
        with transaction.atomic():
            if start:
                experiment_start(experiment=row, actor=actor_of(request))
            else:
                experiment_stop(experiment=row, actor=actor_of(request))
    except ExperimentError as exc:
        messages.error(request, str(exc))
    else:
        if start:
            messages.success(request, f"Started: “{row.scenario.key}” traffic is split between the variants now.")
        else:
            messages.success(request, f"Stopped: “{row.scenario.key}” is served by its default again.")
    return redirect("dashboard:experiment", experiment_id=row.pk)


@member_required()
@require_http_methods(["POST"])
def experiment_begin(request: HttpRequest, experiment_id: int) -> HttpResponse:
    return _transition(request, experiment_id, start=True)


@member_required()
@require_http_methods(["POST"])
def experiment_end(request: HttpRequest, experiment_id: int) -> HttpResponse:
    return _transition(request, experiment_id, start=False)
