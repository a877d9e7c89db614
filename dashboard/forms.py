"""Dashboard forms."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth.forms import AuthenticationForm

from tenants import keys
from tenants.models import ApiKey, Membership


class StoreAuthenticationForm(AuthenticationForm):
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
