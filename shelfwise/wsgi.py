"""WSGI entry point (gunicorn shelfwise.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "shelfwise.settings")

application = get_wsgi_application()
