"""Checks that production keys are long, random-looking and not shared between purposes.

A key that fails is a configuration error at start-up, with how to make a good one. The
entropy estimate (the Shannon entropy of the key's own characters times its length) cannot
prove randomness; it catches what people actually type: one repeated character, a repeated
word, a short alphabet.
"""

import math
from collections import Counter
from collections.abc import Mapping

from django.core.exceptions import ImproperlyConfigured

MIN_KEY_LENGTH = 32
# A 32-character hex key (128 random bits) scores 90 bits or more; "password" * 4 scores 88.
MIN_ESTIMATED_BITS = 90
HOW_TO_MAKE_ONE = 'python -c "import secrets; print(secrets.token_urlsafe(48))"'


def estimated_bits(value: str) -> float:
    counts = Counter(value)
    n = len(value)
    return -sum(c * math.log2(c / n) for c in counts.values())


def _is_repetition(value: str) -> bool:
    """True for a value made of one shorter piece repeated, e.g. "abcabcabc"."""
    return len(value) > 1 and (value + value).find(value, 1) < len(value)


def require_strong_key(name: str, value: str) -> str:
    """The value, if it can serve as the key ``name``; otherwise ImproperlyConfigured."""
    if len(value) < MIN_KEY_LENGTH or value.startswith("dev-only"):
        problem = f"must be set to a random value of {MIN_KEY_LENGTH}+ characters"
    elif _is_repetition(value) or estimated_bits(value) < MIN_ESTIMATED_BITS:
        problem = "looks too regular to be random (repeated characters or a repeated piece)"
    else:
        return value
    raise ImproperlyConfigured(f"{name} {problem}; make one with: {HOW_TO_MAKE_ONE}")


def require_distinct_keys(keys: Mapping[str, str]) -> None:
    """Each key serves one purpose: a leak or a rotation of one must not touch another."""
    seen: dict[str, str] = {}
    for name, value in keys.items():
        if value in seen:
            raise ImproperlyConfigured(
                f"{seen[value]} and {name} must differ; make one with: {HOW_TO_MAKE_ONE}"
            )
        seen[value] = name
