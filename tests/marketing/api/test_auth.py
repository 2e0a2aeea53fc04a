"""API tokens: issued for a username and password, hashed at rest, expiring, revocable."""

from datetime import timedelta

import pytest
from django.contrib.auth.models import Group, User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from knox.models import AuthToken
from knox.settings import CONSTANTS

from marketing.api.tokens import TokenAuthentication
from marketing.roles import DATA_STEWARD, MARKETER, has_role, sync_role_groups, user_roles
from marketing.services.retention import expired_tokens_purge

pytestmark = pytest.mark.django_db

PASSWORD = "pw-for-tests-only-123"
KEY = CONSTANTS.TOKEN_KEY_LENGTH


def _token(client, password: str = PASSWORD):
    return client.post("/api/auth/token/", {"username": "mara", "password": password})


def _get(client, token: str):
    return client.get("/api/segments/", HTTP_AUTHORIZATION=f"Token {token}")


def test_it_issues_a_working_token_for_a_username_and_password(client, marketer):
    response = _token(client)

    assert response.status_code == 200
    assert _get(client, response.json()["token"]).status_code == 200


def test_it_stores_only_a_digest_of_the_token(client, marketer):
    key = _token(client).json()["token"]

    stored = AuthToken.objects.get(user=marketer)
    assert key not in (stored.digest, stored.token_key)
    assert not AuthToken.objects.filter(digest=key).exists()


def test_it_refuses_a_wrong_password(client, marketer):
    response = _token(client, "wrong-guess")

    assert response.status_code == 400
    assert "token" not in response.json()


def test_it_locks_out_after_repeated_wrong_passwords(client, marketer, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        _token(client, "wrong-guess")

    response = _token(client)

    assert response.status_code == 429
    assert "Too many failed login attempts" in response.json()["detail"]
    assert not AuthToken.objects.filter(user=marketer).exists()


def test_it_gives_tokens_an_expiry_from_the_settings(client, marketer, settings):
    response = _token(client)

    stored = AuthToken.objects.get(user=marketer)
    expected = timezone.now() + settings.REST_KNOX["TOKEN_TTL"]
    assert abs(stored.expiry - expected) < timedelta(minutes=1)
    assert response.json()["expiry"]


def test_it_refuses_an_expired_token_and_deletes_it(client, marketer):
    key = _token(client).json()["token"]
    AuthToken.objects.filter(user=marketer).update(expiry=timezone.now() - timedelta(seconds=1))

    assert _get(client, key).status_code in (401, 403)
    assert not AuthToken.objects.filter(user=marketer).exists()


def test_it_refuses_a_token_that_shares_only_the_stored_ones_first_characters(client, marketer):
    key = _token(client).json()["token"]
    # The same first characters (the stored token_key), another digest.
    forged = key[:KEY] + ("0" if key[KEY] != "0" else "1") + key[KEY + 1 :]

    assert _get(client, forged).status_code in (401, 403)
    assert _get(client, key).status_code == 200


def test_a_requests_token_check_does_not_grow_with_the_users_tokens(client, marketer):
    keys = [AuthToken.objects.create(user=marketer)[1] for _ in range(2)]
    assert _get(client, keys[1]).status_code == 200  # anything read once per process
    with CaptureQueriesContext(connection) as few:
        assert _get(client, keys[0]).status_code == 200
    keys += [AuthToken.objects.create(user=marketer)[1] for _ in range(30)]
    AuthToken.objects.filter(token_key__in=[key[:KEY] for key in keys[2:10]]).update(
        expiry=timezone.now() - timedelta(days=1)
    )

    with CaptureQueriesContext(connection) as many:
        assert _get(client, keys[0]).status_code == 200

    assert len(many) == len(few)
    # The expired ones are left to the daily purge.
    assert AuthToken.objects.filter(user=marketer).count() == 32
    assert expired_tokens_purge() == 8
    assert AuthToken.objects.filter(user=marketer).count() == 24
    assert _get(client, keys[-1]).status_code == 200


@pytest.mark.parametrize(
    ("groups", "roles"),
    [
        ((), set()),
        (("outside",), set()),
        ((MARKETER,), {MARKETER}),
        ((MARKETER, "outside", DATA_STEWARD), {MARKETER, DATA_STEWARD}),
    ],
)
def test_the_token_check_reads_the_users_roles_in_the_same_query(groups, roles):
    sync_role_groups()
    user = User.objects.create_user(username="tess", password=PASSWORD)
    for name in groups:
        user.groups.add(Group.objects.get_or_create(name=name)[0])
    # Another user's token, which the read must not mix in.
    AuthToken.objects.create(user=User.objects.create_user(username="other"))
    key = AuthToken.objects.create(user=user)[1]
    check = TokenAuthentication()

    with CaptureQueriesContext(connection) as read:
        found, _ = check.authenticate_credentials(key.encode())
        held = user_roles(found)
        allowed = has_role(found, (MARKETER,))

    assert len(read) == 1
    assert found.pk == user.pk
    assert held == roles
    assert allowed is (MARKETER in roles)


def test_it_revokes_the_token_at_api_logout(client, marketer):
    key = _token(client).json()["token"]

    response = client.post("/api/auth/logout/", HTTP_AUTHORIZATION=f"Token {key}")

    assert response.status_code == 204
    assert _get(client, key).status_code in (401, 403)


def test_it_revokes_every_token_of_the_user_at_api_logout_all(client, marketer):
    first, second = _token(client).json()["token"], _token(client).json()["token"]

    client.post("/api/auth/logout-all/", HTTP_AUTHORIZATION=f"Token {first}")

    assert _get(client, second).status_code in (401, 403)
