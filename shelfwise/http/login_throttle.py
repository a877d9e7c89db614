"""Brute force on the password logins (dashboard, Django admin, invitations): attempts are
counted in Redis per account and per client address over a window — counted before the password
is checked, so concurrent guesses cannot pass the limit — and a success takes its count back;
past the limit the login answers "too many attempts" — even with the right password — until the
window has passed since the first failure. A success clears the account's count.

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


def _attempt_counted(request: HttpRequest | None, username: str) -> bool:
    """Count this attempt first, then judge it: True if it may check the password. Counting
    first makes the limit hold under concurrency — 24 simultaneous guesses against a limit of
    10 get 10 password checks, not as many as arrive before the first failure is counted."""
    counts = _count(_keys("fail", request, username), settings.SHELFWISE_LOGIN_WINDOW_SECONDS)
    if counts is None:
        logger.warning("login throttling unavailable (Redis): not counting failed logins")
        return True
    limits = (settings.SHELFWISE_LOGIN_MAX_FAILURES, settings.SHELFWISE_LOGIN_MAX_FAILURES_PER_ADDRESS)
    return all(count <= limit for count, limit in zip(counts, limits, strict=False))


def _attempt_succeeded(request: HttpRequest | None, username: str) -> None:
    """The password was right: the account's count starts again, and the address's count takes
    this attempt back (an address is limited by its failures)."""
    keys = _keys("fail", request, username)

    def uncount(client: Any) -> None:
        pipe = client.pipeline(transaction=False)
        pipe.delete(keys[0])
        for key in keys[1:]:
            pipe.decr(key)
        pipe.execute()

    redis_call(uncount, default=None)


class LoginThrottled(Exception):
    """Too many failed attempts for this account or address; carries the user-facing message."""

    def __init__(self) -> None:
        minutes = max(1, settings.SHELFWISE_LOGIN_WINDOW_SECONDS // 60)
        super().__init__(THROTTLED_MESSAGE % {"minutes": minutes})


def password_attempt(request: HttpRequest | None, username: str, attempt: Callable[[], T]) -> T:
    """Run a password check (``attempt`` raises, or returns None, when the password is wrong)
    under the throttle: the attempt is counted first and refused past the limit, a success
    clears the account's count. Used by the logins and the invitation's password confirmation."""
    if username and not _attempt_counted(request, username):
        raise LoginThrottled
    result = attempt()  # a failure (an exception, or None) stays counted
    if username and result is not None:
        _attempt_succeeded(request, username)
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
