"""The store admins' dashboard: server-rendered pages on the store's host, htmx for the
interactive parts (live training progress), charts from data embedded with ``json_script``."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.core.paginator import Paginator
from django.db.models import Count, Q
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBase, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from catalog import selectors as catalog_selectors
from catalog.event_settings import event_settings_for
from catalog.models import Customer, Event, Item
from dashboard import selectors
from dashboard.access import actor_of, can_change, member_required, store_of
from dashboard.forms import ApiKeyForm, ConfirmForm, StoreAuthenticationForm
from recommendations import selectors as recommendation_selectors
from recommendations.models import ModelVersion, Scenario, TrainingJob
from recommendations.services.registry import PromotionRefused, model_version_promote, model_version_rollback
from recommendations.services.training import (
    TrainingAlreadyRunning,
    TrainingQueueUnavailable,
    TrainingRefused,
    training_job_request,
)
from recommendations.serving import engine
from recommendations.serving.filters import Filters
from shelfwise.http.login_throttle import password_reset_mail_allowed
from tenants.models import ApiKey
from tenants.services import TenantError, apikey_create, apikey_revoke, apikey_signing_secret

PAGE_SIZE = 25


def _page(request: HttpRequest, queryset: Any) -> Any:
    return Paginator(queryset, PAGE_SIZE).get_page(request.GET.get("page"))


def context_for(request: HttpRequest, section: str, **extra: Any) -> dict[str, Any]:
    return {"store": store_of(request), "section": section, "can_change": can_change(request), **extra}


# --------------------------------------------------------------------------- login


class LoginView(auth_views.LoginView):
    template_name = "dashboard/login.html"
    authentication_form = StoreAuthenticationForm
    redirect_authenticated_user = False

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponseBase:
        store_of(request)  # 404 on the public host
        return super().dispatch(request, *args, **kwargs)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        return super().get_context_data(**kwargs) | {"store": store_of(self.request)}


class PasswordResetView(auth_views.PasswordResetView):
    """Django's reset view; the e-mail is not sent past the per-account and per-address limits
    (shelfwise.http.login_throttle), while the page answers the same."""

    def form_valid(self, form: Any) -> HttpResponse:
        if not password_reset_mail_allowed(self.request, form.cleaned_data["email"]):
            return HttpResponseRedirect(self.get_success_url())
        return super().form_valid(form)


# --------------------------------------------------------------------------- overview


@member_required()
def overview(request: HttpRequest) -> HttpResponse:
    store = store_of(request)
    try:
        days = int(request.GET.get("days", "30"))
    except ValueError:
        days = 30
    if days not in selectors.PERIODS:
        days = 30
    counts = selectors.catalog_counts()
    period = selectors.period_for(days, latest=counts["last_event"])
    charts = {
        "events": selectors.events_per_day(period),
        "outcomes": selectors.recommendation_outcomes(store.pk, period),
        "cache": selectors.cache_per_day(store.pk, period),
        "traffic": selectors.api_traffic(store.pk, period),
    }
    active = recommendation_selectors.model_version_active()
    return render(
        request,
        "dashboard/overview.html",
        context_for(
            request,
            "overview",
            period=period,
            periods=selectors.PERIODS,
            counts=counts,
            charts=charts,
            active=active,
            api_base=request.build_absolute_uri("/api/v1/"),
        ),
    )


# --------------------------------------------------------------------------- catalog and customers


def _search_query(request: HttpRequest) -> str:
    """The list pages' ``?q=``: trimmed, bounded, without NUL (PostgreSQL text holds none)."""
    return request.GET.get("q", "").replace("\x00", "").strip()[:200]


@member_required()
def items(request: HttpRequest) -> HttpResponse:
    query = _search_query(request)
    rows = Item.objects.filter(deleted_at__isnull=True).order_by("external_id")
    if query:
        rows = rows.filter(Q(external_id__icontains=query) | Q(title__icontains=query))
    return render(request, "dashboard/items.html", context_for(request, "items", q=query, page=_page(request, rows)))


