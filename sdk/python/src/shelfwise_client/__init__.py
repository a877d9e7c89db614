"""Python client for the Shelfwise recommendation API.

    from shelfwise_client import Shelfwise

    with Shelfwise("sk_live_…", base_url="http://localhost:8000/api/v1/") as client:
        client.events.batch([{"customer_id": "c1", "item_id": "sku-1", "type": "view"}])
        print(client.recommendations.for_customer("c1", count=5)["items"])

:class:`AsyncShelfwise` has the same methods, awaited. :func:`customer_token` mints the token a
page with a public key needs for a signed-in shopper's personal recommendations. Errors are :class:`ShelfwiseError`
subclasses (see :mod:`shelfwise_client.errors`); shapes are in :mod:`shelfwise_client.types`.
"""

from ._client import AsyncShelfwise, Shelfwise
from ._core import USER_AGENT, ClientOptions
from ._version import __version__
from .errors import (
    APIError,
    AuthenticationError,
    ConflictError,
    JobTimeoutError,
    NetworkError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RequestTimeoutError,
    ServerError,
    ShelfwiseError,
    ValidationError,
)
from .tokens import CUSTOMER_TOKEN_HEADER, customer_token

__all__ = [
    "CUSTOMER_TOKEN_HEADER",
    "USER_AGENT",
    "APIError",
    "AsyncShelfwise",
    "AuthenticationError",
    "ClientOptions",
    "ConflictError",
    "JobTimeoutError",
    "NetworkError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitedError",
    "RequestTimeoutError",
    "ServerError",
    "Shelfwise",
    "ShelfwiseError",
    "ValidationError",
    "__version__",
    "customer_token",
]
