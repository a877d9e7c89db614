"""The API: /api/v1/... (versioned), problem-type docs, OpenAPI schema and interactive docs."""

from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularRedocView, SpectacularSwaggerView

from shelfwise.http.errors import api_not_found_view, problem_type_view

urlpatterns = [
    # Recommendations first: the hot serving paths resolve after the fewest patterns (the
    # apps' patterns do not overlap, so the order changes nothing else).
    path("v1/", include("recommendations.urls")),
    path("v1/schema", SpectacularAPIView.as_view(authentication_classes=[], permission_classes=[]), name="schema"),
    path(
        "docs",
        SpectacularSwaggerView.as_view(url_name="schema", authentication_classes=[], permission_classes=[]),
        name="docs",
    ),
    path(
        "redoc",
        SpectacularRedocView.as_view(url_name="schema", authentication_classes=[], permission_classes=[]),
        name="redoc",
    ),
    path("v1/", include("tenants.urls")),
    path("v1/", include("catalog.urls")),
    path("problems/<slug:code>", problem_type_view, name="problem-type"),
    # Last: every other /api/ path answers problem+json 404.
    re_path(r"^(?P<unmatched>.*)$", api_not_found_view),
]
