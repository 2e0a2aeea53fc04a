"""Building blocks shared by the platform normalisers.

Each platform module composes these into its own rules (Google keeps the ``+`` of E.164,
Meta and TikTok do not; Google drops gmail dots, TikTok drops every ``+suffix``...). Every
function takes the raw stored value (possibly None) and returns ``""`` when nothing usable
is left, so an empty cell always means "no identifier".
"""

import hashlib
import re

from marketing.phones import e164_or_blank

# ASCII characters other than digits, deleted by str.translate (faster than a regex here).
_NON_DIGITS = {code: None for code in range(128) if not chr(code).isdigit()}
_WHITESPACE = re.compile(r"\s+")
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

    Read by phonenumbers (``marketing.phones``): a number written with ``+`` or an
    international prefix is international, any other a national number of ``country``; the
    trunk ``0`` is dropped where it is not part of the number (kept in Italy). ``""`` when the
    country is unknown for a national number or it cannot be a phone number.
    """
    return e164_or_blank(raw, country)[1:]


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
