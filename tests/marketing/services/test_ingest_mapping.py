"""Guessing the column mapping and the types of profile columns (no database needed)."""

import pytest

from marketing.ingest.fields import attribute_name, guess_mapping
from marketing.ingest.values import BadValue, guess_type, to_country, to_email, to_number


def test_it_maps_headers_regardless_of_case_spaces_and_underscores():
    headers = [
        "Client ID",
        "E-Mail",
        "Post Code",
        "FIRST NAME",
        "surname",
        "Country_Code",
        "Mobile",
        "Email Marketing Consent",
        "Consent Date",
        "Lifetime Value (EUR)",
    ]
    mapping = guess_mapping("customers", headers)
    assert {k: v for k, v in mapping.items() if v} == {
        "external_id": "Client ID",
        "email": "E-Mail",
        "postal_code": "Post Code",
        "first_name": "FIRST NAME",
        "last_name": "surname",
        "country": "Country_Code",
        "phone": "Mobile",
        "consent_email_marketing": "Email Marketing Consent",
        "consent_date": "Consent Date",
        "attr:lifetime_value_eur": "Lifetime Value (EUR)",
    }


@pytest.mark.parametrize("header", ["customer_id", "id", "client_id", "Customer No", "CUST-ID"])
def test_it_knows_common_names_of_the_customer_id(header):
    assert guess_mapping("customers", [header, "age"])["external_id"] == header


@pytest.mark.parametrize("header", ["zip", "ZIP code", "postcode", "postal_code"])
def test_it_knows_common_names_of_the_postal_code(header):
    assert guess_mapping("customers", ["id", header])["postal_code"] == header


def test_it_prefers_the_exact_field_name_and_maps_each_header_once():
    mapping = guess_mapping("customers", ["id", "external_id", "customer_id"])
    assert mapping["external_id"] == "external_id"
    assert mapping["attr:id"] == "id" and mapping["attr:customer_id"] == "customer_id"


def test_it_leaves_unknown_headers_of_offers_unmapped():
    mapping = guess_mapping("offers", ["Product ID", "Product Name", "colour"])
    assert mapping["external_id"] == "Product ID" and mapping["title"] == "Product Name"
    assert "colour" not in mapping.values()


def test_it_names_attributes_from_headers():
    assert attribute_name("emp.var.rate") == "emp_var_rate"
    assert attribute_name("  Lifetime Value (€) ") == "lifetime_value"


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        (["31", "45", "", "N/A", "27"], "number"),
        (["1.5", "2", "-3e2"], "number"),
        (["yes", "no", "Yes"], "boolean"),
        (["0", "1", "1"], "number"),
        (["yes", "no", "unknown"], "text"),
        (["2024-01-02", "2023-12-31"], "date"),
        (["01234", "10115", "80331"], "text"),  # codes with leading zeros
        ([str(n) for n in range(30)] + ["abc"], "number"),  # one typo does not make it text
        (["12", "abc"], "text"),
        ([], "text"),
    ],
)
def test_it_guesses_column_types(values, expected):
    assert guess_type(values) == expected


def test_it_reads_values_strictly():
    assert to_number("42") == 42 and to_number("4.5") == 4.5
    for text in ("1_000", "nan", "inf", "1,5"):
        with pytest.raises(BadValue):
            to_number(text)
    assert to_country("de") == "DE"
    with pytest.raises(BadValue, match="GB"):
        to_country("UK")
    assert to_email("a.b+c@mail.example.org") == "a.b+c@mail.example.org"
    for text in ("a..b@example.com", "@example.com", "a@b", "a@example.c0m"):
        with pytest.raises(BadValue):
            to_email(text)
