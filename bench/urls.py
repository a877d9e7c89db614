"""The product's URLs plus /api/bench/ceiling: a bare Django view that returns one Redis value,
through the same middleware — the throughput ceiling the serving benchmark compares against."""

from django.http import HttpRequest, HttpResponse
from django.urls import path

from shelfwise.datastores.redis_client import redis_client
from shelfwise.urls import handler400, handler403, handler404, handler500
from shelfwise.urls import urlpatterns as product_urls

CEILING_KEY = "bench:ceiling"


def ceiling(request: HttpRequest) -> HttpResponse:
    value = redis_client().get(CEILING_KEY) or b"{}"
    return HttpResponse(value, content_type="application/json")


urlpatterns = [path("api/bench/ceiling", ceiling), *product_urls]
__all__ = ["handler400", "handler403", "handler404", "handler500", "urlpatterns"]
