"""Dashboard: the store's settings (event weights, training and its schedule), its plan's limits
with current usage, and — for owners — the team and its invitations."""

from __future__ import annotations

import logging
import smtplib
from typing import Any

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import authenticate, get_user_model, login
from django.core.mail import send_mail
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.http import require_http_methods
from pydantic import ValidationError

from catalog.event_settings import BUILTIN_TYPES, EventSettings
from catalog.services import usage
from dashboard.access import actor_of, can_change, member_required, store_of
from dashboard.forms import EventWeightsForm, InviteForm, JoinExistingForm, JoinNewForm, RoleForm, TrainingSettingsForm
from dashboard.views import context_for
from recommendations.selectors import model_version_repeat_profile, trainings_in_window
from recommendations.training.settings import TrainingSettings
from shelfwise.http.login_throttle import LoginThrottled, password_attempt
from tenants.models import ApiKey, Invitation, Membership, Tenant
from tenants.store_settings import SettingsError, settings_section_get, tenant_settings_update
from tenants.team import (
    TeamError,
    invitation_accept,
    invitation_create,
    invitation_open_get,
    invitation_revoke,
    invited_user_create,
    membership_remove,
    membership_role_set,
)

logger = logging.getLogger(__name__)

TRAINING_FIELDS = (
    "algorithm",
    "exclude_seen",
    "schedule_hour_utc",
    "retrain_growth",
    "auto_promote",
    "gate_tolerance",
    "keep_versions",
)


def _sections(store: Tenant) -> tuple[EventSettings, TrainingSettings]:
    stored = Tenant.objects.filter(pk=store.pk).values_list("settings", flat=True).first() or {}
    return (
        settings_section_get(stored, "events", EventSettings),
        settings_section_get(stored, "training", TrainingSettings),
    )


def _usage_rows(store: Tenant) -> list[dict[str, Any]]:
    plan = store.plan
    month = f"{timezone.now():%Y-%m}"
    rows = [
        ("Items in the catalog", usage.usage_get(metric=usage.ITEMS), plan.max_items),
        ("Customers", usage.usage_get(metric=usage.CUSTOMERS), plan.max_customers),
        (f"Events in {month}", usage.usage_get(metric=usage.EVENTS, period=month), plan.max_events_per_month),
        ("Active API keys", ApiKey.objects.filter(tenant=store, revoked_at__isnull=True).count(), plan.max_api_keys),
        ("Trainings in the last 24 hours", trainings_in_window(), plan.trainings_per_day),
    ]
    out = []
    for label, used, limit in rows:
        share = None if not limit else min(100, round(100 * used / limit))
        out.append({"label": label, "used": used, "limit": limit, "percent": share})
    return out


def _error_text(exc: SettingsError) -> str:
    if isinstance(exc.errors, ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" if error["loc"] else error["msg"]
            for error in exc.errors.errors()
        )
    return str(exc.errors)


