"""Access control: every URL refuses an anonymous user; roles limit what each user may do."""

import re
from collections.abc import Iterator

import pytest
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import URLPattern, URLResolver, get_resolver, resolve, reverse
from django.urls.resolvers import RegexPattern, RoutePattern

from marketing.models import ConsentRecord, Segment, Upload
from tests.factories import make_customer
from tests.marketing.api.helpers import logged_in

pytestmark = pytest.mark.django_db

# Open on purpose: the two login pages and the token exchange (it checks the password itself).
# Open on purpose: logging in, the health check (it says "ok" and nothing else; its own
# test is in views/test_error_pages.py), and the scripts' message catalogue, which the login
# page reads too (the interface's own words, the same for everyone).
OPEN_PATHS = {"/accounts/login/", "/admin/login/", "/api/auth/token/", "/healthz", "/jsi18n/"}
# Values for path parameters, by name; anything else gets "1".
SAMPLES = {
    "format": "json",
    "app_label": "marketing",
    "url": "anything/",
    "uidb64": "MQ",
    "token": "x-y",
}
CONVERTER_SAMPLES = {"uuid": "00000000-0000-0000-0000-000000000001", "drf_format_suffix": ".json"}


def _route_sample(route: str) -> str:
    def fill(match: re.Match) -> str:
        converter, name = match.group(1) or "str", match.group(2)
        return CONVERTER_SAMPLES.get(converter) or SAMPLES.get(name, "1")

    return re.sub(r"<(?:(\w+):)?(\w+)>", fill, route)


def _regex_sample(regex: str) -> str:
    out, i = [], 0
    while i < len(regex):
        if regex.startswith("(?P<", i):
            name = regex[i + 4 : regex.index(">", i)]
            depth, j = 0, i
            while True:  # skip to the group's closing parenthesis
                if regex[j] == "\\":
                    j += 2
                    continue
                depth += {"(": 1, ")": -1}.get(regex[j], 0)
                j += 1
                if depth == 0:
                    break
            out.append(SAMPLES.get(name, "1"))
            i = j
        elif regex[i] == "\\":
            out.append(regex[i + 1])
            i += 2
        elif regex.startswith("/?", i):
            out.append("/")
            i += 2
        elif regex[i] in "^$":
            i += 1
        else:
            out.append(regex[i])
            i += 1
    return "".join(out)


def _sample(pattern) -> str:
    if isinstance(pattern, RoutePattern):
        return _route_sample(str(pattern))
    if isinstance(pattern, RegexPattern):
        return _regex_sample(pattern.regex.pattern)
    raise TypeError(pattern)


def all_urls(patterns=None, prefix: str = "/") -> Iterator[tuple[str, URLPattern]]:
    """Every URL pattern of the project with a concrete path that resolves to it."""
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        path = prefix + _sample(entry.pattern)
        if isinstance(entry, URLResolver):
            yield from all_urls(entry.url_patterns, path)
        else:
            yield path, entry


def test_it_finds_and_resolves_every_url_pattern():
    urls = list(all_urls())
    assert len(urls) > 50
    for path, pattern in urls:
        assert resolve(path).func == pattern.callback, path
    paths = {path for path, _ in urls}
    assert {"/api/customers/1/erase/", "/admin/marketing/customer/1/change/", "/"} <= paths


def _refusal_problem(client, path: str) -> str | None:
    response = client.get(path)
    code, location = response.status_code, response.get("Location", "")
    if path.startswith("/api/"):
        return None if code in (401, 403) else f"{path}: {code}"
    if path.startswith("/admin/"):
        if path == "/admin/logout/" and code == 302:
            return None  # goes back to the admin index, which asks for a login
        ok = code == 302 and location.startswith("/admin/login/")
        return None if ok else f"{path}: {code} {location}"
    login = reverse(settings.LOGIN_URL)
    ok = code == 302 and location.startswith(login)
    return None if ok else f"{path}: {code} {location}"


def test_it_refuses_every_url_to_an_anonymous_user(client):
    make_customer()  # so that object pages have something they could leak
    problems = [
        problem
        for path, _ in all_urls()
        if path not in OPEN_PATHS and (problem := _refusal_problem(client, path))
    ]
    assert not problems, "\n".join(problems)


def test_it_refuses_an_anonymous_user_with_a_bad_token(client):
    response = client.get("/api/customers/", HTTP_AUTHORIZATION="Token not-a-real-token")
    assert response.status_code in (401, 403)


def _csv() -> SimpleUploadedFile:
    return SimpleUploadedFile("c.csv", b"customer_id,age\nC1,31\n", content_type="text/csv")


def test_it_does_not_let_a_viewer_upload_through_the_api(viewer_client):
    response = viewer_client.post("/api/uploads/", {"kind": "customers", "file": _csv()})
    assert response.status_code == 403
    assert not Upload.objects.exists()


def test_it_does_not_let_a_viewer_upload_through_the_pages(viewer_client):
    response = viewer_client.post(reverse("upload-create"), {"kind": "customers", "file": _csv()})
    assert response.status_code == 403
    assert not Upload.objects.exists()


def test_it_does_not_let_a_viewer_create_segments(viewer_client):
    rules = {"op": "and", "rules": []}
    response = viewer_client.post(
        "/api/segments/", {"name": "Mine", "rules": rules}, content_type="application/json"
    )
    assert response.status_code == 403
    response = viewer_client.post(
        reverse("segment-create"), {"name": "Mine", "rules": '{"op": "and", "rules": []}'}
    )
    assert response.status_code == 403
    assert not Segment.objects.exists()


@pytest.mark.parametrize("role", ["marketer", "viewer"])
def test_it_keeps_consent_and_erasure_endpoints_for_stewards(request, role):
    client = logged_in(request.getfixturevalue(role))
    customer = make_customer()
    refused = [
        client.get("/api/consents/"),
        client.post(
            "/api/consents/",
            {
                "customer": customer.pk,
                "purpose": "profiling",
                "status": "granted",
                "lawful_basis": "a",
            },
        ),
        client.get(f"/api/customers/{customer.pk}/consents/"),
        client.post(f"/api/customers/{customer.pk}/erase/"),
    ]
    assert [r.status_code for r in refused] == [403] * 4
    assert not ConsentRecord.objects.exists()


def test_it_opens_consent_and_erasure_endpoints_to_stewards(steward_client):
    customer = make_customer()
    assert steward_client.get("/api/consents/").status_code == 200
    assert steward_client.get(f"/api/customers/{customer.pk}/consents/").status_code == 200
    assert steward_client.post(f"/api/customers/{customer.pk}/erase/").status_code == 200


def test_it_refuses_a_logged_in_user_without_a_role(client, django_user_model):
    nobody = django_user_model.objects.create_user("nobody", password="pw-for-tests-only-123")
    client.force_login(nobody)
    assert client.get("/api/customers/").status_code == 403
    assert client.get("/api/jobs/").status_code == 403
