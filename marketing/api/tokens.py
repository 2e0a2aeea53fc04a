"""Checking an API token on each request.

A token is checked against the tokens that share its first characters, with their users
and the users' roles (one indexed read, built into SQL once per process:
``marketing.prepared``; the role checks of the request then read nothing). knox's own
check also reads every other token of the user on each request to delete the expired ones;
here an expired token is refused and deleted when it is sent, and the daily purge
(``marketing.services.retention.expired_tokens_purge``) deletes the others, so a request's
cost does not grow with the tokens its user holds.

Kept apart from the token views: DRF imports the authentication classes while it is itself
being imported, before views can be.
"""

import binascii
from functools import cache
from hmac import compare_digest

from django.contrib.auth import get_user_model
from django.db import DEFAULT_DB_ALIAS
from django.db.models import FilteredRelation, Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from knox.auth import TokenAuthentication as KnoxTokenAuthentication
from knox.crypto import hash_token
from knox.models import get_token_model
from knox.settings import CONSTANTS
from knox.signals import token_expired
from rest_framework import exceptions

from marketing.prepared import PreparedQuery
from marketing.roles import ALL_ROLES, remember_roles


@cache
def _columns() -> tuple[list[str], list[str]]:
    """The token's and its user's columns, as ``Model.from_db`` takes them."""
    token_model, user_model = get_token_model(), get_user_model()
    return (
        [field.attname for field in token_model._meta.concrete_fields],
        [field.attname for field in user_model._meta.concrete_fields],
    )


@cache
def _candidates_read() -> PreparedQuery:
    """The tokens of a token_key with their users' columns, a row per role the user holds
    (one row with no role for a user with none)."""
    token_model = get_token_model()
    token_columns, user_columns = _columns()
    return PreparedQuery(
        lambda token_key: (
            token_model.objects.filter(token_key=token_key)
            .annotate(
                role=FilteredRelation("user__groups", condition=Q(user__groups__name__in=ALL_ROLES))
            )
            .order_by("pk")
            .values_list(*token_columns, *(f"user__{name}" for name in user_columns), "role__name")
        ),
        token_key=token_model._meta.get_field("token_key"),
    )


def _candidates(token_key: str) -> list:
    """The stored tokens whose first characters are ``token_key``, each with its user, who
    knows their roles."""
    token_model, user_model = get_token_model(), get_user_model()
    token_columns, user_columns = _columns()
    ends = len(token_columns), len(token_columns) + len(user_columns)
    found: dict = {}
    roles: dict = {}
    for row in _candidates_read().rows(token_key=token_key):
        auth_token = token_model.from_db(DEFAULT_DB_ALIAS, token_columns, row[: ends[0]])
        if auth_token.pk not in found:
            auth_token.user = user_model.from_db(
                DEFAULT_DB_ALIAS, user_columns, row[ends[0] : ends[1]]
            )
            found[auth_token.pk] = auth_token
            roles[auth_token.pk] = set()
        if row[ends[1]] is not None:
            roles[auth_token.pk].add(row[ends[1]])
    for pk, auth_token in found.items():
        remember_roles(auth_token.user, roles[pk])
    return list(found.values())


class TokenAuthentication(KnoxTokenAuthentication):
    """knox's token check (digest compared in constant time, expiry, active user) with one
    read per request (see the module docstring). Tokens never renew themselves: each expires
    ``API_TOKEN_TTL_HOURS`` after it was issued."""

    def authenticate_credentials(self, token: bytes):
        refused = _("Invalid token.")
        text = token.decode("utf-8")
        try:
            digest = hash_token(text)
        except (TypeError, binascii.Error):
            raise exceptions.AuthenticationFailed(refused) from None
        for auth_token in _candidates(text[: CONSTANTS.TOKEN_KEY_LENGTH]):
            if not compare_digest(digest, auth_token.digest):
                continue
            if auth_token.expiry is not None and auth_token.expiry < timezone.now():
                username = auth_token.user.get_username()
                auth_token.delete()
                token_expired.send(sender=type(self), username=username, source="auth_token")
                break
            return self.validate_user(auth_token)
        raise exceptions.AuthenticationFailed(refused)
