import csv
import hashlib
import io
import json

import pytest

from marketing.exporters import meta
from marketing.exporters.base import Member, WriteResult


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_it_writes_phones_as_digits_without_plus_or_trunk_zero():
    assert meta.normalise_phone("+44 07123 456789", None) == "447123456789"
    assert meta.normalise_phone("(800) 555-0100", "US") == "18005550100"


def test_it_keeps_only_lowercase_letters_in_names():
    assert meta.normalise_name("Mary-Ann O'Neil") == "maryannoneil"


def test_it_normalises_zip_and_country_in_lowercase():
    assert meta.normalise_zip("SW1A 1AA", "GB") == "sw1a1aa"
    assert meta.normalise_zip("94025-1234", "US") == "94025"
    assert meta.normalise_country("GB") == "gb"


def member(i: int, **fields) -> Member:
    values = {
        "email": f"Person{i}@Example.com",
        "phone": "+44 07123 456789",
        "first_name": "Jane",
        "last_name": "Doe",
        "country": "GB",
        "postal_code": "SW1A 1AA",
    } | fields
    return Member(f"pseudo{i}", None, **values)


def test_it_writes_the_api_payload_with_extern_id_plain_and_the_rest_hashed():
    out = io.StringIO()

    result = meta.write_payload([member(1)], out)

    payload = json.loads(out.getvalue())
    assert payload["schema"] == ["EXTERN_ID", "EMAIL", "PHONE", "FN", "LN", "ZIP", "COUNTRY"]
    assert payload["data"] == [
        [
            "pseudo1",
            sha("person1@example.com"),
            sha("447123456789"),
            sha("jane"),
            sha("doe"),
            sha("sw1a1aa"),
            sha("gb"),
        ]
    ]
    assert payload["data"][0][2] == (
        "390fa2f26ecf6ff60e151d2011b1a091840784758531031970a261ca1f3736a9"
    )
    assert result.rows == 1


def test_it_splits_the_payload_into_requests_of_at_most_10000_rows():
    out = io.StringIO()

    result = meta.write_payload((member(i) for i in range(10_001)), out)

    lines = out.getvalue().splitlines()
    assert [len(json.loads(line)["data"]) for line in lines] == [10_000, 1]
    assert result.rows == 10_001


def test_it_refuses_batches_larger_than_the_api_takes():
    with pytest.raises(ValueError, match="10,000"):
        list(meta.payload_batches([member(1)], WriteResult(), batch_rows=10_001))


def test_it_writes_the_ads_manager_csv_without_extern_id():
    out = io.StringIO()

    meta.write_csv([member(1), member(2, email="", phone="", first_name="")], out)

    table = list(csv.reader(io.StringIO(out.getvalue())))
    assert table[0] == ["email", "phone", "fn", "ln", "zip", "country"]
    assert len(table) == 2  # the second member has nothing Meta can match
    assert "pseudo1" not in out.getvalue()
