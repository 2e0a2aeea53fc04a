import hashlib

import pytest

from marketing.exporters.countries import EEA, GOOGLE_CONSENT_COUNTRIES
from marketing.exporters.normalise import (
    country_code,
    email_basic,
    letters_only,
    phone_international,
    sha256_hex,
)

# SHA-256 of "test@example.com", as published in many platforms' hashing guides.
TEST_EMAIL_SHA256 = "973dfe463ec85785f5f95af5ba3906eedb2d931c24e69824a89ea65dba4e813b"


def test_it_hashes_a_known_input_to_its_known_digest():
    assert sha256_hex("test@example.com") == TEST_EMAIL_SHA256
    assert sha256_hex("test@example.com") == hashlib.sha256(b"test@example.com").hexdigest()


def test_it_keeps_an_empty_value_empty_instead_of_hashing_it():
    assert sha256_hex("") == ""


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Test@Example.COM ", "test@example.com"),
        ("te st@example.com", "test@example.com"),
        ("not-an-email", ""),
        ("a@b", ""),
        ("a@b.c", "a@b.c"),
        ("@b.c", ""),
        ("a@b@c.d", ""),
        ("a@.com", ""),
        ("a@b.", ""),
        (None, ""),
    ],
)
def test_it_trims_lowercases_and_checks_emails(raw, expected):
    assert email_basic(raw) == expected


@pytest.mark.parametrize(
    ("raw", "country", "expected"),
    [
        ("(800) 555-0100", "US", "18005550100"),
        ("1-800-555-0100", "US", "18005550100"),
        ("+44 07123 456789", None, "447123456789"),
        ("07123 456789", "GB", "447123456789"),
        ("0044 7123 456789", "DE", "447123456789"),
        ("030 1234567", "DE", "49301234567"),
        ("06 1234 5678", "IT", "390612345678"),  # the Italian leading 0 is part of the number
        ("+39 06 1234 5678", None, "390612345678"),
        ("+86 138 0013 8000", None, "8613800138000"),
        ("(415) 555-0103", "US", "14155550103"),
        ("0171 1234567", "de", "491711234567"),  # the country's case does not matter
        ("555-0103", "US", ""),  # a local number without its area code cannot be dialled
        ("+999 1234 5678", None, ""),  # no country has calling code 999
        ("0151 2345678", "", ""),  # a national number of unknown country cannot be dialled
        ("0151 2345678", "XX", ""),
        ("12", "US", ""),
        ("+٤٤ 7123 456789", None, "447123456789"),  # digits of other scripts count too
        ("+44 ٠7123 456789", None, "447123456789"),
        ("+44 0", None, ""),
        ("", "US", ""),
    ],
)
def test_it_writes_phone_numbers_as_international_digits(raw, country, expected):
    assert phone_international(raw, country) == expected


def test_it_keeps_only_letters_of_any_script():
    assert letters_only("O'Brien-Smith Jr.") == "obriensmithjr"
    assert letters_only("Zoë Müller") == "zoëmüller"
    assert letters_only(None) == ""


def test_it_accepts_only_two_letter_country_codes():
    assert country_code(" de ") == "DE"
    assert country_code("DEU") == ""
    assert country_code("1A") == ""


def test_it_keeps_the_eea_in_one_list_and_adds_uk_and_switzerland_for_google():
    assert len(EEA) == 30 and {"NO", "IS", "LI", "DE"} <= EEA and "GB" not in EEA
    assert GOOGLE_CONSENT_COUNTRIES == EEA | {"GB", "CH"}


@pytest.mark.parametrize(
    "stored",
    ["+14155550103", "+447123456789", "+390612345678", "+4407123456789", "+35385012345"],
)
def test_a_stored_number_reads_as_phonenumbers_reads_it(stored):
    import phonenumbers

    parsed = phonenumbers.parse(stored, None)
    expected = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)[1:]
    assert phone_international(stored, None) == expected
    assert phone_international(stored, "DE") == expected  # the country matters not
