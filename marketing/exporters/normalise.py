"""Building blocks shared by the platform normalisers.

Each platform module composes these into its own rules (Google keeps the ``+`` of E.164,
Meta and TikTok do not; Google drops gmail dots, TikTok drops every ``+suffix``...). Every
function takes the raw stored value (possibly None) and returns ``""`` when nothing usable
is left, so an empty cell always means "no identifier".
"""

import hashlib
import re

from marketing.exporters.countries import KEEP_LEADING_ZERO, calling_code, split_calling_code

# ASCII characters other than digits, deleted by str.translate (faster than a regex here).
_NON_DIGITS = {code: None for code in range(128) if not chr(code).isdigit()}
_WHITESPACE = re.compile(r"\s+")
# E.164: a country code and a national number of at most 15 digits together.
_MIN_PHONE_DIGITS, _MAX_PHONE_DIGITS = 8, 15
_sha256 = hashlib.sha256


def sha256_hex(value: str) -> str:
    """SHA-256 hex digest of a normalised value; an empty value stays empty."""
    return _sha256(value.encode()).hexdigest() if value else ""


def _digits(text: str) -> str:
    """The digits of ``text`` as ASCII digits (other scripts' digits are converted)."""
    digits = text.translate(_NON_DIGITS)
    return digits if digits.isascii() else "".join(str(int(c)) for c in digits if c.isdecimal())


def email_basic(raw: str | None) -> str:
    """Lowercased, every whitespace character removed; ``""`` unless it looks like an email."""
    if not raw:
        return ""
    email = "".join(raw.split()).lower()
    # One "@" with something before it and a dotted domain after it ("a@b.c").
    at = email.find("@")
    if at < 1 or email.count("@") != 1 or email.endswith("."):
        return ""
    return email if email.find(".", at + 2) > 0 else ""


def drop_plus_suffix(email: str) -> str:
    """``name+shop@x.com`` -> ``name@x.com``."""
    local, at, domain = email.partition("@")
    return local.split("+", 1)[0] + at + domain if "+" in local else email


def phone_international(raw: str | None, country: str | None) -> str:
    """The number as digits starting with the calling code, without ``+``: ``447123456789``.

    A number written with ``+`` or ``00`` is international; any other is a national number of
    ``country``. The trunk ``0`` after the calling code is dropped (``+44 07123 456789`` ->
    ``447123456789``) except where it belongs to the number (Italy). ``""`` when the
    country is unknown for a national number or the length cannot be a phone number.
    """
    if not raw:
        return ""
    text = raw.strip()
    digits = _digits(text)
    if text.startswith("+"):
        international = digits
    elif digits.startswith("00"):
        international = digits[2:]
    else:
        code = calling_code(country)
        if code is None or not digits:
            return ""
        if code == "1" and len(digits) == 11 and digits.startswith("1"):
            digits = digits[1:]  # North American numbers are often written 1-800-...
        international = code + digits
    parts = split_calling_code(international)
    if parts is not None:
        code, national = parts
        if code not in KEEP_LEADING_ZERO:
            national = national.lstrip("0")
        if not national:
            return ""
        international = code + national
    if not _MIN_PHONE_DIGITS <= len(international) <= _MAX_PHONE_DIGITS:
        return ""
    return international


def country_code(raw: str | None) -> str:
    """ISO 3166-1 alpha-2 in capitals, or ``""``."""
    code = (raw or "").strip().upper()
    return code if len(code) == 2 and code.isalpha() and code.isascii() else ""


def is_us(country: str | None) -> bool:
    return country == "US" or (country is not None and country.strip().upper() == "US")


def letters_only(raw: str | None) -> str:
    """Lowercase letters only (any script): ``"O'Brien-Smith"`` -> ``"obriensmith"``."""
    if not raw:
        return ""
    text = raw.lower()
    return text if text.isalpha() else "".join(c for c in text if c.isalpha())


def us_zip(raw: str) -> str:
    """The first five digits of a US ZIP (``"02139-4307"`` -> ``"02139"``); ``""`` if fewer."""
    digits = _digits(raw)
    return digits[:5] if len(digits) >= 5 else ""


def collapse_whitespace(raw: str | None) -> str:
    return _WHITESPACE.sub(" ", raw).strip() if raw else ""
