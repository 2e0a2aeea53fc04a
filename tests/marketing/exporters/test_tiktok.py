import csv
import hashlib
import io

from marketing.exporters import tiktok
from marketing.exporters.base import Member


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_it_writes_phones_as_digits_with_the_country_code():
    assert tiktok.normalise_phone("(657)777-0000", "US") == "16577770000"


def test_it_drops_the_plus_suffix_of_every_email_domain():
    assert tiktok.normalise_email("Jane.Doe+ads@Example.com") == "jane.doe@example.com"


def test_it_writes_the_customer_file_with_sha256_columns():
    out = io.StringIO()

    result = tiktok.write(
        [
            Member("p1", None, "a@example.com", "(657)777-0000", country="US"),
            Member("p2", None, "", ""),
        ],
        out,
    )

    table = list(csv.reader(io.StringIO(out.getvalue())))
    assert table == [
        ["Email_SHA256", "Phone_SHA256"],
        [sha("a@example.com"), "8d7bdaaf75196f351d22942fc0dd79304ffabc3eaf3339460ef9da0773e3aec2"],
    ]
    assert result.skipped == ["p2"]
