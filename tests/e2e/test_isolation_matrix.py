"""Tenant isolation, derived from the URL conf rather than from a hand-kept list.

For every v1 API operation (every URL pattern whose view is an ``ApiView``, every method it
implements, plus HEAD and OPTIONS), tenant B's key with tenant A's ids answers exactly as it
does for ids that exist nowhere — 404 ``not_found`` where the id names one of A's things — and
changes nothing of A's (every row of A's schema, A's public rows, A's Redis keys). Collections
never show A's objects. The dashboard and Django admin refuse outsiders the same way.

An operation that is not mapped in ``ID_MATRIX`` / ``COLLECTIONS`` (or a dashboard route not
mapped below) fails here: a new endpoint cannot silently escape the matrix. The committed
OpenAPI document must list the same operations as the URL conf.

Forged keys (A's key id with B's secret) are refused in ``test_auth.py``.
"""

from __future__ import annotations

import re
import secrets
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import orjson
import pytest
from django.apps import apps
from django.contrib.auth.models import Group, User
from django.contrib.contenttypes.models import ContentType
from django.db import connection, models
from django.test import Client
from django_tenants.utils import tenant_context

from recommendations.models import ModelVersion, TrainingJob
from support.services import SUPPORT_GROUP
from tenants.models import ApiKey, Membership, Tenant
from tenants.services import tenant_delete
from tenants.team import invitation_create
from tests.factories import ModelVersionFactory, TrainingJobFactory, UserFactory, make_tenant, member
from tests.helpers import (
    Route,
    TenantHandle,
    all_routes,
    api_operations,
    api_view_routes,
    as_openapi_path,
    assert_problem,
    host,
    openapi_operations,
    tenant_snapshot,
)

pytestmark = pytest.mark.django_db

DASHBOARD_PREFIX = "/dashboard/"
ADMIN_PREFIX = "/admin/"

# --------------------------------------------------------------------------- the URL conf


# --------------------------------------------------------------------------- what each operation is probed with


@dataclass(frozen=True)
class Probe:
    """How tenant B calls an operation. Strings ``"{name}"`` in the query or body (and the route's
    parameters) are filled with A's ids, then with ids that exist nowhere; the two answers must
    be the same. ``not_found``: the id names one of A's things, so the answer is 404."""

    body: Any = None
    query: Mapping[str, str] = field(default_factory=dict)
    not_found: bool = False


NOT_FOUND = Probe(not_found=True)

# Operations whose path names an object by id.
ID_MATRIX: dict[str, dict[str, Probe]] = {
    "/api/v1/items/<str:item_id>": {
        "GET": NOT_FOUND,
        "PUT": Probe(body={"title": "written by B"}),  # creates B's own item of that id
        "DELETE": NOT_FOUND,
    },
    "/api/v1/items/<str:item_id>/similar": {"GET": NOT_FOUND},
    "/api/v1/customers/<str:customer_id>": {
        "GET": NOT_FOUND,
        "PUT": Probe(body={"properties": {"by": "B"}}),
        "DELETE": Probe(),  # erasure answers 204 whether or not there was anything to erase
    },
    "/api/v1/customers/<str:customer_id>/events": {"GET": NOT_FOUND},
    # An unknown customer gets the store's fallback list (200), like any new shopper.
    "/api/v1/customers/<str:customer_id>/recommendations": {"GET": Probe(query={"scenario": "{key}"})},
    "/api/v1/models/<int:version>": {"GET": NOT_FOUND},
    "/api/v1/models/<int:version>:promote": {"POST": Probe(body={"reason": "B"}, not_found=True)},
    "/api/v1/jobs/<uuid:job_id>": {"GET": NOT_FOUND},
    "/api/v1/scenarios/<str:key>": {
        "GET": NOT_FOUND,
        "PUT": Probe(body={"name": "B's", "default_source": {"kind": "popularity"}}),
        "DELETE": NOT_FOUND,
    },
    "/api/v1/experiments/<int:experiment_id>": {
        "GET": NOT_FOUND,
        "PATCH": Probe(body={"name": "renamed by B"}, not_found=True),
    },
    "/api/v1/experiments/<int:experiment_id>:start": {"POST": NOT_FOUND},
    "/api/v1/experiments/<int:experiment_id>:stop": {"POST": NOT_FOUND},
    "/api/v1/experiments/<int:experiment_id>/results": {"GET": NOT_FOUND},
}

