"""Identifiers hashed at import (HASH_IDENTIFIERS_ON_UPLOAD), for teams that only need
audience matching: each platform's own ``hasher`` makes the digests, so an identity hashed on
upload exports exactly as a plain one would.

The digests of one identity are one flat mapping ``"<platform>:<field>" -> digest``; a
field that was stated but that a platform cannot match on maps to "". Google's zip is kept
as Google takes it (normalised, not hashed); country is never hashed (it stays plain on the
identity, as every platform takes it or hashes it at export).
"""

from collections.abc import Callable, Sequence
from typing import Any

from marketing.exporters import google, meta, tiktok

PLATFORMS = (google, meta, tiktok)
# What pages, the API and previews show in place of a hashed identifier.
HASHED = "hashed"
# The identity fields kept only as digests (the others stay plain).
HASHED_FIELDS = tuple(
    sorted(
        {name for platform in PLATFORMS for name in platform.HASHED_FIELDS},
        key=("email", "phone", "first_name", "last_name", "postal_code").index,
    )
)


def digest_keys(field: str) -> list[str]:
    """The keys under which the digests of the identity field ``field`` are stored."""
    return [
        f"{platform.PLATFORM}:{field}" for platform in PLATFORMS if field in platform.HASHED_FIELDS
    ]


def identity_hasher() -> Callable[[Sequence[str]], dict[str, str]]:
    """A function from an identity ``(email, phone, first name, last name, country, postal
    code)`` to its digests, for the fields stated (non-blank). Made once per import."""
    hashers: list[tuple[str, tuple[str, ...], Callable[[Sequence[Any]], tuple[str, ...]]]] = [
        (platform.PLATFORM, platform.HASHED_FIELDS, platform.hasher()) for platform in PLATFORMS
    ]
    position = {
        name: i
        for i, name in enumerate(
            ("email", "phone", "first_name", "last_name", "country", "postal_code")
        )
    }

    def digests(identity: Sequence[str]) -> dict[str, str]:
        member = ("", None, *identity)
        found: dict[str, str] = {}
        for platform, fields, hasher in hashers:
            for name, digest in zip(fields, hasher(member), strict=True):
                if identity[position[name]]:
                    found[f"{platform}:{name}"] = digest
        return found

    return digests
