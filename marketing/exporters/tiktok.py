"""TikTok customer file: SHA-256 of email and phone, one column per identifier type."""

from collections.abc import Iterable
from typing import TextIO

from marketing.exporters.base import Member, Readiness, WriteResult
from marketing.exporters.csvsafe import SafeCSVWriter
from marketing.exporters.normalise import (
    drop_plus_suffix,
    email_basic,
    phone_international,
    sha256_hex,
)

HEADERS = ["Email_SHA256", "Phone_SHA256"]


def normalise_email(raw: str | None) -> str:
    """Lowercase, without a ``+suffix`` before the ``@`` (every domain)."""
    return drop_plus_suffix(email_basic(raw))


def normalise_phone(raw: str | None, country: str | None) -> str:
    """Digits with the country code, no ``+``: ``(657)777-0000`` in the US -> ``16577770000``."""
    return phone_international(raw, country)


def readiness(member: Member) -> Readiness:
    return Readiness(
        email=bool(normalise_email(member.email)),
        phone=bool(normalise_phone(member.phone, member.country)),
        address=None,
    )


def write(
    members: Iterable[Member], out: TextIO, *, result: WriteResult | None = None
) -> WriteResult:
    result = result if result is not None else WriteResult()
    writer = SafeCSVWriter(out)
    writer.writerow(HEADERS)
    for pseudonym, _score, email, phone, _first, _last, country, _postal in members:
        email = sha256_hex(normalise_email(email))
        phone = sha256_hex(normalise_phone(phone, country))
        if not (email or phone):
            result.skipped.append(pseudonym)
            continue
        writer.writerow([email, phone])
        result.rows += 1
    return result