_VARIANTS = [
    {"key": "a", "share": 50, "source": {"kind": "version", "version": "{version}"}},
    {"key": "b", "share": 50, "source": {"kind": "popularity"}},
]

# Operations without an id in the path: B's own collections. Ids of A's in their query or body
# must be treated as B's (new) ids.
COLLECTIONS: dict[str, dict[str, Probe]] = {
    "/api/v1/whoami": {"GET": Probe()},
    "/api/v1/settings": {"GET": Probe(), "PATCH": Probe(body={"events": {"weights": {"b_only": 2}}})},
    "/api/v1/items": {"GET": Probe(query={"include_deleted": "true"})},
    "/api/v1/items:batch": {"POST": Probe(body={"items": [{"item_id": "{item_id}", "title": "B's"}]})},
    "/api/v1/customers": {"GET": Probe()},
    "/api/v1/customers:batch": {"POST": Probe(body={"customers": [{"customer_id": "{customer_id}"}]})},
    "/api/v1/events": {
        "POST": Probe(
            body={
                "events": [
                    {
                        "event_id": "{event_id}",
                        "customer_id": "{customer_id}",
                        "item_id": "{item_id}",
                        "type": "purchase",
                        "recommendation_id": "{recommendation_id}",  # attribution to A's experiment?
                    }
                ]
            }
        )
    },
    "/api/v1/models": {"GET": Probe()},
    "/api/v1/models:train": {"POST": Probe(body={})},
    "/api/v1/models:rollback": {"POST": Probe(body={})},
    "/api/v1/jobs": {"GET": Probe()},
    "/api/v1/scenarios": {"GET": Probe()},
    "/api/v1/experiments": {
        "GET": Probe(),
        "POST": Probe(body={"name": "B's", "scenario": "{key}", "variants": _VARIANTS}),
    },
    "/api/v1/recommendations/popular": {"GET": Probe(query={"exclude": "{item_id}", "fields": "title"})},
    "/api/v1/recommendations/trending": {"GET": Probe(query={"exclude": "{item_id}", "fields": "title"})},
    "/api/v1/recommendations/session": {"POST": Probe(body={"items": ["{item_id}"], "fields": ["title"]})},
    "/api/v1/recommendations:batch": {"POST": Probe(body={"requests": [{"customer_id": "{customer_id}"}]})},
}


def matrix_cases() -> list[Any]:
    """One case per (route, method) the URL conf has, with HEAD (when GET) and OPTIONS added."""
    cases = []
    for route, method in api_operations():
        cases.append(pytest.param(route, method, id=f"{method} {route.path}"))
        if method == "GET":
            cases.append(pytest.param(route, "HEAD", id=f"HEAD {route.path}"))
    for route, _view in api_view_routes():
        cases.append(pytest.param(route, "OPTIONS", id=f"OPTIONS {route.path}"))
    return cases


def probe_for(route: Route, method: str) -> Probe:
    table = ID_MATRIX if route.params else COLLECTIONS
    methods = table.get(route.path, {})
    if method == "OPTIONS":
        return Probe()
    probe = methods.get("GET" if method == "HEAD" else method)
    if probe is None:
        pytest.fail(
            f"{method} {route.path} is not in the isolation matrix: add it to "
            f"{'ID_MATRIX' if route.params else 'COLLECTIONS'} in {__name__} (how tenant B calls it with A's ids)"
        )
    return probe


# --------------------------------------------------------------------------- tenant A's world


@dataclass
class World:
    a: TenantHandle
    b: TenantHandle
    mark: str  # in every id and text of A's: found in an answer to B, it is a leak
    ids: dict[str, Any]  # A's ids, by route parameter / placeholder name
    missing: dict[str, Any]  # ids that exist in no store
    a_owner: User
    b_owner: User
    support: User


