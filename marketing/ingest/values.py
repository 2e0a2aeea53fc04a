"""Reading one cell: typed profile values, identifiers, consent words and timestamps.

Every parser takes the stripped, non-blank text of a cell and returns the value or raises
``BadValue`` whose text completes the sentence "'<value>' ..." (e.g. "is not a number").
"""

import math
import re
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

import pycountry
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils import timezone
from django.utils.translation import gettext_noop

from marketing.ingest.wording import LONGER_THAN
from marketing.models import ConsentRecord, ProfileField
from marketing.phones import BadPhone, e164

NUMBER = ProfileField.DataType.NUMBER.value
TEXT = ProfileField.DataType.TEXT.value
BOOLEAN = ProfileField.DataType.BOOLEAN.value
DATE = ProfileField.DataType.DATE.value
CATEGORY = ProfileField.DataType.CATEGORY.value
IDENTIFIER = ProfileField.DataType.IDENTIFIER.value


class BadValue(ValueError):
    """The reason a cell cannot be read, e.g. "is not a number"."""


# Placeholders for "no value" in number, yes/no and date columns (text keeps them verbatim).
NULL_TOKENS = frozenset({"na", "n/a", "null", "none", "nan", "-", "#n/a"})

TRUE_WORDS = frozenset({"true", "yes", "y", "t", "1"})
FALSE_WORDS = frozenset({"false", "no", "n", "f", "0"})


def to_number(text: str) -> int | float:
    # int() and float() also accept "1_000", "nan" and "inf"; a spreadsheet means none of them.
    if "_" in text:
        raise BadValue(gettext_noop("is not a number"))
    if text.isdecimal() or (text[0] == "-" and text[1:].isdecimal()):
        return int(text)
    try:
        number = float(text)
    except ValueError:
        if "," in text:
            raise BadValue(
                gettext_noop("is not a number (use a dot for decimals, no thousands separator)")
            ) from None
        raise BadValue(gettext_noop("is not a number")) from None
    if not math.isfinite(number):
        raise BadValue(gettext_noop("is not a finite number"))
    return number


def to_boolean(text: str) -> bool:
    lowered = text.lower()
    if lowered in TRUE_WORDS:
        return True
    if lowered in FALSE_WORDS:
        return False
    raise BadValue(gettext_noop("is not yes/no (use true/false, yes/no or 1/0)"))


def to_date(text: str) -> str:
    """An ISO date, kept as ISO text so that JSON profiles compare dates as strings."""
    try:
        return datetime.fromisoformat(text).date().isoformat()
    except ValueError:
        raise BadValue(gettext_noop("is not a date (use YYYY-MM-DD)")) from None


def to_text(text: str) -> str:
    return text


PROFILE_PARSERS: dict[str, Callable[[str], Any]] = {
    NUMBER: to_number,
    TEXT: to_text,
    BOOLEAN: to_boolean,
    DATE: to_date,
    CATEGORY: to_text,
    IDENTIFIER: to_text,
}
# Types whose values are kept as the text in the file.
TEXT_TYPES = frozenset({TEXT, CATEGORY, IDENTIFIER})


def to_datetime(text: str) -> datetime:
    """An ISO date or date-time; without a zone it is read in the site's time zone."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise BadValue(
            gettext_noop("is not a date or date-time (use YYYY-MM-DD or YYYY-MM-DD HH:MM)")
        ) from None
    if timezone.is_naive(value):
        value = timezone.make_aware(value)
    return value


def cached(parse: Callable[[str], Any]) -> Callable[[str], Any]:
    """A parser that remembers its answers, for columns whose values repeat (dates, codes).
    Make one per import: ``to_datetime`` depends on the time zone active when it runs."""
    return lru_cache(maxsize=65_536)(parse)


def to_money(text: str, *, signed: bool = False) -> Decimal:
    """An amount with at most two decimals and ten digits before the point; negative only
    when ``signed`` (a refund's value, never a price)."""
    try:
        amount = Decimal(text)
    except InvalidOperation:
        raise BadValue(gettext_noop("is not a number")) from None
    if not amount.is_finite():
        raise BadValue(gettext_noop("is not a finite number"))
    if amount < 0 and not signed:
        raise BadValue(gettext_noop("is negative"))
    cents = amount.quantize(Decimal("0.01"))
    if cents != amount:
        raise BadValue(gettext_noop("has more than two decimals"))
    if abs(cents) >= Decimal(10) ** 10:
        raise BadValue(gettext_noop("is too large"))
    return cents


def to_signed_money(text: str) -> Decimal:
    return to_money(text, signed=True)


# Plain addresses (dot-atom local part, letters-only top-level domain) are a strict subset of
# what Django's validator accepts; checking them with one regex keeps big imports fast.
_PLAIN_EMAIL = re.compile(
    r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,63}"
)


def to_email(text: str) -> str:
    if len(text) <= 254 and _PLAIN_EMAIL.fullmatch(text):
        return text
    try:
        validate_email(text)
    except ValidationError:
        raise BadValue(gettext_noop("is not an email address")) from None
    return text


def to_phone(text: str) -> str:
    """A first check of a phone cell on its own (the row's country is read with it in
    `phone_for_country`): digits, spaces and + ( ) . / - only."""
    if not _PHONE.fullmatch(text):
        raise BadValue(gettext_noop("is not a phone number (digits, spaces, + ( ) . / - only)"))
    return text


# Digits and the usual punctuation; a leading bracket for area codes: "(415) 555-0103".
_PHONE = re.compile(r"\+?[0-9(][0-9 ()./-]{2,31}")