@member_required()
def item(request: HttpRequest, item_id: str) -> HttpResponse:
    row = Item.objects.filter(external_id=item_id).first()
    if row is None:
        raise Http404
    store = store_of(request)
    similar = None
    if row.deleted_at is None:
        similar = engine.similar(
            store.pk,
            item_id=item_id,
            count=10,
            filters=Filters(),
            exclude=frozenset(),
            customer_id=None,
            weights=event_settings_for(store),
            shown=False,
        )
    counts = dict(Event.objects.filter(item=row).values_list("type").annotate(n=Count("id")).values_list("type", "n"))
    return render(
        request,
        "dashboard/item.html",
        context_for(request, "items", item=row, similar=_with_titles(similar), counts=counts),
    )


@member_required()
def customers(request: HttpRequest) -> HttpResponse:
    query = _search_query(request)
    rows = Customer.objects.order_by("external_id")
    if query:
        rows = rows.filter(external_id__icontains=query)
    return render(
        request, "dashboard/customers.html", context_for(request, "customers", q=query, page=_page(request, rows))
    )


@member_required()
def customer(request: HttpRequest, customer_id: str) -> HttpResponse:
    row = Customer.objects.filter(external_id=customer_id).first()
    if row is None:
        raise Http404
    store = store_of(request)
    history = Event.objects.filter(customer=row).select_related("item").order_by("-timestamp", "-id")[:50]
    weights = event_settings_for(store)
    scenarios = ["default", *Scenario.objects.order_by("key").values_list("key", flat=True)]
    answers = []
    for scenario in dict.fromkeys(scenarios):
        served = engine.recommend(
            engine.CustomerRequest(tenant_id=store.pk, customer_id=customer_id, scenario=scenario, count=10),
            weights=weights,
            warming=True,  # a look, not an impression
        )
        answers.append(_with_titles(served))
    return render(
        request,
        "dashboard/customer.html",
        context_for(request, "customers", customer=row, history=history, answers=answers),
    )


def _with_titles(served: engine.Served | None) -> dict[str, Any] | None:
    if served is None:
        return None
    titles = catalog_selectors.items_fields(external_ids=[i for i, _ in served.items], fields=("title",))
    return {
        "scenario": served.route.scenario,
        "variant": served.route.variant,
        "strategy": served.strategy,
        "version": served.version,
        "items": [
            {
                "item_id": item,
                "score": score,
                "title": titles.get(item, {}).get("title", ""),
                "sources": served.sources.get(item, "").replace("+", ", "),
            }
            for item, score in served.items
        ],
    }


# --------------------------------------------------------------------------- models


@member_required()
def models(request: HttpRequest) -> HttpResponse:
    versions = recommendation_selectors.model_version_list(name="default")
    jobs = TrainingJob.objects.order_by("-created_at")[:20]
    running = recommendation_selectors.training_job_running()
    previous = recommendation_selectors.model_version_rollback_exists()
    # ?job=<id> (after "Train now"): follow that job, if it is one of this store's; else the running one.
    followed = running.pk if running else None
    try:
        asked = uuid.UUID(request.GET.get("job", ""))
    except ValueError:
        asked = None
    if asked is not None and TrainingJob.objects.filter(pk=asked).exists():
        followed = asked
    page = _page(request, versions)
    return render(
        request,
        "dashboard/models.html",
        context_for(
            request,
            "models",
            versions=page,
            ranker=_ranker_of(page),
            jobs=jobs,
            running=running,
            followed_job=followed,
            can_rollback=previous,
        ),
    )


def _ranker_of(versions: Iterable[ModelVersion]) -> dict[str, Any] | None:
    """The two-stage ranker of the newest version on the page that has one: its version,
    sources, trees, why it was chosen, and its features by share of split gain (top 12)."""
    for version in versions:
        ranker = ((version.manifest or {}).get("scoring") or {}).get("ranker")
        if ranker:
            importance = sorted((ranker.get("importance") or {}).items(), key=lambda kv: -kv[1])
            return {
                "version": version.version,
                "sources": ranker.get("sources", []),
                "trees": ranker.get("trees"),
                "protocol": ranker.get("protocol"),
                "reason": ((version.metrics or {}).get("stages") or {}).get("reason", ""),
                "importance": [(name, share) for name, share in importance[:12] if share > 0],
            }
    return None


@member_required()
@require_http_methods(["POST"])
def model_train(request: HttpRequest) -> HttpResponse:
    try:
        job = training_job_request(trigger="manual", requested_by=actor_of(request))
    except TrainingQueueUnavailable:
        messages.error(
            request, "The training queue is unavailable right now; nothing was queued. Try again in a minute."
        )
        return redirect("dashboard:models")
    except TrainingAlreadyRunning as exc:
        messages.info(request, "A training is already queued or running.")
        job = exc.job
    except TrainingRefused as exc:
        messages.error(request, str(exc))
        return redirect("dashboard:models")
    return redirect(f"{reverse('dashboard:models')}?job={job.pk}")


