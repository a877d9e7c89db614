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
from collections.abc import Callable
from typing import Any, TypeVar

from django import forms
from django.conf import settings
from django.http import HttpRequest

from shelfwise.datastores.redis_client import redis_call
from shelfwise.http.ratelimit import client_ip

logger = logging.getLogger(__name__)
T = TypeVar("T")

THROTTLED_MESSAGE = "Too many failed attempts. Wait %(minutes)d minutes before trying again."


def _keys(kind: str, request: HttpRequest | None, username: str) -> list[str]:
    """The account's counter and, with a request, the client address's (global ``sw:`` keys:
    accounts are not a store's)."""
    account = hashlib.sha256(username.strip().lower().encode()).hexdigest()[:32]
    keys = [f"sw:login:{kind}:account:{account}"]
    if request is not None:
        keys.append(f"sw:login:{kind}:ip:{client_ip(request)}")
    return keys


def _count(keys: list[str], window_seconds: int) -> list[int] | None:
    """Add one to each counter (its window runs from its first count); None without Redis."""

    def count(client: Any) -> list[int]:
        pipe = client.pipeline(transaction=False)
        for key in keys:
            pipe.set(key, 0, ex=window_seconds, nx=True)
            pipe.incr(key)
        return [int(n) for n in pipe.execute()[1::2]]

    counts: list[int] | None = redis_call(count, default=None)
    return counts


def login_throttled(request: HttpRequest | None, username: str) -> bool:
    """True while the account or the address has failed too often in the window."""
    keys = _keys("fail", request, username)
    counts = redis_call(lambda client: client.mget(keys), default=None)
    if counts is None:
        logger.warning("login throttling unavailable (Redis): not counting failed logins")
        return False
    limits = (settings.SHELFWISE_LOGIN_MAX_FAILURES, settings.SHELFWISE_LOGIN_MAX_FAILURES_PER_ADDRESS)
    return any(int(count or 0) >= limit for count, limit in zip(counts, limits, strict=False))


def login_failed(request: HttpRequest | None, username: str) -> None:
    _count(_keys("fail", request, username), settings.SHELFWISE_LOGIN_WINDOW_SECONDS)


def login_succeeded(request: HttpRequest | None, username: str) -> None:
    account = _keys("fail", request, username)[0]
    redis_call(lambda client: client.delete(account), default=None)


class LoginThrottled(Exception):
    """Too many failed attempts for this account or address; carries the user-facing message."""

    def __init__(self) -> None:
        minutes = max(1, settings.SHELFWISE_LOGIN_WINDOW_SECONDS // 60)
        super().__init__(THROTTLED_MESSAGE % {"minutes": minutes})


def password_attempt(request: HttpRequest | None, username: str, attempt: Callable[[], T]) -> T:
    """Run a password check (``attempt`` raises, or returns None, when the password is wrong)
    under the throttle: refused while throttled, a failure counted, a success clearing the
    account's count. Used by the logins and the invitation's password confirmation."""
    if username and login_throttled(request, username):
        raise LoginThrottled
    try:
        result = attempt()
    except Exception:
        if username:
            login_failed(request, username)
        raise
    if username:
        if result is None:
            login_failed(request, username)
        else:
            login_succeeded(request, username)
    return result


class ThrottledLoginMixin:
    """For AuthenticationForm subclasses: refuse while throttled, count failures, clear on success."""

    request: HttpRequest | None
    cleaned_data: dict[str, Any]

    def clean(self) -> dict[str, Any]:
        username = str(self.cleaned_data.get("username") or "")
        try:
            cleaned: dict[str, Any] = password_attempt(
                self.request,
                username,
                super().clean,  # type: ignore[misc]  # AuthenticationForm.clean
            )
        except LoginThrottled as exc:
            raise forms.ValidationError(str(exc), code="throttled") from exc
        return cleaned


def password_reset_mail_allowed(request: HttpRequest | None, email: str) -> bool:
    """Count a password-reset request; False once more than SHELFWISE_RESET_MAILS_PER_HOUR were
    asked for one account in the hour, or three times that from one client address (mail
    bombing). The page answers the same either way; only the e-mail is not sent. Without Redis,
    allowed."""
    counts = _count(_keys("reset", request, email), 3600)
    if counts is None:
        return True
    per_account = settings.SHELFWISE_RESET_MAILS_PER_HOUR
    return all(n <= limit for n, limit in zip(counts, (per_account, 3 * per_account), strict=False))
