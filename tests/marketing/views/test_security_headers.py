"""Every page carries a Content-Security-Policy that runs only the app's own scripts."""

import pytest
from django.urls import reverse

pytestmark = pytest.mark.django_db


def _policy(response) -> dict[str, list[str]]:
    directives = response["Content-Security-Policy"].split(";")
    return {d.split()[0]: d.split()[1:] for d in (d.strip() for d in directives) if d}


def test_it_allows_only_the_apps_own_scripts_and_style_sheets(marketer_client):
    policy = _policy(marketer_client.get(reverse("overview")))

    assert policy["default-src"] == ["'self'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["style-src"] == ["'self'", "'unsafe-inline'"]  # plotly.js styles as it draws
    assert policy["object-src"] == ["'none'"]
    assert policy["frame-ancestors"] == ["'none'"]


def test_it_sends_the_policy_on_the_login_page_too(client):
    assert "script-src 'self'" in client.get(reverse("login"))["Content-Security-Policy"]


def test_it_serves_the_api_docs_without_an_inline_script(marketer_client):
    page = marketer_client.get("/api/docs/")

    assert page.status_code == 200
    assert b"<script>" not in page.content
    assert marketer_client.get("/api/docs/?script=").status_code == 200
