"""Country facts the exporters need, kept in one place: the EEA and Google's consent countries.

Calling codes and national number rules come from phonenumbers (``marketing.phones``).
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
