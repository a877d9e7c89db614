"""The two clients: thin drivers that carry out the core's effects, and the namespaces that
expose every operation of ``_operations.py`` with its own signature.

``_sync(op)`` and ``_async(op)`` turn an operation ``op(core, *args, **kwargs) -> Op[T]`` into a
method ``(self, *args, **kwargs) -> T`` (or ``-> Awaitable[T]``) with the same parameters, for
type checkers (``ParamSpec``) and for ``help()`` alike; so each endpoint is written once.
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable, Coroutine
from types import TracebackType
from typing import Any, Concatenate, ParamSpec, TypeVar, Unpack

import httpx

from . import _operations as ops
from ._core import ClientOptions, Config, Core, Op, Reply, Sleep

P = ParamSpec("P")
T = TypeVar("T")

__all__ = ["AsyncShelfwise", "Shelfwise"]


def _document(method: Callable[..., Any], op: Callable[..., Any]) -> None:
    """Give ``method`` the operation's docstring and signature (``self`` for ``core``, ``T`` for
    ``Op[T]``); its name is set by the class it is assigned in (``__init_subclass__``)."""
    method.__doc__ = op.__doc__
    signature = inspect.signature(op)
    params = list(signature.parameters.values())
    self_param = inspect.Parameter("self", inspect.Parameter.POSITIONAL_ONLY)
    returns = signature.return_annotation
    if isinstance(returns, str) and returns.startswith("Op[") and returns.endswith("]"):
        returns = returns[3:-1]
    method.__signature__ = signature.replace(  # type: ignore[attr-defined]
        parameters=[self_param, *params[1:]], return_annotation=returns
    )
    method._shelfwise_operation = op.__name__  # type: ignore[attr-defined]


class _Namespace:
    """Names the methods made by ``_sync``/``_async`` after the attribute they are assigned to."""

    def __init_subclass__(cls) -> None:
        super().__init_subclass__()
        for name, value in vars(cls).items():
            if callable(value) and hasattr(value, "_shelfwise_operation"):
                value.__name__ = name
                value.__qualname__ = f"{cls.__qualname__}.{name}"


# --------------------------------------------------------------------------- sync


class _SyncDriver:
    """Runs operations with an ``httpx.Client`` and ``time.sleep``."""

    def __init__(self, http: httpx.Client | None) -> None:
        self.owns_http = http is None
        self.http = http or httpx.Client()

    def run(self, op: Op[T]) -> T:
        reply: Reply = None
        try:
            while True:
                try:
                    effect = op.send(reply)
                except StopIteration as stop:
                    result: T = stop.value
                    return result
                if isinstance(effect, Sleep):
                    time.sleep(effect.seconds)
                    reply = None
                    continue
                try:
                    reply = self.http.send(effect.request)
                except httpx.TransportError as exc:
                    reply = exc
        finally:
            op.close()


class _SyncPart(_Namespace):
    _core: Core
    _driver: _SyncDriver

    def __init__(self, client: Shelfwise) -> None:
        self._core = client._core
        self._driver = client._driver


def _sync(op: Callable[Concatenate[Core, P], Op[T]]) -> Callable[Concatenate[_SyncPart, P], T]:
    def method(self: _SyncPart, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return self._driver.run(op(self._core, *args, **kwargs))

    _document(method, op)
    return method


class Items(_SyncPart):
    """``client.items``: the catalog."""

    upsert = _sync(ops.item_upsert)
    get = _sync(ops.item_get)
    delete = _sync(ops.item_delete)
    list = _sync(ops.items_list)
    batch = _sync(ops.items_batch)


class Customers(_SyncPart):
    """``client.customers``: shoppers and their history."""

    upsert = _sync(ops.customer_upsert)
    get = _sync(ops.customer_get)
    erase = _sync(ops.customer_erase)
    list = _sync(ops.customers_list)
    events = _sync(ops.customer_events)
    batch = _sync(ops.customers_batch)


class Events(_SyncPart):
    """``client.events``: views, add-to-carts, purchases, ratings…"""

    track = _sync(ops.event_track)
    batch = _sync(ops.events_batch)


class Recommendations(_SyncPart):
    """``client.recommendations``."""

    for_customer = _sync(ops.recommend_for_customer)
    similar = _sync(ops.recommend_similar)
    popular = _sync(ops.recommend_popular)
    trending = _sync(ops.recommend_trending)
    session = _sync(ops.recommend_session)
    batch = _sync(ops.recommend_batch)


class Models(_SyncPart):
    """``client.models``: versions, training, promotion and rollback (``admin`` scope)."""

    list = _sync(ops.models_list)
    get = _sync(ops.model_get)
    train = _sync(ops.models_train)
    promote = _sync(ops.model_promote)
    rollback = _sync(ops.models_rollback)


class Jobs(_SyncPart):
    """``client.jobs``: training jobs (``admin`` scope)."""

    list = _sync(ops.jobs_list)
    get = _sync(ops.job_get)
    wait = _sync(ops.job_wait)


class Scenarios(_SyncPart):
    """``client.scenarios``: where recommendations are shown, and what serves them."""

    list = _sync(ops.scenarios_list)
    get = _sync(ops.scenario_get)
    put = _sync(ops.scenario_put)
    delete = _sync(ops.scenario_delete)


class Experiments(_SyncPart):
    """``client.experiments``: A/B tests and canaries between variants of a scenario."""

    list = _sync(ops.experiments_list)
    get = _sync(ops.experiment_get)
    create = _sync(ops.experiment_create)
    update = _sync(ops.experiment_update)
    start = _sync(ops.experiment_start)
    stop = _sync(ops.experiment_stop)
    results = _sync(ops.experiment_results)


class Settings(_SyncPart):
    """``client.settings`` (``admin`` scope)."""

    get = _sync(ops.settings_get)
    update = _sync(ops.settings_update)


class Shelfwise(_SyncPart):
    """The Shelfwise API, synchronously.

    ``api_key`` defaults to ``$SHELFWISE_API_KEY``; options are those of
    :class:`~shelfwise_client.ClientOptions` (``base_url``, ``timeout``, ``max_retries``…).
    Pass ``http_client`` to use your own ``httpx.Client`` (proxies, TLS, transports); it is then
    yours to close. Use as a context manager, or call :meth:`close`.
    """

    def __init__(
        self, api_key: str | None = None, *, http_client: httpx.Client | None = None, **options: Unpack[ClientOptions]
    ) -> None:
        self._core = Core(Config.from_options(api_key, options))
        self._driver = _SyncDriver(http_client)
        self.items = Items(self)
        self.customers = Customers(self)
        self.events = Events(self)
        self.recommendations = Recommendations(self)
        self.models = Models(self)
        self.jobs = Jobs(self)
        self.scenarios = Scenarios(self)
        self.experiments = Experiments(self)
        self.settings = Settings(self)

    whoami = _sync(ops.whoami)

    @property
    def base_url(self) -> str:
        return self._core.config.base_url

    def close(self) -> None:
        """Close the connection pool (not an ``http_client`` you passed in)."""
        if self._driver.owns_http:
            self._driver.http.close()

    def __enter__(self) -> Shelfwise:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()


# --------------------------------------------------------------------------- async


class _AsyncDriver:
    """Runs operations with an ``httpx.AsyncClient`` and ``asyncio.sleep``."""

    def __init__(self, http: httpx.AsyncClient | None) -> None:
        self.owns_http = http is None
        self.http = http or httpx.AsyncClient()

    async def run(self, op: Op[T]) -> T:
        reply: Reply = None
        try:
            while True:
                try:
                    effect = op.send(reply)
                except StopIteration as stop:
                    result: T = stop.value
                    return result
                if isinstance(effect, Sleep):
                    await asyncio.sleep(effect.seconds)
                    reply = None
                    continue
                try:
                    reply = await self.http.send(effect.request)
                except httpx.TransportError as exc:
                    reply = exc
        finally:
            op.close()


class _AsyncPart(_Namespace):
    _core: Core
    _driver: _AsyncDriver

    def __init__(self, client: AsyncShelfwise) -> None:
        self._core = client._core
        self._driver = client._driver


def _async(
    op: Callable[Concatenate[Core, P], Op[T]],
) -> Callable[Concatenate[_AsyncPart, P], Coroutine[Any, Any, T]]:
    async def method(self: _AsyncPart, /, *args: P.args, **kwargs: P.kwargs) -> T:
        return await self._driver.run(op(self._core, *args, **kwargs))

    _document(method, op)
    return method


class AsyncItems(_AsyncPart):
    """``client.items``: the catalog."""

    upsert = _async(ops.item_upsert)
    get = _async(ops.item_get)
    delete = _async(ops.item_delete)
    list = _async(ops.items_list)
    batch = _async(ops.items_batch)


class AsyncCustomers(_AsyncPart):
    """``client.customers``: shoppers and their history."""

    upsert = _async(ops.customer_upsert)
    get = _async(ops.customer_get)
    erase = _async(ops.customer_erase)
    list = _async(ops.customers_list)
    events = _async(ops.customer_events)
    batch = _async(ops.customers_batch)


class AsyncEvents(_AsyncPart):
    """``client.events``: views, add-to-carts, purchases, ratings…"""

    track = _async(ops.event_track)
    batch = _async(ops.events_batch)


class AsyncRecommendations(_AsyncPart):
    """``client.recommendations``."""

    for_customer = _async(ops.recommend_for_customer)
    similar = _async(ops.recommend_similar)
    popular = _async(ops.recommend_popular)
    trending = _async(ops.recommend_trending)
    session = _async(ops.recommend_session)
    batch = _async(ops.recommend_batch)


class AsyncModels(_AsyncPart):
    """``client.models``: versions, training, promotion and rollback (``admin`` scope)."""

    list = _async(ops.models_list)
    get = _async(ops.model_get)
    train = _async(ops.models_train)
    promote = _async(ops.model_promote)
    rollback = _async(ops.models_rollback)


class AsyncJobs(_AsyncPart):
    """``client.jobs``: training jobs (``admin`` scope)."""

    list = _async(ops.jobs_list)
    get = _async(ops.job_get)
    wait = _async(ops.job_wait)


class AsyncScenarios(_AsyncPart):
    """``client.scenarios``: where recommendations are shown, and what serves them."""

    list = _async(ops.scenarios_list)
    get = _async(ops.scenario_get)
    put = _async(ops.scenario_put)
    delete = _async(ops.scenario_delete)


class AsyncExperiments(_AsyncPart):
    """``client.experiments``: A/B tests and canaries between variants of a scenario."""

    list = _async(ops.experiments_list)
    get = _async(ops.experiment_get)
    create = _async(ops.experiment_create)
    update = _async(ops.experiment_update)
    start = _async(ops.experiment_start)
    stop = _async(ops.experiment_stop)
    results = _async(ops.experiment_results)


class AsyncSettings(_AsyncPart):
    """``client.settings`` (``admin`` scope)."""

    get = _async(ops.settings_get)
    update = _async(ops.settings_update)


class AsyncShelfwise(_AsyncPart):
    """The Shelfwise API for asyncio: the same methods as :class:`Shelfwise`, awaited.

    Pass ``http_client`` to use your own ``httpx.AsyncClient``. Use as an async context manager,
    or await :meth:`aclose`.
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        http_client: httpx.AsyncClient | None = None,
        **options: Unpack[ClientOptions],
    ) -> None:
        self._core = Core(Config.from_options(api_key, options))
        self._driver = _AsyncDriver(http_client)
        self.items = AsyncItems(self)
        self.customers = AsyncCustomers(self)
        self.events = AsyncEvents(self)
        self.recommendations = AsyncRecommendations(self)
        self.models = AsyncModels(self)
        self.jobs = AsyncJobs(self)
        self.scenarios = AsyncScenarios(self)
        self.experiments = AsyncExperiments(self)
        self.settings = AsyncSettings(self)

    whoami = _async(ops.whoami)

    @property
    def base_url(self) -> str:
        return self._core.config.base_url

    async def aclose(self) -> None:
        """Close the connection pool (not an ``http_client`` you passed in)."""
        if self._driver.owns_http:
            await self._driver.http.aclose()

    async def __aenter__(self) -> AsyncShelfwise:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.aclose()
