"""Brute force on the password logins (dashboard, Django admin): failed attempts are counted in
Redis per account and per client address over a window; past the limit the login answers "too
many attempts" — even with the right password — until the window has passed since the first
failure. A success clears the account's count.

Per account stops guessing one person's password from many addresses; per address stops one
address trying many accounts. Without Redis the counts cannot be kept and logins are not
throttled (the service degrades, as elsewhere): logged as a warning.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from django import forms
from django.conf import settings
from django.http import HttpRequest

from shelfwise.api import client_ip
from shelfwise.redis_client import redis_call

logger = logging.getLogger(__name__)

THROTTLED_MESSAGE = "Too many failed attempts. Wait %(minutes)d minutes before trying again."


def _keys(request: HttpRequest | None, username: str) -> list[str]:
    account = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    keys = [f"login:fail:account:{account}"]
    if request is not None:
        keys.append(f"login:fail:ip:{client_ip(request)}")
    return keys


def _limits() -> tuple[int, int]:
    return settings.SHELFWISE_LOGIN_MAX_FAILURES, settings.SHELFWISE_LOGIN_MAX_FAILURES_PER_ADDRESS


def login_throttled(request: HttpRequest | None, username: str) -> bool:
    """True while the account or the address has failed too often in the window."""
    keys = _keys(request, username)
    counts = redis_call(lambda client: client.mget(keys), default=None)
    if counts is None:
        logger.warning("login throttling unavailable (Redis): not counting failed logins")
        return False
    limits = _limits()
    return any(int(count or 0) >= limit for count, limit in zip(counts, limits, strict=False))


def login_failed(request: HttpRequest | None, username: str) -> None:
    window = settings.SHELFWISE_LOGIN_WINDOW_SECONDS

    def count(client: Any) -> None:
        pipe = client.pipeline(transaction=False)
        for key in _keys(request, username):
            pipe.set(key, 0, ex=window, nx=True)  # the window runs from the first failure
            pipe.incr(key)
        pipe.execute()

    redis_call(count, default=None)


def login_succeeded(request: HttpRequest | None, username: str) -> None:
    account = _keys(request, username)[0]
    redis_call(lambda client: client.delete(account), default=None)


class ThrottledLoginMixin:
    """For AuthenticationForm subclasses: refuse while throttled, count failures, clear on success."""

    request: HttpRequest | None
    cleaned_data: dict[str, Any]

    def clean(self) -> dict[str, Any]:
        username = str(self.cleaned_data.get("username") or "")
        if username and login_throttled(self.request, username):
            minutes = max(1, settings.SHELFWISE_LOGIN_WINDOW_SECONDS // 60)
            raise forms.ValidationError(THROTTLED_MESSAGE, code="throttled", params={"minutes": minutes})
        try:
            cleaned: dict[str, Any] = super().clean()  # type: ignore[misc]  # AuthenticationForm.clean
        except forms.ValidationError:
            if username:
                login_failed(self.request, username)
            raise
        if username:
            login_succeeded(self.request, username)
        return cleaned


def password_reset_mail_allowed(request: HttpRequest | None, email: str) -> bool:
    """Count a password-reset request; False once an address asked more than
    SHELFWISE_RESET_MAILS_PER_HOUR times for one account, or its client address three times that
    (mail bombing, and a way to probe which addresses have accounts). The page answers the same
    either way; only the e-mail is not sent. Without Redis, allowed."""
    account = hashlib.sha256(email.strip().lower().encode()).hexdigest()[:32]
    keys = [f"login:reset:account:{account}"]
    if request is not None:
        keys.append(f"login:reset:ip:{client_ip(request)}")
    per_account = settings.SHELFWISE_RESET_MAILS_PER_HOUR

    def count(client: Any) -> list[int]:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.set(key, 0, ex=3600, nx=True)
            pipe.incr(key)
        return [int(n) for n in pipe.execute()[1::2]]

    counts = redis_call(count, default=None)
    if counts is None:
        return True
    return all(n <= limit for n, limit in zip(counts, (per_account, 3 * per_account), strict=False))
