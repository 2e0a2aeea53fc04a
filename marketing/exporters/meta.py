"""Meta (Facebook) Custom Audiences: the Marketing API payload and the Ads Manager CSV.

The payload is ``{"schema": [...], "data": [[...], ...]}`` with at most 10,000 rows per
request; the file holds one payload per line (JSON Lines), each ready to send as is.
Everything is SHA-256 hex of the normalised value except ``EXTERN_ID``, which is the
customer's pseudonym (never the source system's id) and is sent plain.
"""

import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
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
    country_code,
    email_basic,
    is_us,
    letters_only,
    phone_international,
    sha256_hex,
    us_zip,
)

SCHEMA = ["EXTERN_ID", "EMAIL", "PHONE", "FN", "LN", "ZIP", "COUNTRY"]
CSV_HEADERS = ["email", "phone", "fn", "ln", "zip", "country"]
MAX_BATCH_ROWS = 10_000
PLATFORM = "meta"
# The identity fields Meta matches on, as ``hasher`` returns them (COUNTRY is hashed from the
# plain country every identity keeps).
HASHED_FIELDS = ("email", "phone", "first_name", "last_name", "postal_code")
# Text that JSON takes as it is between quotes.
_JSON_PLAIN = re.compile(r'[^"\\\x00-\x1f]*')


def normalise_email(raw: str | None) -> str:
    """Trimmed and lowercase."""
    return email_basic(raw)


def normalise_phone(raw: str | None, country: str | None) -> str:
    """Digits only with the country code and no ``+`` or trunk zero:
    ``+44 07123 456789`` -> ``447123456789``."""
    return phone_international(raw, country)


def normalise_name(raw: str | None) -> str:
    """Lowercase letters only, no punctuation or spaces (``O'Brien`` -> ``obrien``)."""
    return letters_only(raw)


def normalise_zip(raw: str | None, country: str | None) -> str:
    """Lowercase without spaces; US: the first five digits."""
    if not raw:
        return ""
    if is_us(country):
        return us_zip(raw)
    return "".join(raw.split()).lower()


def normalise_country(raw: str | None) -> str:
    """ISO 3166-1 alpha-2 in lowercase."""
    return country_code(raw).lower()


def hasher() -> Callable[[Sequence[Any]], tuple[str, ...]]:
    """A member's SHA-256 digests of the normalised email, phone, first and last name and zip
    (the order of ``HASHED_FIELDS``), made from the plain identifiers or, where one is blank,
    its digest stored at import. Names repeat, so their digests are remembered while the
    returned function lives."""
    hash_name = cached_hasher(normalise_name)

    def identifiers(member: Sequence[Any]) -> tuple[str, ...]:
        email, phone, first, last, country, postal = member[2:8]
        made = (
            sha256_hex(email_basic(email)),
            sha256_hex(phone_international(phone, country)),
            hash_name(first),
            hash_name(last),
            sha256_hex(normalise_zip(postal, country)),
        )
        plain = (email, phone, first, last, postal)
        return member_identifiers(member, made, plain, PLATFORM, HASHED_FIELDS)

    return identifiers


def readiness(member: Member) -> Readiness:
    email, phone, first, last, zip_hash = hasher()(member)
    return Readiness(
        email=bool(email),
        phone=bool(phone),
        address=bool(first and last and zip_hash and normalise_country(member.country)),
    )


def _hashed_rows(members: Iterable[Member], result: WriteResult) -> Iterator[tuple[str, ...]]:
    """``[EXTERN_ID, EMAIL, PHONE, FN, LN, ZIP, COUNTRY]`` per matchable member."""
    identifiers = hasher()
    # Countries repeat a lot; postcodes, emails and phones hardly.
    hash_country = cached_hasher(normalise_country)
    for member in members:
        email_hash, phone_hash, first_hash, last_hash, zip_hash = identifiers(member)
        country_hash = hash_country(member[6])
        has_address = first_hash and last_hash and zip_hash and country_hash
        if not (email_hash or phone_hash or has_address):
            result.skipped.append(member[0])
            continue
        result.rows += 1
        # A tuple, not a list: the garbage collector stops tracking tuples of strings.
        yield (member[0], email_hash, phone_hash, first_hash, last_hash, zip_hash, country_hash)


def payload_batches(
    members: Iterable[Member], result: WriteResult, batch_rows: int = MAX_BATCH_ROWS
) -> Iterator[dict[str, Any]]:
    """API request bodies of at most ``batch_rows`` (<= 10,000) rows each."""
    if not 1 <= batch_rows <= MAX_BATCH_ROWS:
        raise ValueError(f"A Meta request holds 1 to {MAX_BATCH_ROWS:,} rows.")
    batch: list[tuple[str, ...]] = []
    for row in _hashed_rows(members, result):
        batch.append(row)
        if len(batch) == batch_rows:
            yield {"schema": SCHEMA, "data": batch}
            batch = []
    if batch:
        yield {"schema": SCHEMA, "data": batch}


def write_payload(
    members: Iterable[Member],
    out: TextIO,
    *,
    batch_rows: int = MAX_BATCH_ROWS,
    result: WriteResult | None = None,
) -> WriteResult:
    """One payload per line (JSON Lines)."""
    result = result if result is not None else WriteResult()
    head = '{"schema":' + json.dumps(SCHEMA, separators=(",", ":")) + ',"data":['
    for payload in payload_batches(members, result, batch_rows):
        out.write(head)
        out.write(",".join(map(_row_json, payload["data"])))
        out.write("]}\n")
    return result


def _row_json(row: tuple[str, ...]) -> str:
    """A row as JSON. Digests are hex and need no escaping, so only the pseudonym is checked
    (it is hex too, unless the product's pseudonyms change)."""
    if _JSON_PLAIN.fullmatch(row[0]):
        return '["' + '","'.join(row) + '"]'
    return json.dumps(row, separators=(",", ":"))


def write_csv(
    members: Iterable[Member], out: TextIO, *, result: WriteResult | None = None
) -> WriteResult:
    """The Ads Manager customer list (hashed; no EXTERN_ID, which only the API takes)."""
    result = result if result is not None else WriteResult()
    writer = SafeCSVWriter(out)
    writer.writerow(CSV_HEADERS)
    writer.writerows(row[1:] for row in _hashed_rows(members, result))
    return result
