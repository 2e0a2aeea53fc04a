"""Country facts the exporters need, kept in one place: the EEA and international calling codes.

The calling codes cover the countries this product is sold in (the EEA and its neighbours,
North America, Australia and New Zealand). A phone number written without ``+`` is read as a
national number of the customer's country; a country missing here cannot be dialled from a
national number, so such numbers are left out rather than guessed.
"""

# EU member states plus Iceland, Liechtenstein and Norway.
EEA = frozenset(
    {
        "AT",
        "BE",
        "BG",
        "HR",
        "CY",
        "CZ",
        "DK",
        "EE",
        "FI",
        "FR",
        "DE",
        "GR",
        "HU",
        "IE",
        "IT",
        "LV",
        "LT",
        "LU",
        "MT",
        "NL",
        "PL",
        "PT",
        "RO",
        "SK",
        "SI",
        "ES",
        "SE",
        "IS",
        "LI",
        "NO",
    }
)

# Google's EU user consent policy asks for ad_user_data and ad_personalization consent for
# users in the EEA, the United Kingdom and Switzerland.
GOOGLE_CONSENT_COUNTRIES = EEA | {"GB", "CH"}

CALLING_CODES: dict[str, str] = {
    # EEA
    "AT": "43",
    "BE": "32",
    "BG": "359",
    "HR": "385",
    "CY": "357",
    "CZ": "420",
    "DK": "45",
    "EE": "372",
    "FI": "358",
    "FR": "33",
    "DE": "49",
    "GR": "30",
    "HU": "36",
    "IE": "353",
    "IT": "39",
    "LV": "371",
    "LT": "370",
    "LU": "352",
    "MT": "356",
    "NL": "31",
    "PL": "48",
    "PT": "351",
    "RO": "40",
    "SK": "421",
    "SI": "386",
    "ES": "34",
    "SE": "46",
    "IS": "354",
    "LI": "423",
    "NO": "47",
    # Neighbours and other markets
    "GB": "44",
    "CH": "41",
    "MC": "377",
    "AD": "376",
    "SM": "378",
    "US": "1",
    "CA": "1",
    "AU": "61",
    "NZ": "64",
}

# Calling codes whose national numbers keep their leading 0 after the country code (Italy and
# San Marino): elsewhere a leading 0 is a trunk prefix and is dropped.
KEEP_LEADING_ZERO = frozenset({"39", "378"})

_KNOWN_CODES = frozenset(CALLING_CODES.values())


def calling_code(country: str | None) -> str | None:
    return CALLING_CODES.get((country or "").strip().upper())


def split_calling_code(digits: str) -> tuple[str, str] | None:
    """``("44", "07123456789")`` for ``"4407123456789"``; None when no known code starts it.

    Calling codes are prefix-free, so the first known code that starts the digits is the
    right one even though the table does not list every country.
    """
    for length in (1, 2, 3):
        if digits[:length] in _KNOWN_CODES:
            return digits[:length], digits[length:]
    return None
