"""Production keys: long, random-looking and each different from the others."""

import secrets

import pytest
from django.core.exceptions import ImproperlyConfigured

from marketing.keychecks import require_distinct_keys, require_strong_key


def test_it_accepts_a_generated_key():
    key = secrets.token_urlsafe(48)
    assert require_strong_key("PSEUDONYM_KEY", key) == key


def test_it_accepts_a_32_character_hex_key():
    key = secrets.token_hex(16)
    assert require_strong_key("PSEUDONYM_KEY", key) == key


@pytest.mark.parametrize(
    "weak",
    [
        "",
        "short-but-random-Zq8",
        "a" * 32,
        "ab" * 32,
        "password" * 4,
        "dev-only-pseudonym-key" * 2,
    ],
)
def test_it_refuses_a_weak_key(weak):
    with pytest.raises(ImproperlyConfigured, match="PSEUDONYM_KEY"):
        require_strong_key("PSEUDONYM_KEY", weak)


def test_it_says_how_to_make_a_good_key():
    with pytest.raises(ImproperlyConfigured, match="secrets.token_urlsafe"):
        require_strong_key("DJANGO_SECRET_KEY", "a" * 40)


def test_it_refuses_one_key_for_two_purposes():
    shared = secrets.token_urlsafe(48)
    keys = {
        "DJANGO_SECRET_KEY": shared,
        "PSEUDONYM_KEY": shared,
        "OTHER_KEY": secrets.token_urlsafe(48),
    }

    with pytest.raises(ImproperlyConfigured, match="DJANGO_SECRET_KEY and PSEUDONYM_KEY"):
        require_distinct_keys(keys)


def test_it_accepts_distinct_keys():
    require_distinct_keys({name: secrets.token_urlsafe(48) for name in ("A", "B", "C")})
