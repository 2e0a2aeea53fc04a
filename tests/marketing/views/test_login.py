"""The login form locks out a guesser and the logout revokes the user's API tokens."""

import pytest
from django.http import HttpRequest
from django.urls import reverse

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-only-123"


def _log_in(client, password: str):
    return client.post(reverse("login"), {"username": "mara", "password": password})


def test_it_locks_out_after_repeated_wrong_passwords(client, marketer, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _log_in(client, "wrong-guess")

    response = _log_in(client, PASSWORD)

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert b"Too many failed login attempts" in response.content


def test_it_still_logs_in_below_the_failure_limit(client, marketer, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        _log_in(client, "wrong-guess")

    response = _log_in(client, PASSWORD)

    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(marketer.pk)


def test_it_revokes_the_users_api_tokens_at_logout(client, marketer):
    token = client.post("/api/auth/token/", {"username": "mara", "password": PASSWORD}).json()[
        "token"
    ]
    client.force_login(marketer)

    client.post(reverse("logout"))

    response = client.get("/api/segments/", HTTP_AUTHORIZATION=f"Token {token}")
    assert response.status_code in (401, 403)


def test_the_test_clients_login_works_when_given_a_request(client, marketer):
    """django-axes needs the request: tests pass one to ``client.login`` (or use force_login)."""
    assert client.login(request=HttpRequest(), username="mara", password=PASSWORD)
    assert client.session["_auth_user_id"] == str(marketer.pk)
