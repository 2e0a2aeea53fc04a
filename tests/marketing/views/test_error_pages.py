"""What people and API clients see when a page is missing or the server fails: the product's
own pages, JSON under /api/, and never Django's debug pages (which would show what the
request carried)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import OperationalError

from marketing.api.jobs import JobViewSet
from marketing.views import health
from marketing.views.overview import OverviewView

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[3]
SECRET = "never-shown-secret-1234"


def _debug_setting(**env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k != "DJANGO_DEBUG"}
    return subprocess.run(
        [sys.executable, "-c", "import marketing.settings as s; print(s.DEBUG)"],
        cwd=ROOT,
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_debug_is_off_unless_the_environment_turns_it_on():
    assert _debug_setting() == "False"
    assert _debug_setting(DJANGO_DEBUG="true") == "True"


def test_a_missing_page_is_the_products_page(marketer_client):
    response = marketer_client.get("/no-such-page/")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")
    assert "This page does not exist" in response.content.decode()


def test_a_missing_api_route_answers_json(marketer_client):
    response = marketer_client.get("/api/no-such-endpoint/")

    assert response.status_code == 404
    assert response.json() == {"detail": "Not found."}


def _fail(*args, **kwargs):
    raise RuntimeError(SECRET)


def test_a_server_error_on_a_page_is_the_products_page(marketer_client, monkeypatch):
    monkeypatch.setattr(OverviewView, "get_context_data", _fail)
    marketer_client.raise_request_exception = False

    response = marketer_client.get("/")

    assert response.status_code == 500
    body = response.content.decode()
    assert "Something went wrong on our side" in body
    assert "css/app.css" in body
    assert SECRET not in body and "Traceback" not in body


def test_a_server_error_in_the_api_answers_json(marketer_client, monkeypatch):
    monkeypatch.setattr(JobViewSet, "list", _fail)
    marketer_client.raise_request_exception = False

    response = marketer_client.get("/api/jobs/")

    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert "could not complete the request" in response.json()["detail"]
    assert SECRET not in response.content.decode()


def test_the_health_check_needs_no_login_and_says_only_ok(client):
    response = client.get("/healthz")

    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_the_health_check_fails_when_the_database_cannot_be_reached(client, monkeypatch):
    def unreachable():
        raise OperationalError("connection refused")

    monkeypatch.setattr(health.connection, "cursor", unreachable)

    response = client.get("/healthz")

    assert response.status_code == 503
    assert response.json() == {"status": "unavailable"}
