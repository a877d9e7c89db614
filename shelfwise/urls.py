"""URL routes: probes, the v1 API, API docs, the dashboard and Django admin."""

from django.contrib import admin
from django.urls import include, path

from shelfwise.observability import health, metrics

handler400 = "shelfwise.http.errors.handler400"
handler403 = "shelfwise.http.errors.handler403"
handler404 = "shelfwise.http.errors.handler404"
handler500 = "shelfwise.http.errors.handler500"

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.metrics_view, name="metrics"),
    path("api/", include("shelfwise.http.urls")),
    path("admin/", admin.site.urls),
    path("dashboard/", include("dashboard.urls")),
]
