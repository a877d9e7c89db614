"""The environment variables Shelfwise reads, typed and validated in one place (pydantic-settings).

``shelfwise.settings`` turns them into Django's settings; every one is listed in the README's
configuration table (tests/platform/test_configuration.py holds the two to each other). A blank
value means "not set" (the default applies), except for lists, where it means an empty list. A
value that does not parse stops the process with an error naming the variable.
"""

from __future__ import annotations

import os
from typing import Annotated, Any, Literal

from django.core.exceptions import ImproperlyConfigured
from pydantic import BeforeValidator, Field, ValidationError
from pydantic_core import PydanticUseDefault
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


def _blank_is_unset(value: Any) -> Any:
    if value == "":
        raise PydanticUseDefault
    return value


def _comma_separated(value: Any) -> Any:
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


Int = Annotated[int, BeforeValidator(_blank_is_unset)]
Float = Annotated[float, BeforeValidator(_blank_is_unset)]
Bool = Annotated[bool, BeforeValidator(_blank_is_unset)]
# Comma-separated; blank is an empty list (not the default).
CommaList = Annotated[list[str], NoDecode, BeforeValidator(_comma_separated)]


class Environment(BaseSettings):
    """What the process reads from its environment. ``None``: not set (the setting's default
    depends on other variables, e.g. ``SHELFWISE_ENV``)."""

    model_config = SettingsConfigDict(case_sensitive=True, extra="ignore")

    # --- core
    SHELFWISE_ENV: Literal["development", "test", "production"] = "development"
    SECRET_KEY: str | None = None
    DEBUG: Bool | None = None
    ALLOWED_HOSTS: CommaList | None = None
    CSRF_TRUSTED_ORIGINS: CommaList = Field(default_factory=list)
    SHELFWISE_BASE_DOMAIN: str = "localhost"
    SHELFWISE_PUBLIC_HOSTS: CommaList | None = None
    SHELFWISE_MAX_BODY_BYTES: Int = 16 * 1024 * 1024
    SHELFWISE_TRUSTED_PROXIES: Int = 0
    TRUST_X_FORWARDED_PROTO: Bool | None = None
    SECURE_SSL_REDIRECT: Bool = False
    SECURE_HSTS_SECONDS: Int = 0
    TENANT_MULTIPROCESSING_MAX_PROCESSES: Int = 2
    TENANT_MULTIPROCESSING_CHUNKS: Int = 2

    # --- data stores
    DATABASE_URL: str | None = None
    DATABASE_CONN_MAX_AGE: Int = 60
    DATABASE_CONNECT_TIMEOUT: Int = 5
    DATABASE_TEST_NAME: str = "test_shelfwise"
    SHELFWISE_ROLE: str = "shelfwise"
    REDIS_URL: str | None = None
    REDIS_SOCKET_TIMEOUT: Float = 0.25
    REDIS_CONNECT_TIMEOUT: Float = 0.25
    REDIS_CIRCUIT_OPEN_SECONDS: Float = 2.0
    SHELFWISE_DEV_STATE: str | None = None

    # --- e-mail
    EMAIL_BACKEND: str | None = None
    EMAIL_HOST: str = "localhost"
    EMAIL_PORT: Int = 25
    EMAIL_HOST_USER: str = ""
    EMAIL_HOST_PASSWORD: str = ""
    EMAIL_USE_TLS: Bool = False
    DEFAULT_FROM_EMAIL: str = "Shelfwise <no-reply@localhost>"

    # --- files
    STATIC_ROOT: str | None = None
    SHELFWISE_MEDIA_ROOT: str | None = None
    SHELFWISE_MODEL_BUCKET: str = ""
    AWS_REGION: str = ""
    AWS_S3_ENDPOINT_URL: str = ""

    # --- Celery
    CELERY_BROKER_URL: str = ""
    CELERY_RESULT_BACKEND: str | None = None
    CELERY_TASK_SOFT_TIME_LIMIT: Int = 300
    CELERY_TASK_TIME_LIMIT: Int = 360
    CELERY_VISIBILITY_TIMEOUT: Int = 4 * 3600

    # --- observability
    LOG_LEVEL: str = "INFO"
    LOG_FORMAT: str = "json"
    SENTRY_DSN: str = ""
    SENTRY_ENVIRONMENT: str | None = None
    SENTRY_RELEASE: str = ""
    SENTRY_TRACES_SAMPLE_RATE: Float = 0.0
    SHELFWISE_METRICS_TENANT_LABEL: str = "id"
    SHELFWISE_METRICS_TOKEN: str = ""
    SHELFWISE_METRICS_MAX_TENANTS: Int = 200
    SHELFWISE_METRICS_STATE_SECONDS: Float = 30.0

    # --- Shelfwise
    SHELFWISE_LOGIN_MAX_FAILURES: Int = 10
    SHELFWISE_LOGIN_MAX_FAILURES_PER_ADDRESS: Int = 50
    SHELFWISE_LOGIN_WINDOW_SECONDS: Int = 900
    SHELFWISE_RESET_MAILS_PER_HOUR: Int = 5
    SHELFWISE_APIKEY_CACHE_SECONDS: Int = 4
    SHELFWISE_AUTH_FAILURES_PER_MINUTE: Int = 30
    SHELFWISE_APIKEY_TOUCH_SECONDS: Int = 60
    SHELFWISE_TRAINING_SOFT_TIME_LIMIT: Int = 2 * 3600
    SHELFWISE_TRAINING_TIME_LIMIT: Int = 2 * 3600 + 300
    SHELFWISE_TRAINING_STALE_SECONDS: Int = 300
    SHELFWISE_MODEL_CACHE_BYTES: Int = 512 * 1024 * 1024
    SHELFWISE_ANN_MIN_ITEMS: Int = 200_000
    SHELFWISE_SERVING_CONFIG_SECONDS: Float = 2.0
    SHELFWISE_RECOMMENDATION_CACHE_SECONDS: Int = 900
    SHELFWISE_FAST_PATH: Bool = True


_KINDS = {
    "bool_parsing": "a boolean (true/false)",
    "bool_type": "a boolean (true/false)",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
}


def read_environment() -> Environment:
    """The environment, validated; ImproperlyConfigured names every variable that is wrong."""
    try:
        return Environment()
    except ValidationError as exc:
        problems = []
        for error in exc.errors(include_url=False):
            name = str(error["loc"][0]) if error["loc"] else "?"
            kind = _KINDS.get(error["type"])
            if name == "SHELFWISE_ENV":
                problems.append(f"SHELFWISE_ENV must be development, test or production, not {os.environ.get(name)!r}")
            elif kind is not None:
                problems.append(f"{name} must be {kind}, not {os.environ.get(name)!r}")
            else:  # e.g. SHELFWISE_ENV: "Input should be 'development', 'test' or 'production'"
                problems.append(f"{name}: {error['msg']}")
        raise ImproperlyConfigured("; ".join(problems)) from None
