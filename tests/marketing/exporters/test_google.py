import csv
import hashlib
import io

import pytest

from marketing.exporters import google
from marketing.exporters.base import Member


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Cloudy.SF+shop@gmail.com", "cloudysf@gmail.com"),
        ("j.o.h.n+x@googlemail.com", "john@googlemail.com"),
        (" Jane.Doe+news@Example.com ", "jane.doe+news@example.com"),  # other domains keep both
        ("+shop@gmail.com", ""),
    ],
)
def test_it_normalises_emails_with_the_gmail_only_rules(raw, expected):
    assert google.normalise_email(raw) == expected


def test_it_writes_phones_in_e164_with_the_plus():
    assert google.normalise_phone("(800) 555-0100", "US") == "+18005550100"
    assert google.normalise_phone("+44 07123 456789", "GB") == "+447123456789"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("  Jane ", "jane"),
        ("Mrs. Jane", "jane"),
        ("Dr Mary  Ann", "mary ann"),
        ("Smith Jr.", "smith"),
        ("Smith, Jr.", "smith"),
        ("García III", "garcía"),
        ("Miss", "miss"),  # a name that is only a title is kept
    ],
)
def test_it_lowercases_names_and_drops_titles_and_suffixes(raw, expected):
    assert google.normalise_name(raw) == expected


def test_it_keeps_us_zip_codes_to_five_digits_and_others_as_written():
    assert google.normalise_zip("02139-4307", "US") == "02139"
    assert google.normalise_zip(" sw1a  1aa ", "GB") == "SW1A 1AA"


def rows(members) -> list[list[str]]:
    out = io.StringIO()
    result = google.write(members, out)
    return list(csv.reader(io.StringIO(out.getvalue()))), result


def test_it_writes_the_customer_match_csv_with_hashed_identifiers_and_plain_place():
    member = Member(
        "p1",
        0.9,
        "Cloudy.SF+shop@gmail.com",
        "(800) 555-0100",
        "Mrs. Jane",
        "Doe Jr.",
        "us",
        "20500-0001",
    )

    table, result = rows([member])

    assert table[0] == ["Email", "Phone", "First Name", "Last Name", "Country", "Zip"]
    assert table[1] == [
        sha("cloudysf@gmail.com"),
        sha("+18005550100"),
        sha("jane"),
        sha("doe"),
        "US",
        "20500",
    ]
    assert table[1][0] == "e6852afb2aa2bc2b68869c1fd31f452e758b592de76ab1753c70a0b38cd41ea9"
    assert result.rows == 1 and result.skipped == []


def test_it_leaves_a_partial_address_out_and_skips_members_with_nothing_to_match():
    partial = Member("p1", None, "a@example.com", None, "Jane", "", "DE", "10115")
    nothing = Member("p2", None, "not-an-email", "", "Jane", "Doe", "DE", "")

    table, result = rows([partial, nothing])

    assert table[1] == [sha("a@example.com"), "", "", "", "", ""]
    assert len(table) == 2
    assert result.skipped == ["p2"]


def test_it_reports_readiness_after_normalisation():
    ready = google.readiness(Member("p", None, "x@gmail.com", "123", "Jane", "Doe", "FR", "75001"))
    assert (ready.email, ready.phone, ready.address, ready.matchable) == (True, False, True, True)


def test_it_takes_a_stored_digest_only_where_the_plain_identifier_is_blank():
    stored = {"google:email": "e" * 64, "google:phone": "f" * 64}
    member = Member("p", None, "", "1-800-555-0100", "", "", "US", "", stored)

    email, phone, *_ = google.hasher()(member)

    assert email == "e" * 64
    assert phone == hashlib.sha256(b"+18005550100").hexdigest()