@pytest.fixture(scope="module")
def world(django_db_setup: None, django_db_blocker: Any) -> Iterator[World]:
    """Two committed stores: A with one of everything (made through its own key), B nearly empty."""
    with django_db_blocker.unblock():
        mark = f"zq{secrets.token_hex(5)}"
        a, b = make_tenant("iso-a"), make_tenant("iso-b")
        api = a.client()
        item, other, cust, scn = f"{mark}-item", f"{mark}-item2", f"{mark}-cust", f"{mark}-scn"
        for item_id in (item, other):
            put = api.put(
                f"/api/v1/items/{item_id}",
                {"title": f"{mark} title", "categories": [mark], "properties": {"secret": mark}},
                format="json",
            )
            assert put.status_code == 201, put.content
        assert api.put(f"/api/v1/customers/{cust}", {"properties": {"secret": mark}}, format="json").status_code == 201
        events = [
            {"event_id": f"{mark}-e{n}", "customer_id": cust, "item_id": (item, other)[n % 2], "type": "purchase"}
            for n in range(4)
        ]
        assert api.post("/api/v1/events", {"events": events}, format="json").json()["stored"] == 4
        weights = {"events": {"weights": {f"{mark}_type": 2}}}
        assert api.patch("/api/v1/settings", weights, format="json").status_code == 200
        scenario = {"name": mark, "default_source": {"kind": "popularity"}}
        assert api.put(f"/api/v1/scenarios/{scn}", scenario, format="json").status_code == 201
        variants = [
            {"key": "ctl", "share": 50, "source": {"kind": "active"}},
            {"key": "pop", "share": 50, "source": {"kind": "popularity"}},
        ]
        experiment = api.post(
            "/api/v1/experiments", {"name": mark, "scenario": scn, "variants": variants}, format="json"
        )
        assert experiment.status_code == 201, experiment.content
        experiment_id = experiment.json()["experiment_id"]
        assert api.post(f"/api/v1/experiments/{experiment_id}:start", format="json").status_code == 200
        rec_id = api.get(f"/api/v1/customers/{cust}/recommendations", {"scenario": scn}).json()["recommendation_id"]
        assert rec_id.startswith(f"rec_{experiment_id}_")  # served by A's running experiment
        with tenant_context(a.tenant):
            version = ModelVersionFactory(
                version=3, algorithm="ease", status=ModelVersion.Status.READY, params={"marker": mark}
            )
            job = TrainingJobFactory(
                status=TrainingJob.Status.SUCCEEDED,
                trigger=ModelVersion.Trigger.MANUAL,
                requested_by=mark,
                version=version,
                active_slot=None,
            )
        connection.set_schema_to_public()
        a_login, b_login = member(a.tenant, Membership.Role.OWNER), member(b.tenant, Membership.Role.OWNER)
        invitation = invitation_create(
            tenant=a.tenant, email=f"{mark}@invitee.example", role="viewer", invited_by=None, actor="test"
        ).invitation
        support = UserFactory(email=f"{mark}@support.example", is_staff=True)
        support.groups.add(Group.objects.get(name=SUPPORT_GROUP))
        users = [User.objects.get(email=a_login.email), User.objects.get(email=b_login.email), support]
        ids = {
            "item_id": item,
            "customer_id": cust,
            "event_id": events[0]["event_id"],
            "recommendation_id": rec_id,
            "key": scn,
            "experiment_id": experiment_id,
            "version": version.version,
            "job_id": str(job.pk),
            "key_id": ApiKey.objects.get(tenant=a.tenant).pk,
            "membership_id": Membership.objects.get(tenant=a.tenant, user=users[0]).pk,
            "invitation_id": invitation.pk,
        }
        nowhere = secrets.token_hex(5)
        missing = {
            "item_id": f"nx{nowhere}-item",
            "customer_id": f"nx{nowhere}-cust",
            "event_id": f"nx{nowhere}-e0",
            "recommendation_id": f"rec_{experiment_id + 10**6}_0_{nowhere}",
            "key": f"nx{nowhere}-scn",
            "experiment_id": experiment_id + 10**6,
            "version": 7777,
            "job_id": str(uuid.uuid4()),
            "key_id": f"nx{nowhere}",
            "membership_id": 10**9 + 7,
            "invitation_id": 10**9 + 7,
        }
        yield World(a, b, mark, ids, missing, users[0], users[1], support)
        connection.set_schema_to_public()
        for handle in (a, b):
            tenant_delete(tenant=Tenant.objects.get(pk=handle.tenant.pk), actor="test")
        User.objects.filter(pk__in=[user.pk for user in users]).delete()


