"""Dashboard forms."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import password_validation
from django.contrib.auth.forms import AuthenticationForm

from recommendations.apis.serving import SCENARIO_RE
from recommendations.training.settings import ALGORITHM_CHOICES
from shelfwise.http.login_throttle import ThrottledLoginMixin
from tenants import keys
from tenants.models import ApiKey, Membership


class StoreAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    """Log in with e-mail and password — only members of the store whose host this is. Anyone
    else gets the same message as for a wrong password (nothing to learn about the store)."""

    username = forms.CharField(
        label="E-mail", widget=forms.EmailInput(attrs={"autofocus": True, "autocomplete": "email"})
    )

    def __init__(self, request: Any = None, *args: Any, **kwargs: Any) -> None:
        super().__init__(request, *args, **kwargs)
        self.store = getattr(request, "tenant", None)

    def confirm_login_allowed(self, user: Any) -> None:
        super().confirm_login_allowed(user)
        if self.store is None or not Membership.objects.filter(user=user, tenant=self.store).exists():
            raise self.get_invalid_login_error()


class ApiKeyForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="what uses this key, e.g. “web shop backend”")
    kind = forms.ChoiceField(
        choices=[
            (ApiKey.Kind.SECRET, "Secret (server side)"),
            (ApiKey.Kind.PUBLIC, "Public (browser: events and recommendations)"),
        ],
        initial=ApiKey.Kind.SECRET,
    )
    scopes = forms.MultipleChoiceField(
        choices=[(scope, scope) for scope in keys.ALL_SCOPES],
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text="leave empty for the defaults: ingest, recommend and admin (secret), events and recommend (public)",
    )


class ConfirmForm(forms.Form):
    reason = forms.CharField(max_length=500, required=False)


# --------------------------------------------------------------------------- experiments

SOURCE_KINDS = [
    ("active", "the active model version"),
    ("version", "a given model version"),
    ("algorithm", "the newest version of an algorithm"),
    ("popularity", "most popular items"),
    ("trending", "trending items"),
]


class SourceFields(forms.Form):
    """What serves a variant: a kind, with a version or an algorithm where the kind needs one."""

    kind = forms.ChoiceField(choices=SOURCE_KINDS, initial="active", label="Serves")
    version = forms.IntegerField(min_value=1, required=False, help_text="for “a given model version”")
    algorithm = forms.ChoiceField(
        choices=[("", "—"), *[(a, a) for a in ALGORITHM_CHOICES]],
        required=False,
        help_text="for “the newest version of an algorithm”",
    )

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        kind = data.get("kind")
        if kind == "version" and not data.get("version"):
            self.add_error("version", "Which version?")
        if kind == "algorithm" and not data.get("algorithm"):
            self.add_error("algorithm", "Which algorithm?")
        return data

    def source(self) -> dict[str, Any]:
        data = self.cleaned_data
        source: dict[str, Any] = {"kind": data["kind"]}
        if data["kind"] == "version":
            source["version"] = data["version"]
        if data["kind"] == "algorithm":
            source["algorithm"] = data["algorithm"]
        return source


class ScenarioForm(SourceFields):
    key = forms.RegexField(
        regex=SCENARIO_RE,
        help_text="what your shop sends as `scenario`, e.g. product-page",
        error_messages={"invalid": "1-40 lowercase letters, digits, - and _, starting with a letter or digit"},
    )
    name = forms.CharField(max_length=100, required=False)

    field_order = ("key", "name", "kind", "version", "algorithm")


class ExperimentForm(forms.Form):
    name = forms.CharField(max_length=100)

    def __init__(self, *args: Any, scenarios: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["scenario"] = forms.ChoiceField(choices=[(key, key) for key in scenarios])


class VariantForm(SourceFields):
    key = forms.CharField(max_length=40, label="Variant")
    share = forms.FloatField(min_value=0.01, max_value=100, label="Share %")

    field_order = ("key", "share", "kind", "version", "algorithm")


# The given rows and two blank ones (a third and fourth variant); untouched blank rows are ignored.
VariantFormSet = forms.formset_factory(
    VariantForm, extra=2, min_num=2, max_num=10, validate_min=True, validate_max=True
)


# --------------------------------------------------------------------------- settings


class TrainingSettingsForm(forms.Form):
    algorithm = forms.ChoiceField(
        choices=[(a, a) for a in ALGORITHM_CHOICES], help_text="“auto” trains the candidates and keeps the best"
    )
    schedule_hour_utc = forms.TypedChoiceField(
        choices=[("", "never (manual only)"), *[(str(h), f"daily at {h:02d}:00 UTC") for h in range(24)]],
        coerce=int,
        empty_value=None,
        required=False,
        label="Retrain schedule",
    )
    retrain_growth = forms.FloatField(
        min_value=0, max_value=10, label="Also retrain when events grew by", help_text="a share, e.g. 0.25 = 25 %"
    )
    exclude_seen = forms.TypedChoiceField(
        choices=[
            ("auto", "automatic: recommend them again where repeat purchases are common"),
            ("true", "never: leave out what a shopper already had"),
            ("false", "always: a shopper's own items may come first"),
        ],
        coerce=lambda value: value if value == "auto" else value == "true",
        label="Recommend items a shopper already had",
        help_text="when a request does not say (its exclude_seen parameter)",
    )
    auto_promote = forms.BooleanField(required=False, help_text="serve a new version that passes the release gate")
    gate_tolerance = forms.FloatField(
        min_value=0,
        max_value=0.5,
        label="Gate tolerance",
        help_text="how much worse (relative NDCG@10) a new version may be",
    )
    keep_versions = forms.IntegerField(
        min_value=2, max_value=100, help_text="versions whose files are kept for rollback"
    )


class EventWeightsForm(forms.Form):
    """One weight per event type, a row to add a custom type, removal of custom types."""

    auto_create_items = forms.BooleanField(required=False, help_text="events for unknown items create them")
    auto_create_customers = forms.BooleanField(required=False, help_text="events for unknown customers create them")
    new_type = forms.RegexField(
        regex=r"^[a-z][a-z0-9_]{0,39}$",
        required=False,
        label="Add an event type",
        error_messages={"invalid": "lowercase letters, digits and _, starting with a letter (at most 40)"},
    )
    new_weight = forms.FloatField(required=False, min_value=-100, max_value=100, label="Its weight")

    def __init__(self, *args: Any, weights: dict[str, float], builtin: frozenset[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.types = list(weights)
        self.builtin = builtin
        for name, weight in weights.items():
            self.fields[f"weight_{name}"] = forms.FloatField(min_value=-100, max_value=100, initial=weight, label=name)
            if name not in builtin:
                self.fields[f"remove_{name}"] = forms.BooleanField(required=False, label=f"remove {name}")

    def weight_rows(self) -> list[tuple[str, Any, Any]]:
        return [
            (name, self[f"weight_{name}"], self[f"remove_{name}"] if name not in self.builtin else None)
            for name in self.types
        ]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("new_type") and data.get("new_weight") is None:
            self.add_error("new_weight", "Give the new type a weight.")
        if data.get("new_type") in self.types:
            self.add_error("new_type", "This type exists; change its weight above.")
        return data

    def changes(self) -> dict[str, Any]:
        data = self.cleaned_data
        weights = {name: data[f"weight_{name}"] for name in self.types if not data.get(f"remove_{name}")}
        if data.get("new_type"):
            weights[data["new_type"]] = data["new_weight"]
        return {
            "weights": weights,
            "auto_create_items": data["auto_create_items"],
            "auto_create_customers": data["auto_create_customers"],
        }


# --------------------------------------------------------------------------- team


class InviteForm(forms.Form):
    email = forms.EmailField()
    role = forms.ChoiceField(choices=Membership.Role.choices, initial=Membership.Role.VIEWER)


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Membership.Role.choices)


class JoinExistingForm(forms.Form):
    """An invited person who has an account confirms with its password."""

    password = forms.CharField(widget=forms.PasswordInput(attrs={"autocomplete": "current-password"}))


class JoinNewForm(forms.Form):
    """An invited person without an account chooses a password (Django's validators apply)."""

    password1 = forms.CharField(label="Password", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"}))
    password2 = forms.CharField(
        label="Password again", widget=forms.PasswordInput(attrs={"autocomplete": "new-password"})
    )

    def __init__(self, *args: Any, email: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.email = email

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        first, second = data.get("password1"), data.get("password2")
        if first and second and first != second:
            self.add_error("password2", "The two passwords differ.")
        elif first:
            from django.contrib.auth.models import User

            try:
                password_validation.validate_password(first, User(username=self.email, email=self.email))
            except forms.ValidationError as exc:
                self.add_error("password1", exc)
        return data
