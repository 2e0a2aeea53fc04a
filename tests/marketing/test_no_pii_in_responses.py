"""Every page, endpoint, download and admin screen, read as a viewer and as a marketer, shows
no personal identifier in plain.

The routes come from the URL resolver itself (pages, the API router, the admin), so a new
route is walked without anyone listing it. A route with an id in its path is walked with the
fixture rows that ``OBJECTS`` names for it; a new one that ``OBJECTS`` does not cover fails
``test_it_knows_an_object_for_every_route_with_an_id`` until it is mapped.

Each route is read plain and, in the API, with ``?format=json``; a body passes when none of
the fixture's plain identifiers (``plain_pii_values``) is in it, whatever the case, after HTML
entities and JavaScript escapes are decoded.
"""

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.http import HttpResponse
from django.test import override_settings
from django.urls import URLPattern, URLResolver, get_resolver
from django.utils.regex_helper import normalize

from marketing.pii import masked_values
from marketing.roles import DATA_STEWARD, MARKETER, VIEWER
from tests.marketing.api.helpers import logged_in
from tests.marketing.pii_world import (
    World,
    build_world,
    plain_pii_values,
    rows_for,
    user_with_role,
)

pytestmark = pytest.mark.django_db

ROLES = ("viewer", "marketer")
ID_PARAMETERS = ("pk", "object_id", "id")
# Parameters that are not a row of the fixture.
FIXED = {"app_label": "marketing", "url": "no-such-page/"}
# Filled from the row a route is walked with (``content_type_id``: the admin's "view on site"),
# or with the person (a customer inside another row's path).
FROM_ROWS = {*ID_PARAMETERS, "content_type_id", "customer_id"}


@dataclass(frozen=True)
class Route:
    name: str  # namespaced ("admin:..."), "" for an unnamed route
    template: str  # "uploads/%(pk)s/", as django.utils.regex_helper writes it
    parameters: tuple[str, ...]

    @property
    def key(self) -> str:
        return f"api:{self.name}" if self.template.startswith("api/") else self.name

    @property
    def label(self) -> str:
        return "/" + self.template.replace("%(", "<").replace(")s", ">")

    @property
    def needs_objects(self) -> bool:
        return any(p not in FIXED for p in self.parameters)


def walk_resolver(patterns, prefix: str = "", namespace: str = "") -> Iterator[Route]:
    for pattern in patterns:
        regex = pattern.pattern.regex.pattern.removeprefix("^")
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from walk_resolver(pattern.url_patterns, prefix + regex, inner)
        elif isinstance(pattern, URLPattern):
            template, parameters = normalize(prefix + regex)[0]
            yield Route(
                f"{namespace}{pattern.name}" if pattern.name else "", template, tuple(parameters)
            )


ROUTES = list(walk_resolver(get_resolver().url_patterns))


def objects_for(route: Route) -> tuple[str, ...] | None:
    if not route.needs_objects:
        return ("",)
    return rows_for(route.key, route.template)


def unwalkable(routes: list[Route]) -> list[str]:
    return [
        route.label
        for route in routes
        if objects_for(route) is None or not set(route.parameters) <= FROM_ROWS | set(FIXED)
    ]


def test_it_knows_an_object_for_every_route_with_an_id():
    unmapped = unwalkable(ROUTES)
    assert not unmapped, f"Say in OBJECTS which fixture rows these routes show: {unmapped}"


def test_it_tells_a_new_route_with_an_id_from_a_mapped_one():
    new = [
        Route("coupon-detail", "coupons/%(pk)s/", ("pk",)),
        Route("api:segment-detail", "api/segments/%(slug)s/", ("slug",)),
    ]
    mapped = Route("api:segment-detail", "api/segments/%(pk)s/", ("pk",))
    assert unwalkable([*new, mapped]) == ["/coupons/<pk>/", "/api/segments/<slug>/"]


def test_it_walks_pages_the_api_and_the_admin():
    labels = {route.label for route in ROUTES}
    assert {
        "/customers/<pk>/",
        "/api/customers/<pk>/",
        "/api/exports/<pk>/download/",
        "/admin/marketing/customer/<object_id>/change/",
    } <= labels


def url_for(route: Route, world: World, attribute: str) -> str:
    values = dict(FIXED)
    values["customer_id"] = world.person.pk
    if attribute:
        row = getattr(world, attribute)
        values.update(dict.fromkeys(ID_PARAMETERS, row.pk))
        values["content_type_id"] = ContentType.objects.get_for_model(type(row)).pk
    return "/" + route.template % {p: values[p] for p in route.parameters}