# --------------------------------------------------------------------------- what "changes nothing" means


# --------------------------------------------------------------------------- requests and comparisons


VOLATILE = {"request_id", "recommendation_id", "created_at", "updated_at", "received_at", "timestamp"}


def fill(value: Any, ids: Mapping[str, Any]) -> Any:
    """``value`` with each ``"{name}"`` replaced by ``ids[name]`` (the id itself where the whole
    string is a placeholder, so numbers stay numbers)."""
    if isinstance(value, dict):
        return {k: fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [fill(v, ids) for v in value]
    if isinstance(value, str):
        whole = re.fullmatch(r"\{(\w+)\}", value)
        if whole:
            return ids[whole[1]]
        return re.sub(r"\{(\w+)\}", lambda m: str(ids[m[1]]), value)
    return value


def call(client: Any, method: str, path: str, probe: Probe, ids: Mapping[str, Any]) -> Any:
    query = fill(dict(probe.query), ids)
    if query:
        path += "?" + "&".join(f"{k}={quote(str(v), safe='')}" for k, v in query.items())
    body = fill(probe.body, ids)
    if method in {"GET", "HEAD", "OPTIONS", "DELETE"} and body is None:
        return client.generic(method, path)
    return client.generic(method, path, b"" if body is None else orjson.dumps(body), content_type="application/json")


def normalized(response: Any, ids: Mapping[str, Any]) -> Any:
    """The body with volatile fields blanked and the probed ids replaced by ``<id>`` (string ids
    wherever they occur; numeric ids where a whole value is one)."""
    if not response.content:
        return None
    texts = sorted({v for v in ids.values() if isinstance(v, str)}, key=len, reverse=True)
    numbers = {v for v in ids.values() if isinstance(v, int)}

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: "<volatile>" if k in VOLATILE else walk(v) for k, v in value.items()}
        if isinstance(value, list):
            return [walk(v) for v in value]
        if isinstance(value, str):
            for text in texts:
                value = value.replace(text, "<id>")
        elif isinstance(value, int) and not isinstance(value, bool) and value in numbers:
            value = "<id>"
        return value

    return walk(response.json())


def assert_no_leak(content: bytes, world: World) -> None:
    """Nothing of A's in ``content`` beyond the ids B itself sent."""
    text = content.decode(errors="replace")
    for sent in sorted({str(v) for v in world.ids.values()}, key=len, reverse=True):
        text = text.replace(sent, "")
    assert world.mark not in text, f"A's data in B's answer: {text[:500]}"
    assert world.a.key.rsplit("_", 1)[0] not in text


def placeholders(route: Route, probe: Probe) -> set[str]:
    """The names of the ids a probe sends (only those may come back in the answer)."""
    return set(route.params) | set(re.findall(r"\{(\w+)\}", str((probe.query, probe.body))))


def assert_same_answer(foreign: Any, missing: Any, world: World, names: set[str]) -> None:
    assert (foreign.status_code, foreign.get("Content-Type")) == (missing.status_code, missing.get("Content-Type")), (
        foreign.content[:500],
        missing.content[:500],
    )
    assert normalized(foreign, {n: world.ids[n] for n in names}) == normalized(
        missing, {n: world.missing[n] for n in names}
    )


# --------------------------------------------------------------------------- the API matrix


