"""Shelfwise: the project package (settings, URLs, Celery app, cross-cutting platform code)."""

from shelfwise.celery import app as celery_app

__all__ = ["celery_app"]