def body_text(response: HttpResponse) -> str:
    """The body as a person would read it: entities and JavaScript escapes decoded."""
    raw = b"".join(response.streaming_content) if response.streaming else response.content
    text = html.unescape(raw.decode("utf-8", errors="replace"))
    return re.sub(r"\\u([0-9a-fA-F]{4})", lambda m: chr(int(m.group(1), 16)), text)


def leaked_values(text: str) -> list[str]:
    lowered = text.lower()
    return [value for value in plain_pii_values() if value.lower() in lowered]


def where_leaked(text: str, values: list[str]) -> str:
    """Each leaked value with what surrounds it, to find the template or field at fault."""
    lowered = text.lower()
    spots = []
    for value in values:
        at = lowered.index(value.lower())
        spots.append(repr(text[max(at - 80, 0) : at + len(value) + 20]))
    return "\n".join(spots)


@pytest.fixture(scope="module")
def world(django_db_setup, django_db_blocker, tmp_path_factory) -> Iterator[World]:
    """Built once for the module, inside a transaction rolled back at its end; each test runs
    in a savepoint of it. Viewer and marketer are staff, which the demo no longer makes them
    but a site may, so the walk reads the admin console too."""
    root = tmp_path_factory.mktemp("walk")
    with (
        override_settings(
            JOB_QUEUE="inline", MEDIA_ROOT=root / "media", MODEL_REGISTRY_DIR=root / "models"
        ),
        django_db_blocker.unblock(),
        transaction.atomic(),
    ):
        yield build_world(
            marketer=user_with_role("walk-marketer", MARKETER, staff=True),
            steward=user_with_role("walk-steward", DATA_STEWARD, staff=True),
            viewer=user_with_role("walk-viewer", VIEWER, staff=True),
        )
        transaction.set_rollback(True)


@pytest.fixture(autouse=True)
def _jobs_run_inline(world):
    """Replaces the suite's per-test media folder: the world's files live in the module's."""


def walk_cases() -> Iterator:
    for route in ROUTES:
        for attribute in objects_for(route) or ():
            for role in ROLES:
                yield pytest.param(
                    role,
                    route,
                    attribute,
                    id=f"{role}-{route.label}" + (f"-{attribute}" if attribute else ""),
                )


@pytest.mark.parametrize(("role", "route", "attribute"), list(walk_cases()))
def test_it_shows_no_plain_identifier(world, role, route, attribute):
    client = logged_in(getattr(world, role))
    url = url_for(route, world, attribute)
    urls = [url, f"{url}?format=json"] if url.startswith("/api/") else [url]
    for each in urls:
        response = client.get(each)
        assert response.status_code < 500, each
        text = body_text(response)
        leaked = leaked_values(text)
        assert not leaked, f"{each} shows {leaked}:\n{where_leaked(text, leaked)}"


# Mapped rows a route rightly answers 404 for: no model has a page of its own on the site,
# and an upload that was never imported has no error file.
NOT_FOUND_BY_DESIGN = {
    ("/admin/r/<content_type_id>/<object_id>/", "person"),
    ("/api/uploads/<pk>/errors/", "pending_upload"),
}


def test_it_finds_the_row_behind_every_route_with_an_id(world):
    """A route walked with a row of the wrong kind answers 404 and would pass the walk
    without showing anything."""
    client = logged_in(world.steward)
    missing = [
        (route.label, attribute)
        for route in ROUTES
        if route.needs_objects
        for attribute in objects_for(route) or ()
        if (route.label, attribute) not in NOT_FOUND_BY_DESIGN
        and client.get(url_for(route, world, attribute)).status_code == 404
    ]
    assert not missing


@pytest.mark.parametrize("role", ROLES)
def test_it_shows_the_masked_identity_where_identities_are_shown(world, role):
    """Identities are there, masked: on the customer pages, in the API and the admin."""
    client = logged_in(getattr(world, role))
    identity = world.person.identity
    page = body_text(client.get(f"/customers/{world.person.pk}/"))
    listing = body_text(client.get("/customers/"))
    admin = body_text(client.get(f"/admin/marketing/customer/{world.person.pk}/change/"))
    api = client.get(f"/api/customers/{world.person.pk}/", {"format": "json"}).json()
    masked = masked_values(identity)
    assert masked["email"] in page and masked["phone"] in page
    assert all(masked_values(c.identity)["email"] in listing for c in world.customers)
    assert masked["email"] in admin and masked["postal_code"] in admin
    assert api["identity"] == {"masked": True, **masked}


def test_it_shows_the_identity_to_a_steward(world):
    """The fixture's identifiers are really on the pages the walk reads; it is the role that
    hides them."""
    client = logged_in(world.steward)
    identity = world.person.identity
    page = body_text(client.get(f"/customers/{world.person.pk}/"))
    assert {identity.email, identity.first_name, identity.last_name} <= set(leaked_values(page))
