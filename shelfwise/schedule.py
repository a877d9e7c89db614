"""Celery beat schedule. Tasks are referenced by name so this module imports no app."""

from __future__ import annotations

from celery.schedules import crontab

BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "tenant-usage-refresh": {
        "task": "catalog.tasks.usage_refresh_all",
        "schedule": crontab(minute="*/15"),
        "options": {"queue": "default", "expires": 15 * 60},
    },
}