def test_the_matrix_maps_exactly_the_operations_of_the_url_conf_and_the_openapi_document() -> None:
    operations = api_operations()
    in_code = {(as_openapi_path(route), method) for route, method in operations}
    unmapped = sorted(
        f"{method} {route.path}"
        for route, method in operations
        if method not in (ID_MATRIX if route.params else COLLECTIONS).get(route.path, {})
    )
    stale = sorted(
        f"{method} {path}"
        for table in (ID_MATRIX, COLLECTIONS)
        for path, methods in table.items()
        for method in methods
        if (re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", path), method) not in in_code
    )

    assert len(operations) >= 38  # the URL conf was read (not an empty walk)
    assert not unmapped, f"operations missing from the isolation matrix: {unmapped}"
    assert not stale, f"matrix entries for operations that no longer exist: {stale}"
    assert in_code == openapi_operations()


def test_a_sees_each_of_its_own_objects_so_the_matrix_probes_real_ids(world: World) -> None:
    api = world.a.client()
    for route, method in api_operations():
        if route.params and method == "GET":
            probe = probe_for(route, method)
            response = call(api, "GET", route.url(world.ids), probe, world.ids)
            assert response.status_code == 200, (route.path, response.content[:300])


@pytest.mark.parametrize(("route", "method"), matrix_cases())
def test_b_with_a_ids_gets_the_answer_for_ids_that_exist_nowhere_and_changes_nothing(
    world: World, route: Route, method: str
) -> None:
    probe = probe_for(route, method)
    api = world.b.client()
    if any(m == "GET" and r == route for r, m in api_operations()):
        # A reads it first: any cache (Redis or in-process) now holds A's answer.
        assert call(world.a.client(), "GET", route.url(world.ids), probe, world.ids).status_code == 200
    before = tenant_snapshot(world.a.tenant)

    foreign = call(api, method, route.url(world.ids), probe, world.ids)
    missing = call(api, method, route.url(world.missing), probe, world.missing)

    assert_same_answer(foreign, missing, world, placeholders(route, probe))
    if probe.not_found and method == "HEAD":
        assert foreign.status_code == 404
    elif probe.not_found:
        assert_problem(foreign, 404, "not_found")
    else:
        assert foreign.status_code < 500
    assert_no_leak(foreign.content, world)
    assert tenant_snapshot(world.a.tenant) == before


def test_collections_of_b_list_b_objects_and_never_a_ones(world: World) -> None:
    api = world.b.client()
    assert api.put("/api/v1/items/b-own", {"title": "B's own"}, format="json").status_code == 201
    assert api.put("/api/v1/customers/b-own", {}, format="json").status_code == 201

    items = api.get("/api/v1/items", {"include_deleted": "true"}).json()["results"]
    customers = api.get("/api/v1/customers").json()["results"]

    assert [row["item_id"] for row in items] == ["b-own"]
    assert [row["customer_id"] for row in customers] == ["b-own"]
    for route, method in api_operations():
        if method == "GET" and not route.params:
            world.a.client().get(route.path)  # warms any cache with A's answer first
            response = api.get(route.path)
            assert response.status_code == 200, (route.path, response.content[:300])
            assert_no_leak(response.content, world)


def test_ids_of_a_in_query_or_body_of_b_own_objects_are_unknown_ones(world: World) -> None:
    api = world.b.client()
    assert api.put("/api/v1/items/b-own", {"title": "B's own"}, format="json").status_code == 201
    before = tenant_snapshot(world.a.tenant)

    def similar(ids: Mapping[str, Any]) -> Any:
        return api.get("/api/v1/items/b-own/similar", {"customer": ids["customer_id"], "exclude": ids["item_id"]})

    def recommendations(ids: Mapping[str, Any]) -> Any:
        query = {"scenario": ids["key"], "exclude": ids["item_id"]}
        return api.get(f"/api/v1/customers/{ids['customer_id']}/recommendations", query)

    def batch(ids: Mapping[str, Any]) -> Any:
        request = {"customer_id": ids["customer_id"], "scenario": ids["key"], "exclude": [ids["item_id"]]}
        return api.post("/api/v1/recommendations:batch", {"requests": [request]}, format="json")

    for probe in (similar, recommendations, batch):
        foreign, missing = probe(world.ids), probe(world.missing)
        assert foreign.status_code == 200, foreign.content[:300]
        assert_same_answer(foreign, missing, world, {"customer_id", "item_id", "key"})
        assert_no_leak(foreign.content, world)
    assert tenant_snapshot(world.a.tenant) == before


def test_a_cached_answer_of_a_is_never_served_to_b(world: World) -> None:
    path = f"/api/v1/customers/{world.ids['customer_id']}/recommendations"
    api_a, api_b = world.a.client(), world.b.client()
    api_a.get(path)
    assert api_a.get(path)["X-Shelfwise-Cache"] == "hit"  # A's list is cached now

    foreign = api_b.get(path)
    missing = api_b.get(f"/api/v1/customers/{world.missing['customer_id']}/recommendations")

    assert foreign["X-Shelfwise-Cache"] == missing["X-Shelfwise-Cache"] == "miss"
    assert_same_answer(foreign, missing, world, {"customer_id"})
    assert_no_leak(foreign.content, world)


def test_an_idempotency_key_used_by_a_is_a_new_key_for_b(world: World) -> None:
    body = {"events": [{"event_id": "same-1", "customer_id": "c", "item_id": "i", "type": "view"}]}
    first = world.a.client().post("/api/v1/events", body, format="json", HTTP_IDEMPOTENCY_KEY="shared-key-1")
    before = tenant_snapshot(world.a.tenant)

    other = world.b.client().post("/api/v1/events", body, format="json", HTTP_IDEMPOTENCY_KEY="shared-key-1")
    changed = world.b.client().post(
        "/api/v1/events", {"events": []}, format="json", HTTP_IDEMPOTENCY_KEY="shared-key-1"
    )

    assert first.json()["stored"] == 1
    assert other.status_code == 200
    assert not other.has_header("Idempotent-Replayed")  # B's own request, not A's stored answer
    assert other.json()["stored"] == 1
    assert_problem(changed, 422, "idempotency_key_reused")  # B's key is now B's, with B's body
    assert tenant_snapshot(world.a.tenant) == before


# --------------------------------------------------------------------------- the dashboard

DASHBOARD_PUBLIC = {
    # No store data behind them; cross-store use of invitation links is in test_dashboard_manage.
    "login",
    "logout",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "join",
}
# Member pages that name one object, and the method that acts on it.
DASHBOARD_IDS = {
    "item": "GET",
    "customer": "GET",
    "model-promote": "POST",
    "job-progress": "GET",
    "key-revoke": "POST",
    "key-signing-secret": "POST",
    "experiment": "GET",
    "experiment-start": "POST",
    "experiment-stop": "POST",
    "scenario-delete": "POST",
    "member-role": "POST",
    "member-remove": "POST",
    "invitation-revoke": "POST",
}
# Member pages without an id; POST-only ones are refused GET with 405 (not a page of A's data).
DASHBOARD_PAGES = {
    "overview",
    "items",
    "customers",
    "models",
    "model-train",
    "model-rollback",
    "keys",
    "experiments",
    "experiment-new",
    "settings",
    "team",
}


def dashboard_routes() -> list[Route]:
    return [route for route in all_routes() if route.path.startswith(DASHBOARD_PREFIX)]


def dashboard_client(tenant: Tenant, user: User) -> Client:
    client = Client(HTTP_HOST=host(tenant))
    client.force_login(user)
    return client


def test_every_dashboard_route_is_classified() -> None:
    names = [route.name for route in dashboard_routes()]
    unclassified = sorted(str(n) for n in names if n not in DASHBOARD_PUBLIC | set(DASHBOARD_IDS) | DASHBOARD_PAGES)
    with_ids = {route.name for route in dashboard_routes() if route.params}

    assert len(names) >= 25
    assert not unclassified, f"dashboard routes missing from the isolation matrix: {unclassified}"
    assert with_ids - DASHBOARD_PUBLIC == set(DASHBOARD_IDS)


@pytest.mark.parametrize("name", sorted(DASHBOARD_IDS))
def test_a_b_owner_on_b_host_cannot_see_or_act_on_a_objects_by_id(world: World, name: str) -> None:
    route = next(route for route in dashboard_routes() if route.name == name)
    client = dashboard_client(world.b.tenant, world.b_owner)
    method = DASHBOARD_IDS[name]
    before = tenant_snapshot(world.a.tenant)

    foreign = client.generic(method, route.url(world.ids))
    missing = client.generic(method, route.url(world.missing))

    assert foreign.status_code == missing.status_code == 404, foreign.content[:300]
    assert_no_leak(foreign.content, world)
    assert tenant_snapshot(world.a.tenant) == before


@pytest.mark.parametrize("who", ["b_owner", "support"])
def test_outsiders_on_a_host_get_404_on_every_member_page_and_change_nothing(world: World, who: str) -> None:
    client = dashboard_client(world.a.tenant, getattr(world, who))
    before = tenant_snapshot(world.a.tenant)

    for route in dashboard_routes():
        if route.name in DASHBOARD_PUBLIC:
            continue
        for method in ("GET", "POST"):
            response = client.generic(method, route.url(world.ids))
            assert response.status_code == 404, (method, route.path, response.status_code)
            assert_no_leak(response.content, world)

    assert tenant_snapshot(world.a.tenant) == before
    assert dashboard_client(world.a.tenant, world.a_owner).get("/dashboard/items/").status_code == 200  # (control)


def test_b_dashboard_pages_show_b_store_and_nothing_of_a(world: World) -> None:
    client = dashboard_client(world.b.tenant, world.b_owner)

    for route in dashboard_routes():
        if route.name in DASHBOARD_PAGES:
            response = client.get(route.path)
            assert response.status_code in {200, 302, 405}, (route.path, response.status_code)
            assert_no_leak(response.content, world)
            if response.status_code == 200:
                assert world.b.tenant.name.encode() in response.content


# --------------------------------------------------------------------------- Django admin


def admin_routes() -> list[Route]:
    return [
        route for route in all_routes() if route.path.startswith(ADMIN_PREFIX) and route.name not in {"login", "logout"}
    ]


def _admin_values(route: Route, world: World) -> dict[str, Any]:
    """Parameters of an admin URL, naming A's objects where the model has them."""
    values: dict[str, Any] = {
        "app_label": "tenants",
        "content_type_id": ContentType.objects.get_for_model(Tenant).pk,
        "url": "no-such-page",  # the catch-all
    }
    parts = route.path.split("/")  # /admin/<app_label>/<model_name>/...
    try:
        model: type[models.Model] | None = apps.get_model(parts[2], parts[3])
    except (LookupError, ValueError, IndexError):
        model = None
    object_id: Any = world.a.tenant.pk
    if model is User:
        object_id = world.a_owner.pk
    elif model is not None and model is not Tenant:
        keys = [f.name for f in model._meta.get_fields() if f.many_to_one and f.related_model is Tenant]
        row = model._default_manager.filter(**{keys[0]: world.a.tenant.pk}).first() if keys else None
        object_id = row.pk if row is not None else model._default_manager.values_list("pk", flat=True).first()
    values["object_id"] = values["id"] = object_id
    unknown = set(route.params) - set(values)
    assert not unknown, f"{route.path}: no value for {unknown}"
    return values


def test_a_store_owner_reaches_no_admin_page_on_either_host_and_changes_nothing(world: World) -> None:
    public = Client(HTTP_HOST="localhost")
    public.force_login(world.a_owner)  # a store owner with a session (e.g. a shared cookie)
    on_store_host = dashboard_client(world.a.tenant, world.a_owner)
    before = tenant_snapshot(world.a.tenant)
    routes = admin_routes()

    for route in routes:
        url = route.url(_admin_values(route, world))
        for method in ("GET", "POST"):
            response = public.generic(method, url)
            assert response.status_code == 302, (method, url, response.status_code)
            assert response["Location"].startswith("/admin/login/"), (method, url)
            assert on_store_host.generic(method, url).status_code == 404, (method, url)

    assert len(routes) >= 40  # every registered model's pages, and the support pages
    assert tenant_snapshot(world.a.tenant) == before
    staff = Client(HTTP_HOST="localhost")
    staff.force_login(world.support)
    assert staff.get(f"/admin/tenants/tenant/{world.a.tenant.pk}/change/").status_code == 200  # (control)