@require_http_methods(["GET", "POST"])
@member_required()
def store_settings(request: HttpRequest) -> HttpResponse:
    store = store_of(request)
    events, training = _sections(store)
    events_form = EventWeightsForm(
        initial={"auto_create_items": events.auto_create_items, "auto_create_customers": events.auto_create_customers},
        weights=dict(events.weights),
        builtin=BUILTIN_TYPES,
        prefix="events",
    )
    initial = training.model_dump(include=set(TRAINING_FIELDS))
    initial["exclude_seen"] = str(initial["exclude_seen"]).lower()  # "auto" / "true" / "false"
    training_form = TrainingSettingsForm(initial=initial, prefix="training")
    if request.method == "POST":
        section = request.POST.get("section")
        changes: dict[str, Any] | None = None
        if section == "events":
            events_form = EventWeightsForm(
                request.POST, weights=dict(events.weights), builtin=BUILTIN_TYPES, prefix="events"
            )
            if events_form.is_valid():
                changes = {"events": events_form.changes()}
        elif section == "training":
            training_form = TrainingSettingsForm(request.POST, prefix="training")
            if training_form.is_valid():
                changes = {"training": {name: training_form.cleaned_data[name] for name in TRAINING_FIELDS}}
        else:
            messages.error(request, "Unknown settings section.")
            return redirect("dashboard:settings")
        if changes is not None:
            try:
                tenant_settings_update(tenant=store, changes=changes, actor=actor_of(request))
            except SettingsError as exc:
                form = events_form if section == "events" else training_form
                form.add_error(None, _error_text(exc))
            else:
                note = (
                    " Popularity is recomputed with the new weights in the background." if section == "events" else ""
                )
                messages.success(request, f"Saved the {section} settings.{note}")
                return redirect("dashboard:settings")
    training_form.fields["exclude_seen"].help_text = _repeat_note(model_version_repeat_profile())
    if not can_change(request):
        for form in (events_form, training_form):
            for field in form.fields.values():
                field.disabled = True
    return render(
        request,
        "dashboard/settings.html",
        context_for(
            request,
            "settings",
            events_form=events_form,
            training_form=training_form,
            plan=store.plan,
            usage_rows=_usage_rows(store),
        ),
    )


# --------------------------------------------------------------------------- team (owners)


@require_http_methods(["GET", "POST"])
@member_required(Membership.Role.OWNER, write_role=Membership.Role.OWNER)
def team(request: HttpRequest) -> HttpResponse:
    store = store_of(request)
    form = InviteForm()
    if request.method == "POST":
        form = InviteForm(request.POST)
        if form.is_valid():
            try:
                with transaction.atomic():
                    created = invitation_create(
                        tenant=store,
                        email=form.cleaned_data["email"],
                        role=form.cleaned_data["role"],
                        invited_by=request.user,
                        actor=actor_of(request),
                    )
            except TeamError as exc:
                form.add_error("email", str(exc))
            else:
                link = request.build_absolute_uri(reverse("dashboard:join", args=[created.token]))
                try:
                    _send_invitation(request, created.invitation, link)
                except (OSError, smtplib.SMTPException):
                    logger.exception("invitation e-mail to %s failed", created.invitation.email)
                    messages.error(
                        request,
                        f"The e-mail to {created.invitation.email} could not be sent; invite again later "
                        "(a new invitation replaces this one).",
                    )
                else:
                    messages.success(
                        request, f"Invitation sent to {created.invitation.email}; the link works for 7 days."
                    )
                return redirect("dashboard:team")
    members = Membership.objects.filter(tenant=store).select_related("user").order_by("user__email")
    invitations = Invitation.objects.filter(tenant=store, accepted_at__isnull=True, revoked_at__isnull=True)
    return render(
        request,
        "dashboard/team.html",
        context_for(
            request,
            "team",
            members=[(m, RoleForm(initial={"role": m.role}, prefix=f"m{m.pk}")) for m in members],
            invitations=invitations,
            form=form,
        ),
    )


def _send_invitation(request: HttpRequest, invitation: Invitation, link: str) -> None:
    store = invitation.tenant
    inviter = getattr(request.user, "email", "") or "The store's owner"
    body = render_to_string(
        "dashboard/invitation_email.txt",
        {
            "store": store,
            "inviter": inviter,
            "link": link,
            "role": invitation.role,
            "expires_at": invitation.expires_at,
        },
    )
    send_mail(
        f"Join {store.name} on Shelfwise", body, settings.DEFAULT_FROM_EMAIL, [invitation.email], fail_silently=False
    )


def _membership(request: HttpRequest, membership_id: int) -> Membership:
    row = Membership.objects.filter(tenant=store_of(request), pk=membership_id).select_related("user", "tenant").first()
    if row is None:
        raise Http404
    return row


