"""Celery beat schedule. Tasks are referenced by name so this module imports no app."""

from __future__ import annotations

from celery.schedules import crontab

BEAT_SCHEDULE: dict[str, dict[str, object]] = {
    "impressions-flush": {
        "task": "recommendations.tasks.impressions_flush_all",
        "schedule": crontab(minute="*"),
        "options": {"queue": "default", "expires": 60},
    },
    "trainings-schedule": {
        "task": "recommendations.tasks.trainings_schedule",
        "schedule": crontab(minute="*/10"),
        "options": {"queue": "default", "expires": 10 * 60},
    },
    "training-jobs-reap": {
        "task": "recommendations.tasks.training_jobs_reap_all",
        "schedule": crontab(minute="*/5"),
        "options": {"queue": "default", "expires": 5 * 60},
    },
    # What writes owed Redis during an outage catches up within seconds of its return.
    "outbox-drain": {
        "task": "recommendations.tasks.outbox_drain_all",
        "schedule": 5.0,
        "options": {"queue": "default", "expires": 5},
    },
    "outbox-sweep": {
        "task": "recommendations.tasks.outbox_drain_all",
        "schedule": crontab(minute="*/15"),
        "kwargs": {"sweep": True},
        "options": {"queue": "default", "expires": 15 * 60},
    },
    "tenant-usage-refresh": {
        "task": "catalog.tasks.usage_refresh_all",
        "schedule": crontab(minute="*/15"),
        "options": {"queue": "default", "expires": 15 * 60},
    },
}
