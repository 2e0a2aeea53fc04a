"""Google Ads Customer Match: the CSV upload with hashed email, phone and names.

Headers ``Email, Phone, First Name, Last Name, Country, Zip``. Email, phone and names are
SHA-256 hex of the normalised value; country and zip stay plain. An address only matches
with all four of first name, last name, country and zip, so a partial address is left out.
"""

from collections.abc import Callable, Iterable, Sequence
from typing import Any, TextIO

from marketing.exporters.base import (
    Member,
    Readiness,
    WriteResult,
    cached_hasher,
    member_identifiers,
)
from marketing.exporters.csvsafe import SafeCSVWriter
from marketing.exporters.normalise import (
    collapse_whitespace,
    country_code,
    email_basic,
    is_us,
    phone_international,
    sha256_hex,
    us_zip,
)

HEADERS = ["Email", "Phone", "First Name", "Last Name", "Country", "Zip"]
PLATFORM = "google"
# The identity fields Google matches on, as ``hasher`` returns them; the zip goes plain.
HASHED_FIELDS = ("email", "phone", "first_name", "last_name", "postal_code")
GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
NAME_PREFIXES = frozenset(
    {
        "mr",
        "mrs",
        "ms",
        "miss",
        "mx",
        "dr",
        "prof",
        "sir",
        "dame",
        "lady",
        "lord",
        "rev",
        "fr",
        "madam",
        "mme",
        "mlle",
        "herr",
        "frau",
        "sig",
        "sra",
        "srta",
    }
)
NAME_SUFFIXES = frozenset(
    {
        "jr",
        "sr",
        "ii",
        "iii",
        "iv",
        "phd",
        "md",
        "dds",
        "esq",
        "mba",
        "msc",
        "bsc",
    }
)


def normalise_email(raw: str | None) -> str:
    """Lowercase, no whitespace; for gmail.com and googlemail.com also no dots and no
    ``+suffix`` in the name (``Cloudy.SF+shop@gmail.com`` -> ``cloudysf@gmail.com``)."""
    email = email_basic(raw)
    local, _, domain = email.partition("@")
    if domain in GMAIL_DOMAINS:
        local = local.split("+", 1)[0].replace(".", "")
        return f"{local}@{domain}" if local else ""
    return email


def normalise_phone(raw: str | None, country: str | None) -> str:
    """E.164 with the ``+``: ``(800) 555-0100`` in the US -> ``+18005550100``."""
    digits = phone_international(raw, country)
    return f"+{digits}" if digits else ""


def normalise_name(raw: str | None) -> str:
    """Lowercase, trimmed, without titles or suffixes (``Mrs. Jane`` -> ``jane``,
    ``Smith Jr.`` -> ``smith``); a name that is only a title stays as it is."""
    words = collapse_whitespace(raw).lower().split()
    while len(words) > 1 and words[0].strip(".,") in NAME_PREFIXES:
        words.pop(0)
    while len(words) > 1 and words[-1].strip(".,") in NAME_SUFFIXES:
        words.pop()
    return " ".join(words).strip(" ,")


def normalise_country(raw: str | None) -> str:
    return country_code(raw)


def normalise_zip(raw: str | None, country: str | None) -> str:
    """US: the five-digit ZIP; elsewhere the postcode as written, in capitals."""
    if not raw:
        return ""
    if is_us(country):
        return us_zip(raw)
    return collapse_whitespace(raw).upper()


def hasher() -> Callable[[Sequence[Any]], tuple[str, ...]]:
    """A member's identifiers as Google takes them, in the order of ``HASHED_FIELDS``: the
    SHA-256 of the normalised email, phone and names, and the normalised zip (plain). Made
    from the plain identifiers, or, where one is blank, its digest stored at import. Names
    repeat, so their digests are remembered while the returned function lives."""
    hash_name = cached_hasher(normalise_name)

    def identifiers(member: Sequence[Any]) -> tuple[str, ...]:
        email, phone, first, last, country, postal = member[2:8]
        made = (
            sha256_hex(normalise_email(email)),
            sha256_hex(normalise_phone(phone, country)),
            hash_name(first),
            hash_name(last),
            normalise_zip(postal, country),
        )
        plain = (email, phone, first, last, postal)
        return member_identifiers(member, made, plain, PLATFORM, HASHED_FIELDS)

    return identifiers


def _address(first: str, last: str, country: str, zip_code: str) -> list[str] | None:
    """All four address columns, or None: a partial address does not match."""
    return [first, last, country, zip_code] if first and last and country and zip_code else None


def readiness(member: Member) -> Readiness:
    email, phone, first, last, zip_code = hasher()(member)
    return Readiness(
        email=bool(email),
        phone=bool(phone),
        address=_address(first, last, normalise_country(member.country), zip_code) is not None,
    )


def write(
    members: Iterable[Member], out: TextIO, *, result: WriteResult | None = None
) -> WriteResult:
    result = result if result is not None else WriteResult()
    writer = SafeCSVWriter(out)
    writer.writerow(HEADERS)
    identifiers = hasher()
    for member in members:
        email, phone, first, last, zip_code = identifiers(member)
        address = _address(first, last, normalise_country(member[6]), zip_code)
        if not (email or phone or address):
            result.skipped.append(member[0])
            continue
        writer.writerow([email, phone, *(address or ["", "", "", ""])])
        result.rows += 1
    return result