@member_required()
def job_progress(request: HttpRequest, job_id: str) -> HttpResponse:
    job = TrainingJob.objects.filter(pk=job_id).select_related("version").first() if _uuid(job_id) else None
    if job is None:
        raise Http404
    finished = job.status in {TrainingJob.Status.SUCCEEDED, TrainingJob.Status.FAILED}
    # 286 tells htmx to stop polling: the bar stays at its final state.
    return render(request, "dashboard/_job_progress.html", {"job": job}, status=286 if finished else 200)


def _uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return True


@member_required()
@require_http_methods(["POST"])
def model_promote(request: HttpRequest, version: int) -> HttpResponse:
    row = recommendation_selectors.model_version_get(version=version)
    if row is None:
        raise Http404
    form = ConfirmForm(request.POST)
    reason = form.cleaned_data["reason"] if form.is_valid() else ""
    try:
        model_version_promote(version=row, actor=actor_of(request), reason=reason or "dashboard")
        messages.success(request, f"Version {version} is now served.")
    except PromotionRefused as exc:
        messages.error(request, str(exc))
    return redirect("dashboard:models")


@member_required()
@require_http_methods(["POST"])
def model_rollback(request: HttpRequest) -> HttpResponse:
    try:
        row = model_version_rollback(actor=actor_of(request), reason="rollback from the dashboard")
        messages.success(request, f"Rolled back: version {row.version} is served again.")
    except PromotionRefused as exc:
        messages.error(request, str(exc))
    return redirect("dashboard:models")


# --------------------------------------------------------------------------- API keys


@require_http_methods(["GET", "POST"])
@member_required()
def api_keys(request: HttpRequest) -> HttpResponse:
    store = store_of(request)
    created = None
    form = ApiKeyForm()
    if request.method == "POST":
        form = ApiKeyForm(request.POST)
        if form.is_valid():
            try:
                row, raw = apikey_create(
                    tenant=store,
                    name=form.cleaned_data["name"],
                    kind=form.cleaned_data["kind"],
                    scopes=form.cleaned_data["scopes"] or None,
                    actor=actor_of(request),
                    created_by=request.user if request.user.is_authenticated else None,
                )
                created = {"key": raw, "row": row}
                if row.kind == ApiKey.Kind.PUBLIC:
                    created["signing_secret"] = apikey_signing_secret(api_key=row, actor=actor_of(request))
                form = ApiKeyForm()
            except TenantError as exc:
                form.add_error(None, str(exc))
    return _keys_page(request, form=form, created=created)


def _keys_page(
    request: HttpRequest,
    *,
    form: ApiKeyForm | None = None,
    created: dict[str, Any] | None = None,
    signing: dict[str, Any] | None = None,
) -> HttpResponse:
    rows = ApiKey.objects.filter(tenant=store_of(request)).order_by("revoked_at", "-created_at")
    context = context_for(request, "keys", keys=rows, form=form or ApiKeyForm(), created=created, signing=signing)
    # Secrets may be on it: like every signed-in page, never cached (shelfwise.http.middleware).
    return render(request, "dashboard/keys.html", context)


@member_required()
@require_http_methods(["POST"])
def api_key_signing_secret(request: HttpRequest, key_id: str) -> HttpResponse:
    """Show a public key's signing secret (for customer tokens), to an admin; audited."""
    row = ApiKey.objects.filter(tenant=store_of(request), pk=key_id).first()
    if row is None:
        raise Http404
    try:
        secret = apikey_signing_secret(api_key=row, actor=actor_of(request))
    except TenantError as exc:
        messages.error(request, str(exc))
        return redirect("dashboard:keys")
    return _keys_page(request, signing={"row": row, "secret": secret})


@member_required()
@require_http_methods(["POST"])
def api_key_revoke(request: HttpRequest, key_id: str) -> HttpResponse:
    row = ApiKey.objects.filter(tenant=store_of(request), pk=key_id).first()
    if row is None:
        raise Http404
    apikey_revoke(api_key=row, actor=actor_of(request))
    messages.success(request, f"Key {row.prefix} is revoked; it is refused from now on.")
    return redirect("dashboard:keys")
