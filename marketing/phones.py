"""Phone numbers read and written with phonenumbers (the Python port of Google's
libphonenumber): one parser for the import, which stores every number in E.164
(``+14155550103``), and for the exporters, which format what is stored for each platform.

A number written with ``+`` or an international prefix (``00``) stands on its own; any other
is a national number of the customer's country, so ``(415) 555-0103`` needs the country US.
"""

from __future__ import annotations

import phonenumbers
from django.utils.translation import gettext_noop
from phonenumbers import NumberParseException, PhoneNumberFormat, ValidationResult

from marketing.ingest.wording import LOCAL_IN, TOO_LONG_IN, TOO_SHORT_IN


class BadPhone(ValueError):
    """The text is not a phone number that can be dialled; the message says why."""


_TOO_SHORT = {ValidationResult.TOO_SHORT, ValidationResult.INVALID_LENGTH}
_REASONS = {
    NumberParseException.INVALID_COUNTRY_CODE: gettext_noop(
        "starts with no known country calling code"
    ),
    NumberParseException.NOT_A_NUMBER: gettext_noop("is not a phone number"),
    NumberParseException.TOO_SHORT_AFTER_IDD: gettext_noop("is too short for a phone number"),
    NumberParseException.TOO_SHORT_NSN: gettext_noop("is too short for a phone number"),
    NumberParseException.TOO_LONG: gettext_noop("is too long for a phone number"),
}


def _region(country: str | None) -> str | None:
    code = (country or "").strip().upper()
    return code if len(code) == 2 and code.isalpha() and code.isascii() else None


def e164(text: str, country: str | None) -> str:
    """The number in E.164 (``+`` and at most 15 digits), read as a national number of
    ``country`` unless it is written internationally; BadPhone when it cannot be one."""
    region = _region(country)
    stripped = text.strip()
    international = stripped.startswith("+") or stripped.startswith("00")
    if region is None and not international:
        raise BadPhone(
            gettext_noop(
                "is a national number with no country: write it with + and the country calling "
                "code, or map a country column"
            )
        )
    try:
        number = phonenumbers.parse(stripped, region)
    except NumberParseException as problem:
        raise BadPhone(
            _REASONS.get(problem.error_type, gettext_noop("is not a phone number"))
        ) from None
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason != ValidationResult.IS_POSSIBLE:
        where = phonenumbers.region_code_for_country_code(number.country_code or 0)
        known = bool(where) and where != "ZZ"
        if reason in _TOO_SHORT:
            raise BadPhone(
                TOO_SHORT_IN % {"region": where}
                if known
                else gettext_noop("is too short for a phone number")
            )
        if reason == ValidationResult.TOO_LONG:
            raise BadPhone(
                TOO_LONG_IN % {"region": where}
                if known
                else gettext_noop("is too long for a phone number")
            )
        if reason == ValidationResult.IS_POSSIBLE_LOCAL_ONLY:
            raise BadPhone(
                LOCAL_IN % {"region": where}
                if known
                else gettext_noop("is a local number: add the area code")
            )
        raise BadPhone(gettext_noop("starts with no known country calling code"))
    return phonenumbers.format_number(number, PhoneNumberFormat.E164)


# Calling codes as text ("1", "44", "353"); they are prefix-free.
_CALLING_CODES = frozenset(str(code) for code in phonenumbers.COUNTRY_CODE_TO_REGION_CODE)


def _is_stored_e164(text: str) -> bool:
    """Whether ``text`` is in the form the import stores: ``+``, a known calling code and a
    national number that does not start with 0 (a trunk prefix, or Italy's own 0, which
    phonenumbers reads), 8 to 15 digits in all."""
    if not (9 <= len(text) <= 16 and text[0] == "+" and text.isascii() and text[1:].isdigit()):
        return False
    for length in (1, 2, 3):
        if text[1 : 1 + length] in _CALLING_CODES:
            return text[1 + length] != "0"
    return False


def e164_or_blank(text: str | None, country: str | None) -> str:
    """E.164, or ``""`` when ``text`` is blank or not a dialable number (exporters leave
    such a member's phone out and say so). A number stored by the import is already in
    E.164 and is taken as it is (an export reads millions)."""
    if not text:
        return ""
    if _is_stored_e164(text):
        return text
    try:
        return e164(text, country)
    except BadPhone:
        return ""