def phone_for_country(text: str, country: str) -> str:
    """The number in E.164 (``+14155550103``), a national number read as one of
    ``country``'s (ISO code, or "" when the row has none)."""
    try:
        return e164(text, country or None)
    except BadPhone as bad:
        raise BadValue(str(bad)) from None


def to_country(text: str) -> str:
    """An ISO 3166-1 alpha-2 code from the code itself, the alpha-3 code or the English name
    (``de``, ``DEU``, ``Germany`` -> ``DE``)."""
    code = text.upper()
    if code in COUNTRY_CODES:
        return code
    if code == "UK":
        raise BadValue(
            gettext_noop("is not an ISO 3166 country code (use GB for the United Kingdom)")
        )
    return _country_by_name(text)


@lru_cache(maxsize=4096)
def _country_by_name(text: str) -> str:
    try:
        return pycountry.countries.lookup(text).alpha_2
    except LookupError:
        raise BadValue(
            gettext_noop(
                "is not a country: use a two-letter ISO 3166 code (e.g. DE, FR, US) or the "
                "English name"
            )
        ) from None


def max_length(limit: int) -> Callable[[str], str]:
    def check(text: str) -> str:
        if len(text) > limit:
            raise BadValue(LONGER_THAN % {"limit": limit})
        return text

    return check


CONSENT_WORDS: dict[str, str] = {
    **dict.fromkeys(
        ("granted", "grant", "yes", "y", "true", "1", "opt-in", "opt_in"),
        ConsentRecord.Status.GRANTED,
    ),
    **dict.fromkeys(
        ("denied", "deny", "no", "n", "false", "0", "opt-out", "opt_out"),
        ConsentRecord.Status.DENIED,
    ),
    **dict.fromkeys(("withdrawn", "withdraw", "revoked"), ConsentRecord.Status.WITHDRAWN),
}


def to_consent_status(text: str) -> str:
    try:
        return CONSENT_WORDS[text.lower()]
    except KeyError:
        raise BadValue(
            gettext_noop("is not a consent status (granted, denied or withdrawn)")
        ) from None


# A type is guessed when at least this share of a column's sample reads as that type; the
# rest are then reported as wrong values (a typo in row 17 should not turn "age" into text).
GUESS_SHARE = 0.95


def guess_type(values: Iterable[str]) -> str:
    """The profile data type that fits a column's sampled cells (blank cells ignored)."""
    cells = [v for v in (v.strip() for v in values) if v and v.lower() not in NULL_TOKENS]
    if not cells:
        return TEXT
    lowered = {c.lower() for c in cells}
    # "1"/"0" alone are numbers; yes/no needs words, and every one of them (a third word
    # such as "unknown" makes the column a category).
    if lowered <= TRUE_WORDS | FALSE_WORDS and not lowered <= {"0", "1"}:
        return BOOLEAN
    if _share(cells, _is_number) >= GUESS_SHARE:
        return NUMBER
    if _share(cells, _is_iso_date) >= GUESS_SHARE:
        return DATE
    return TEXT


# Integer columns with at most this many distinct values may be codes rather than amounts.
MAX_CODE_VALUES = 12
# Words in a header that name a code or an identifier rather than an amount.
CODE_WORDS = frozenset(
    "code region store shop branch channel segment zone area district zip postal class type "
    "category group cluster tier status grade level".split()
)
ID_WORDS = frozenset("id ids identifier number no nr ref reference account uuid key".split())
# Sampled values needed before "every value differs" suggests an identifier.
MIN_ID_SAMPLE = 50


def suggest_type(values: Iterable[str], header: str = "") -> str:
    """The type the mapping step suggests for a column: `guess_type`, except that integer
    codes (few distinct values named like a code, or scattered like 101/205/330 rather than a
    count's 0..7) are suggested as categories, and identifier-named columns whose sampled
    values all differ as identifiers. The user can change it."""
    cells = [v for v in (v.strip() for v in values) if v and v.lower() not in NULL_TOKENS]
    guessed = guess_type(cells)
    words = set(re.split(r"[^a-z0-9]+", header.lower())) - {""}
    distinct = set(cells)
    if words & ID_WORDS and len(cells) >= MIN_ID_SAMPLE and len(distinct) == len(cells):
        return IDENTIFIER
    if guessed != NUMBER or len(distinct) > MAX_CODE_VALUES:
        return guessed
    numbers = {to_number(c) for c in cells}
    if not all(isinstance(n, int) for n in numbers):
        return guessed
    # Codes repeat: a few values over many rows (three ages in three rows are not codes).
    repeated = len(cells) >= 3 * len(distinct)
    scattered = max(numbers) - min(numbers) + 1 != len(numbers) or min(numbers) >= 100
    return CATEGORY if words & CODE_WORDS or (scattered and repeated) else guessed


def _share(cells: list[str], test: Callable[[str], bool]) -> float:
    return sum(1 for c in cells if test(c)) / len(cells)


def _is_number(text: str) -> bool:
    # Codes with leading zeros (postal codes, account numbers) are text, not numbers.
    if len(text) > 1 and text[0] == "0" and text[1] != ".":
        return False
    try:
        to_number(text)
    except BadValue:
        return False
    return True


def _is_iso_date(text: str) -> bool:
    if len(text) < 10 or text[4] != "-":
        return False
    try:
        to_date(text)
    except BadValue:
        return False
    return True


def common_values(values: Iterable[Any], limit: int = 20) -> list[Any]:
    """The most frequent values of a text field, offered as choices in the segment builder."""
    return [value for value, _ in Counter(values).most_common(limit)]


# ISO 3166-1 alpha-2 (249 officially assigned codes).
# ISO 3166-1 alpha-2, from pycountry's copy of the ISO tables.
COUNTRY_CODES = frozenset(country.alpha_2 for country in pycountry.countries)
