"""WSGI entry point (gunicorn shelfwise.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

from shelfwise.http.fastpath import FastPathApplication
from shelfwise.observability.tracing import init_tracing

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shelfwise.settings")

init_tracing("web")  # before the middleware is built (no-op without an OTLP endpoint)
# Cache hits are answered before Django's URL routing and most middleware (shelfwise.http.fastpath).
application = FastPathApplication(get_wsgi_application())