@member_required(Membership.Role.OWNER, write_role=Membership.Role.OWNER)
@require_http_methods(["POST"])
def member_role(request: HttpRequest, membership_id: int) -> HttpResponse:
    row = _membership(request, membership_id)
    form = RoleForm(request.POST, prefix=f"m{row.pk}")
    if not form.is_valid():
        messages.error(request, "Choose owner, admin or viewer.")
        return redirect("dashboard:team")
    try:
        membership_role_set(membership=row, role=form.cleaned_data["role"], actor=actor_of(request))
        messages.success(request, f"{row.user.email} is now {row.role}.")
    except TeamError as exc:
        messages.error(request, str(exc))
    return redirect("dashboard:team")


@member_required(Membership.Role.OWNER, write_role=Membership.Role.OWNER)
@require_http_methods(["POST"])
def member_remove(request: HttpRequest, membership_id: int) -> HttpResponse:
    row = _membership(request, membership_id)
    try:
        membership_remove(membership=row, actor=actor_of(request))
        messages.success(request, f"{row.user.email} was removed from the team.")
    except TeamError as exc:
        messages.error(request, str(exc))
    if row.user_id == request.user.pk and not Membership.objects.filter(pk=row.pk).exists():
        return redirect("dashboard:login")
    return redirect("dashboard:team")


@member_required(Membership.Role.OWNER, write_role=Membership.Role.OWNER)
@require_http_methods(["POST"])
def invitation_cancel(request: HttpRequest, invitation_id: int) -> HttpResponse:
    row = Invitation.objects.filter(tenant=store_of(request), pk=invitation_id).select_related("tenant").first()
    if row is None:
        raise Http404
    invitation_revoke(invitation=row, actor=actor_of(request))
    messages.success(request, f"The invitation to {row.email} no longer works.")
    return redirect("dashboard:team")


# --------------------------------------------------------------------------- joining


@require_http_methods(["GET", "POST"])
def join(request: HttpRequest, token: str) -> HttpResponse:
    """The link in an invitation e-mail: set a password (new account) or confirm the existing
    account's password, then become a member and land on the overview."""
    store = store_of(request)
    invitation = invitation_open_get(tenant=store, token=token) if store.is_active else None
    if invitation is None:
        return render(request, "dashboard/join_invalid.html", {"store": store}, status=410)
    existing = get_user_model().objects.filter(email__iexact=invitation.email).first()
    form: JoinExistingForm | JoinNewForm
    if existing is not None:
        form = JoinExistingForm(request.POST or None)
    else:
        form = JoinNewForm(request.POST or None, email=invitation.email)
    if request.method == "POST" and form.is_valid():
        user: Any = None
        try:
            with transaction.atomic():
                if existing is not None:
                    # The same brute-force throttling as the login (shelfwise.http.login_throttle).
                    username = existing.get_username()
                    try:
                        user = password_attempt(
                            request,
                            username,
                            lambda: authenticate(request, username=username, password=form.cleaned_data["password"]),
                        )
                    except LoginThrottled as exc:
                        raise TeamError(str(exc)) from exc
                    if user is None:
                        raise TeamError("wrong password for this account")
                else:
                    user = invited_user_create(email=invitation.email, password=form.cleaned_data["password1"])
                invitation_accept(tenant=store, token=token, user=user)
        except TeamError as exc:
            form.add_error(None, str(exc))
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome to {store.name}'s dashboard.")
            return redirect("dashboard:overview")
    return render(
        request,
        "dashboard/join.html",
        {"store": store, "invitation": invitation, "form": form, "existing": existing is not None},
    )


def _repeat_note(profile: dict[str, object] | None) -> str:
    """What `automatic` means for this store now, from the repeat rate its last training measured."""
    said = "when a request does not say (its exclude_seen parameter)"
    if profile is None or profile.get("repeat_rate") is None:
        return f"{said}; automatic decides once a training has measured how often shoppers buy again"
    rate = float(profile["repeat_rate"])  # type: ignore[arg-type]
    now = "kept: repeat purchases are common" if profile["repeat_aware"] else "left out"
    return f"{said}; the last training measured a repeat rate of {rate:.0%}, so automatic means {now}"
