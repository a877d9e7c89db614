"""Django settings for Shelfwise, configured from the environment.

The environment is read and validated in ``shelfwise.environment`` (every variable is listed in
the README's configuration table). ``SHELFWISE_ENV`` is ``development`` (default), ``test`` or
``production``. Outside production, when ``DATABASE_URL``/``REDIS_URL`` are not set, the
dev-server state file written by ``python -m shelfwise.dev.servers start`` supplies them; with
neither the settings refuse to load rather than guess a server (127.0.0.1:5432/6379 may belong
to someone else).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from shelfwise.environment import read_environment

BASE_DIR = Path(__file__).resolve().parent.parent

env = read_environment()
ENVIRONMENT = env.SHELFWISE_ENV
PRODUCTION = ENVIRONMENT == "production"
TESTING = ENVIRONMENT == "test"


def _dev_state() -> dict[str, Any]:
    """The dev-server state (``.dev/servers.json``), or {} in production / when absent."""
    if PRODUCTION:
        return {}
    path = Path(env.SHELFWISE_DEV_STATE if env.SHELFWISE_DEV_STATE is not None else BASE_DIR / ".dev" / "servers.json")
    if not path.exists():
        return {}
    state: dict[str, Any] = json.loads(path.read_text())
    return state


_DEV_STATE = _dev_state()


def _server_url(name: str, given: str | None, state_key: str, field: str = "url") -> str:
    value = given or (_DEV_STATE.get(state_key) or {}).get(field)
    if not value:
        raise ImproperlyConfigured(
            f"{name} is not set and no dev servers are running. Set {name} to a real server, or run "
            "`make run` / `python -m shelfwise.dev.servers start` for the embedded ones."
        )
    return str(value)


# --------------------------------------------------------------------------- core

_DEV_SECRET = "dev-insecure-secret-key-not-for-production"  # noqa: S105 - refused in production below
SECRET_KEY = env.SECRET_KEY if env.SECRET_KEY is not None else ("" if PRODUCTION else _DEV_SECRET)
DEBUG = env.DEBUG if env.DEBUG is not None else ENVIRONMENT == "development"
ALLOWED_HOSTS = (
    env.ALLOWED_HOSTS
    if env.ALLOWED_HOSTS is not None
    else ([] if PRODUCTION else ["localhost", ".localhost", "127.0.0.1", "testserver"])
)

if PRODUCTION:
    problems = []
    if DEBUG:
        problems.append("DEBUG must be off")
    if not SECRET_KEY or SECRET_KEY == _DEV_SECRET or len(SECRET_KEY) < 32:
        problems.append("SECRET_KEY must be set to a random value of at least 32 characters")
    if not ALLOWED_HOSTS:
        problems.append("ALLOWED_HOSTS must list the hosts this deployment serves")
    if problems:
        raise ImproperlyConfigured("refusing to start in production: " + "; ".join(problems))

SHARED_APPS = [
    "django_tenants",
    "tenants",
    "support",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "dashboard",
]
TENANT_APPS = [
    "django.contrib.contenttypes",
    "catalog",
    "recommendations",
]
INSTALLED_APPS = list(dict.fromkeys(SHARED_APPS + TENANT_APPS))

# migrate_schemas --executor=multiprocessing: schemas migrated in parallel (one connection each).
TENANT_MULTIPROCESSING_MAX_PROCESSES = env.TENANT_MULTIPROCESSING_MAX_PROCESSES
TENANT_MULTIPROCESSING_CHUNKS = env.TENANT_MULTIPROCESSING_CHUNKS
TENANT_MODEL = "tenants.Tenant"
TENANT_DOMAIN_MODEL = "tenants.Domain"
# `SET search_path` once per connection and schema switch, not before every statement (which
# doubled the round trips of every query). Switching goes through set_tenant/set_schema, which
# forget the path; so do ROLLBACK, ROLLBACK TO SAVEPOINT and a closed connection (PostgreSQL
# undoes a SET with the transaction that made it). tests/e2e/test_isolation_matrix.py and
# tests/platform/test_tenancy_search_path.py hold it to that.
TENANT_LIMIT_SET_CALLS = True
PUBLIC_SCHEMA_NAME = "public"
DATABASE_ROUTERS = ["django_tenants.routers.TenantSyncRouter"]

# Tenant hosts are <slug>.<base domain>; the base domain itself is the public (support) site.
SHELFWISE_BASE_DOMAIN = env.SHELFWISE_BASE_DOMAIN
SHELFWISE_PUBLIC_HOSTS = (
    env.SHELFWISE_PUBLIC_HOSTS
    if env.SHELFWISE_PUBLIC_HOSTS is not None
    else [SHELFWISE_BASE_DOMAIN, "127.0.0.1", "testserver"]
)

MIDDLEWARE = [
    "shelfwise.observability.health.ProbeMiddleware",
    "shelfwise.http.middleware.RequestContextMiddleware",
    "shelfwise.http.middleware.TenantRoutingMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "shelfwise.http.middleware.ContentSecurityPolicyMiddleware",
]

ROOT_URLCONF = "shelfwise.urls"
WSGI_APPLICATION = "shelfwise.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --------------------------------------------------------------------------- data stores

DATABASE_URL = _server_url("DATABASE_URL", env.DATABASE_URL, "postgres")
DATABASES: dict[str, dict[str, Any]] = {
    "default": {
        **dj_database_url.parse(
            DATABASE_URL,
            conn_max_age=env.DATABASE_CONN_MAX_AGE,
            conn_health_checks=True,
        ),
        "ENGINE": "django_tenants.postgresql_backend",
    }
}
DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env.DATABASE_CONNECT_TIMEOUT)
DATABASES["default"]["OPTIONS"].setdefault("application_name", env.SHELFWISE_ROLE)
DATABASES["default"]["TEST"] = {"NAME": env.DATABASE_TEST_NAME}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = _server_url("REDIS_URL", env.REDIS_URL, "redis")
# Serving must never wait long on Redis: explicit timeouts, no exponential retry (PITFALLS).
REDIS_SOCKET_TIMEOUT = env.REDIS_SOCKET_TIMEOUT
REDIS_CONNECT_TIMEOUT = env.REDIS_CONNECT_TIMEOUT
# After a Redis failure, callers skip Redis for this many seconds instead of timing out on every call.
REDIS_CIRCUIT_OPEN_SECONDS = env.REDIS_CIRCUIT_OPEN_SECONDS

# --------------------------------------------------------------------------- auth and security

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LOGIN_URL = "dashboard:login"
LOGIN_REDIRECT_URL = "dashboard:overview"
EMAIL_BACKEND = (
    env.EMAIL_BACKEND
    if env.EMAIL_BACKEND is not None
    else "django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "django.core.mail.backends.console.EmailBackend"
)
EMAIL_HOST = env.EMAIL_HOST
EMAIL_PORT = env.EMAIL_PORT
EMAIL_HOST_USER = env.EMAIL_HOST_USER
EMAIL_HOST_PASSWORD = env.EMAIL_HOST_PASSWORD
EMAIL_USE_TLS = env.EMAIL_USE_TLS
DEFAULT_FROM_EMAIL = env.DEFAULT_FROM_EMAIL
# The dashboard's Content-Security-Policy: scripts, styles and everything else from this site
# only (the chart and htmx libraries are served by the app); no inline scripts or styles.
SHELFWISE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; object-src 'none'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'"
)
SESSION_COOKIE_SECURE = PRODUCTION
CSRF_COOKIE_SECURE = PRODUCTION
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_PROXY_SSL_HEADER = (
    ("HTTP_X_FORWARDED_PROTO", "https")
    if (env.TRUST_X_FORWARDED_PROTO if env.TRUST_X_FORWARDED_PROTO is not None else PRODUCTION)
    else None
)
SECURE_SSL_REDIRECT = env.SECURE_SSL_REDIRECT
SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$", r"^metrics$"]  # probes and scrapes inside the network
SECURE_HSTS_SECONDS = env.SECURE_HSTS_SECONDS
CSRF_TRUSTED_ORIGINS = env.CSRF_TRUSTED_ORIGINS
# How many reverse proxies (load balancers) in front of the app append to X-Forwarded-For; 0
# means the header is ignored and the socket address is the client (rate limits by address).
SHELFWISE_TRUSTED_PROXIES = env.SHELFWISE_TRUSTED_PROXIES

# Request bodies: the API's own limits (rows per batch, property sizes) are enforced in the
# services; this is the hard ceiling on what Django will read at all.
DATA_UPLOAD_MAX_MEMORY_SIZE = env.SHELFWISE_MAX_BODY_BYTES

# Browsers call the API with a store's public key from the store's own pages: any origin may,
# since the key (not a cookie) is the credential. Nothing outside /api/ is cross-origin.
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_ALL_ORIGINS = True
CORS_ALLOW_CREDENTIALS = False
CORS_ALLOW_HEADERS = ["authorization", "content-type", "idempotency-key", "x-request-id", "shelfwise-customer-token"]
CORS_EXPOSE_HEADERS = [
    "x-request-id",
    "ratelimit-limit",
    "ratelimit-remaining",
    "ratelimit-reset",
    "ratelimit-policy",
    "retry-after",
    "idempotent-replayed",
    "x-shelfwise-cache",
    "x-shelfwise-customer-token",
]
CORS_PREFLIGHT_MAX_AGE = 3600

# --------------------------------------------------------------------------- i18n, static

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = Path(env.STATIC_ROOT if env.STATIC_ROOT is not None else BASE_DIR / ".dev" / "static")
STORAGES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG or TESTING
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG or TESTING
WHITENOISE_AUTOREFRESH = DEBUG or TESTING
MEDIA_ROOT = Path(env.SHELFWISE_MEDIA_ROOT if env.SHELFWISE_MEDIA_ROOT is not None else BASE_DIR / ".dev" / "media")

# Model artifacts: local disk under MEDIA_ROOT by default, an S3 bucket when configured
# (django-storages; credentials from the usual AWS environment or instance role).
SHELFWISE_MODEL_BUCKET = env.SHELFWISE_MODEL_BUCKET
if SHELFWISE_MODEL_BUCKET:
    STORAGES["models"] = {
        "BACKEND": "storages.backends.s3.S3Storage",
        "OPTIONS": {
            "bucket_name": SHELFWISE_MODEL_BUCKET,
            "region_name": env.AWS_REGION or None,
            "endpoint_url": env.AWS_S3_ENDPOINT_URL or None,
            "default_acl": None,
            "file_overwrite": True,
            "querystring_auth": False,
        },
    }
else:
    STORAGES["models"] = {
        "BACKEND": "django.core.files.storage.FileSystemStorage",
        "OPTIONS": {"location": str(MEDIA_ROOT), "base_url": None},
    }

# --------------------------------------------------------------------------- API

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["tenants.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["tenants.authentication.HasApiKeyScope"],
    "DEFAULT_RENDERER_CLASSES": ["shelfwise.http.content.ORJSONRenderer", "shelfwise.http.content.ProblemJSONRenderer"],
    "DEFAULT_PARSER_CLASSES": ["shelfwise.http.content.BoundedJSONParser"],
    "DEFAULT_SCHEMA_CLASS": "shelfwise.http.openapi.ProblemAutoSchema",
    "EXCEPTION_HANDLER": "shelfwise.http.errors.problem_exception_handler",
    "UNAUTHENTICATED_USER": None,
    "UNAUTHENTICATED_TOKEN": None,
    "DEFAULT_THROTTLE_CLASSES": [],
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Shelfwise API",
    "DESCRIPTION": (
        "Catalog, shopper events and recommendations for online stores.\n\n"
        "Authenticate with `Authorization: Bearer <key>`. Errors are RFC 9457 problem+json with a stable "
        "`code`; see `/api/problems/<code>`."
    ),
    "VERSION": "1.0.0",
    "OAS_VERSION": "3.1.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "SCHEMA_PATH_PREFIX": r"/api/v1",
}

# --------------------------------------------------------------------------- Celery

CELERY_BROKER_URL = env.CELERY_BROKER_URL or (_DEV_STATE.get("redis") or {}).get("broker_url") or REDIS_URL
CELERY_RESULT_BACKEND = env.CELERY_RESULT_BACKEND if env.CELERY_RESULT_BACKEND is not None else CELERY_BROKER_URL
CELERY_RESULT_EXPIRES = 24 * 3600
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_TASK_QUEUES_NAMES = ("default", "training", "scoring")
# A task is acknowledged only when done; a worker that dies mid-task has it redelivered.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.CELERY_TASK_SOFT_TIME_LIMIT
CELERY_TASK_TIME_LIMIT = env.CELERY_TASK_TIME_LIMIT
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # Must exceed the longest task (training's own hard limit) or unacked tasks get redelivered
    # while still running; training jobs also carry their own heartbeat (recommendations).
    "visibility_timeout": env.CELERY_VISIBILITY_TIMEOUT,
    "socket_timeout": 5,
    "socket_connect_timeout": 2,
}
# Sending a task while the broker is away fails within seconds (a request that sends one answers
# 503 or records the work to do later) instead of retrying for long.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 1, "interval_start": 0, "interval_step": 0.5, "interval_max": 0.5}
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_WORKER_SEND_TASK_EVENTS = True
CELERY_TASK_SEND_SENT_EVENT = True
CELERY_TASK_TRACK_STARTED = True
CELERY_TASK_TENANT_CACHE_SECONDS = 30

# --------------------------------------------------------------------------- observability

LOG_LEVEL = env.LOG_LEVEL
LOG_FORMAT = env.LOG_FORMAT
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"context": {"()": "shelfwise.observability.logs.ContextFilter"}},
    "formatters": {
        "json": {"()": "shelfwise.observability.logs.JsonFormatter"},
        "console": {"format": "%(asctime)s %(levelname)s %(name)s [%(request_id)s %(tenant)s] %(message)s"},
    },
    "handlers": {
        "stdout": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stdout",
            "formatter": LOG_FORMAT if LOG_FORMAT in {"json", "console"} else "json",
            "filters": ["context"],
        }
    },
    "root": {"handlers": ["stdout"], "level": LOG_LEVEL},
    "loggers": {
        # The request line comes from shelfwise.request; Django's own 4xx warnings would repeat it.
        "django.request": {"level": "ERROR"},
        "django.server": {"level": "WARNING"},
        "django.db.backends": {"level": "WARNING"},
        "faiss.loader": {"level": "WARNING"},  # which CPU build it loaded, at every import
    },
}

SENTRY_DSN = env.SENTRY_DSN
SENTRY_ENVIRONMENT = env.SENTRY_ENVIRONMENT if env.SENTRY_ENVIRONMENT is not None else ENVIRONMENT
SENTRY_RELEASE = env.SENTRY_RELEASE
SENTRY_TRACES_SAMPLE_RATE = env.SENTRY_TRACES_SAMPLE_RATE

# --------------------------------------------------------------------------- Shelfwise

# Password logins (dashboard, Django admin): failed attempts allowed per account and per client
# address within the window before the login refuses even the right password until it ends.
SHELFWISE_LOGIN_MAX_FAILURES = env.SHELFWISE_LOGIN_MAX_FAILURES
SHELFWISE_LOGIN_MAX_FAILURES_PER_ADDRESS = env.SHELFWISE_LOGIN_MAX_FAILURES_PER_ADDRESS
SHELFWISE_LOGIN_WINDOW_SECONDS = env.SHELFWISE_LOGIN_WINDOW_SECONDS
# Password-reset e-mails per account per hour (three times that per client address).
SHELFWISE_RESET_MAILS_PER_HOUR = env.SHELFWISE_RESET_MAILS_PER_HOUR
# How long an API key's verified record may be served from Redis. Revocation and suspension
# delete it at once; when they cannot (Redis unreachable from where they happen), this bounds
# how long the key may still be accepted.
SHELFWISE_APIKEY_CACHE_SECONDS = env.SHELFWISE_APIKEY_CACHE_SECONDS
# Failed key authentications allowed per client address and minute before the next is refused
# (429) without a database read.
SHELFWISE_AUTH_FAILURES_PER_MINUTE = env.SHELFWISE_AUTH_FAILURES_PER_MINUTE
# An API key's last-used time is written at most this often per process.
SHELFWISE_APIKEY_TOUCH_SECONDS = env.SHELFWISE_APIKEY_TOUCH_SECONDS
SHELFWISE_DEMO_FILE = BASE_DIR / ".dev" / "demo.json"
# Training: the task's limits, and after how long without a heartbeat a job is re-sent.
SHELFWISE_TRAINING_SOFT_TIME_LIMIT = env.SHELFWISE_TRAINING_SOFT_TIME_LIMIT
SHELFWISE_TRAINING_TIME_LIMIT = env.SHELFWISE_TRAINING_TIME_LIMIT
SHELFWISE_TRAINING_STALE_SECONDS = env.SHELFWISE_TRAINING_STALE_SECONDS
# Serving: loaded model versions per process (bytes), how long routing config is reused, how
# long a computed list stays cached (a customer's new event replaces it at once).
SHELFWISE_MODEL_CACHE_BYTES = env.SHELFWISE_MODEL_CACHE_BYTES
# From this many items a factor model's version gets an ANN index (docs/adr/0009).
SHELFWISE_ANN_MIN_ITEMS = env.SHELFWISE_ANN_MIN_ITEMS
SHELFWISE_SERVING_CONFIG_SECONDS = env.SHELFWISE_SERVING_CONFIG_SECONDS
SHELFWISE_RECOMMENDATION_CACHE_SECONDS = env.SHELFWISE_RECOMMENDATION_CACHE_SECONDS
# Cached recommendations answered before Django's routing and most middleware (shelfwise.http.fastpath);
# off, every request takes the full handler (same answers, more CPU per hit).
SHELFWISE_FAST_PATH = env.SHELFWISE_FAST_PATH
SHELFWISE_METRICS_TENANT_LABEL = env.SHELFWISE_METRICS_TENANT_LABEL
# /metrics needs `Authorization: Bearer <token>`; without one it answers loopback callers only
# outside production (404 in production).
SHELFWISE_METRICS_TOKEN = env.SHELFWISE_METRICS_TOKEN
SHELFWISE_METRICS_MAX_TENANTS = env.SHELFWISE_METRICS_MAX_TENANTS
SHELFWISE_METRICS_STATE_SECONDS = env.SHELFWISE_METRICS_STATE_SECONDS

from shelfwise.observability.sentry import init_sentry  # noqa: E402 - needs the settings above

init_sentry(
    dsn=SENTRY_DSN, environment=SENTRY_ENVIRONMENT, release=SENTRY_RELEASE, traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE
)
