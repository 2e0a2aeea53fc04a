"""Phone numbers and countries at import: read with phonenumbers and pycountry, stored in
E.164 and ISO codes, exported as each platform writes them."""

import pytest

from marketing.exporters import google, meta, tiktok
from marketing.exporters.normalise import sha256_hex
from marketing.models import CustomerIdentity, Job, Upload
from marketing.pii import mask_phone
from tests.marketing.services.ingest_helpers import import_text

pytestmark = pytest.mark.django_db


def _identities() -> dict[str, tuple[str, str]]:
    return {
        i.customer.external_id: (i.phone, i.country)
        for i in CustomerIdentity.objects.select_related("customer")
    }


def test_a_national_number_with_its_country_imports_and_exports_in_e164(
    marketer, django_capture_on_commit_callbacks
):
    text = (
        "customer_id,phone,country\n"
        "C1,(415) 555-0103,US\n"
        "C2,030 1234567,Germany\n"
        "C3,+44 07123 456789,\n"
        "C4,06 1234 5678,ITA\n"
    )
    job = import_text(django_capture_on_commit_callbacks, text, by=marketer)
    assert job.status == Job.Status.SUCCEEDED, job.message
    assert _identities() == {
        "C1": ("+14155550103", "US"),
        "C2": ("+49301234567", "DE"),
        "C3": ("+447123456789", ""),
        "C4": ("+390612345678", "IT"),  # Italy keeps its leading 0
    }
    phone, country = _identities()["C1"]
    assert google.normalise_phone(phone, country) == "+14155550103"
    assert meta.normalise_phone(phone, country) == "14155550103"
    assert tiktok.normalise_phone(phone, country) == "14155550103"
    assert sha256_hex(meta.normalise_phone(phone, country)) == sha256_hex("14155550103")


@pytest.mark.parametrize(
    ("phone", "country", "reason"),
    [
        ("030 1234567", "", "is a national number with no country"),
        ("555-0103", "US", "is a local number in US: add the area code"),
        ("415 55", "US", "is too short for a phone number in US"),
        ("07123 4567890123", "GB", "is too long for a phone number in GB"),
    ],
)
def test_a_number_that_cannot_be_dialled_is_refused_naming_row_and_column(
    marketer, django_capture_on_commit_callbacks, phone, country, reason
):
    text = f"customer_id,phone,country\nC1,+49 30 1234567,DE\nC2,{phone},{country}\n"
    job = import_text(django_capture_on_commit_callbacks, text, by=marketer)
    assert job.status == Job.Status.FAILED
    # Phones are personal identifiers: the message shows them masked.
    assert f"Row 2 (line 3), column 'phone': '{mask_phone(phone)}' {reason}" in job.message
    assert not CustomerIdentity.objects.exists()  # all or nothing: row 1 is not half-written


def test_a_bad_phone_leaves_the_rest_of_the_row_when_valid_rows_are_imported(
    marketer, django_capture_on_commit_callbacks
):
    text = "customer_id,email,phone,country\nC1,a@example.com,555,US\nC2,b@example.com,,US\n"
    job = import_text(
        django_capture_on_commit_callbacks, text, by=marketer, mode=Upload.Mode.VALID_ROWS
    )
    assert job.status == Job.Status.SUCCEEDED, job.message
    assert list(_identities()) == ["C2"]  # row 1 is refused as a whole
    [problem] = job.result["errors"]
    assert (problem["row"], problem["column"]) == (1, "phone")


def test_a_country_name_that_is_no_country_is_refused(marketer, django_capture_on_commit_callbacks):
    text = "customer_id,country\nC1,Atlantis\n"
    job = import_text(django_capture_on_commit_callbacks, text, by=marketer)
    assert job.status == Job.Status.FAILED
    assert "column 'country': 'Atlantis' is not a country" in job.message


def test_text_that_is_no_phone_number_is_refused(marketer, django_capture_on_commit_callbacks):
    text = "customer_id,phone,country\nC1,call me,DE\n"
    job = import_text(django_capture_on_commit_callbacks, text, by=marketer)
    assert job.status == Job.Status.FAILED
    assert "Row 1 (line 2), column 'phone'" in job.message
    assert "is not a phone number" in job.message
