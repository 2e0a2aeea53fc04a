"""Google Ads Customer Match: the CSV upload with hashed email, phone and names.

Headers ``Email, Phone, First Name, Last Name, Country, Zip``. Email, phone and names are
SHA-256 hex of the normalised value; country and zip stay plain. An address only matches
with all four of first name, last name, country and zip, so a partial address is left out.
"""

from collections.abc import Iterable
from typing import TextIO

from marketing.exporters.base import Member, Readiness, WriteResult, cached_hasher
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
GMAIL_DOMAINS = frozenset({"gmail.com", "googlemail.com"})
NAME_PREFIXES = frozenset({
    "mr", "mrs", "ms", "miss", "mx", "dr", "prof", "sir", "dame", "lady", "lord", "rev", "fr",
    "madam", "mme", "mlle", "herr", "frau", "sig", "sra", "srta",
})
NAME_SUFFIXES = frozenset({
    "jr", "sr", "ii", "iii", "iv", "phd", "md", "dds", "esq", "mba", "msc", "bsc",
})


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


def _address(member: Member) -> tuple[str, str, str, str] | None:
    address = (
        normalise_name(member.first_name),
        normalise_name(member.last_name),
        normalise_country(member.country),
        normalise_zip(member.postal_code, member.country),
    )
    return address if all(address) else None


def readiness(member: Member) -> Readiness:
    return Readiness(
        email=bool(normalise_email(member.email)),
        phone=bool(normalise_phone(member.phone, member.country)),
        address=_address(member) is not None,
    )


def write(
    members: Iterable[Member], out: TextIO, *, result: WriteResult | None = None
) -> WriteResult:
    result = result if result is not None else WriteResult()
    writer = SafeCSVWriter(out)
    writer.writerow(HEADERS)
    hash_name = cached_hasher(normalise_name)
    for member in members:
        pseudonym, _score, email, phone, first, last, country, _postal = member
        email = sha256_hex(normalise_email(email))
        phone = sha256_hex(normalise_phone(phone, country))
        address = _address(Member._make(member))
        if not (email or phone or address):
            result.skipped.append(pseudonym)
            continue
        if address is None:
            names_and_place = ["", "", "", ""]
        else:
            names_and_place = [hash_name(first), hash_name(last), address[2], address[3]]
        writer.writerow([email, phone, *names_and_place])
        result.rows += 1
    return result
