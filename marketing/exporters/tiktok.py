"""TikTok customer file: SHA-256 of email and phone, one column per identifier type."""

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TextIO

from marketing.exporters.base import Member, Readiness, WriteResult, member_identifiers
from marketing.exporters.csvsafe import SafeCSVWriter
from marketing.exporters.normalise import (
    drop_plus_suffix,
    email_basic,
    phone_international,
    sha256_hex,
)

HEADERS = ["Email_SHA256", "Phone_SHA256"]
PLATFORM = "tiktok"
HASHED_FIELDS = ("email", "phone")


def normalise_email(raw: str | None) -> str:
    """Lowercase, without a ``+suffix`` before the ``@`` (every domain)."""
    return drop_plus_suffix(email_basic(raw))


def normalise_phone(raw: str | None, country: str | None) -> str:
    """Digits with the country code, no ``+``: ``(657)777-0000`` in the US -> ``16577770000``."""
    return phone_international(raw, country)


def hasher() -> Callable[[Sequence[Any]], tuple[str, ...]]:
    """A member's SHA-256 digests of the normalised email and phone, made from the plain
    identifiers or, where one is blank, its digest stored at import."""

    def identifiers(member: Sequence[Any]) -> tuple[str, ...]:
        email, phone, _first, _last, country = member[2:7]
        made = (sha256_hex(normalise_email(email)), sha256_hex(normalise_phone(phone, country)))
        return member_identifiers(member, made, (email, phone), PLATFORM, HASHED_FIELDS)

    return identifiers


def readiness(member: Member) -> Readiness:
    email, phone = hasher()(member)
    return Readiness(email=bool(email), phone=bool(phone), address=None)


def write(
    members: Iterable[Member], out: TextIO, *, result: WriteResult | None = None
) -> WriteResult:
    result = result if result is not None else WriteResult()
    writer = SafeCSVWriter(out)
    writer.writerow(HEADERS)
    identifiers = hasher()
    for member in members:
        email, phone = identifiers(member)
        if not (email or phone):
            result.skipped.append(member[0])
            continue
        writer.writerow([email, phone])
        result.rows += 1
    return result
