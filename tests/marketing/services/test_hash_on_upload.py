"""HASH_IDENTIFIERS_ON_UPLOAD: identifiers are kept only as the ad platforms' SHA-256 digests,
made at import; nothing plain stays in the database or in the stored files."""

import json
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.core.management import CommandError, call_command
from django.db import connection

from marketing.exporters.formats import (
    GOOGLE_CUSTOMER_MATCH,
    META_CUSTOM_AUDIENCE,
    META_CUSTOM_AUDIENCE_CSV,
    TIKTOK_CUSTOMER_FILE,
)
from marketing.models import Customer, CustomerIdentity, Job, Segment, Upload
from marketing.pii import masked_identity
from marketing.selectors.segments import segment_customers
from marketing.services.exports import export_file
from marketing.services.ingest import IngestError, upload_import, upload_set_mapping
from tests.marketing.services.audience_helpers import exported, frozen_audience
from tests.marketing.services.ingest_helpers import import_text

# Every identifier written in a way each platform normalises differently: gmail dots and a
# +suffix, a national phone number, a title before a name, a ZIP+4.
PEOPLE = [
    ("Cloudy.SF+shop@Gmail.com", "1-800-555-0100", "Mrs. Jane", "O'Brien Jr.", "US", "02139-4307"),
    ("max.mustermann+news@example.de", "+49 030 1234567", "Max", "Mustermann", "DE", "10115"),
    ("li@example.com", "", "", "", "US", ""),
    ("", "+44 07123 456789", "Ann", "Lee", "GB", "SW1A 1AA"),
]
# Postal codes are left out: Google takes the zip unhashed, so its normalised form is kept
# for Google's address match (the identity's postal code itself is blank; see below).
PLAIN_VALUES = [value for person in PEOPLE for value in person[:4] if value]


def _people_csv(prefix: str) -> str:
    lines = [
        "customer_id,email,phone,first_name,last_name,country,postal_code,batch,"
        "consent_ad_targeting,consent_ad_user_data,consent_ad_personalization,consent_date"
    ]
    for i, (email, phone, first, last, country, postal) in enumerate(PEOPLE, start=1):
        lines.append(
            f'{prefix}{i:03d},{email},"{phone}","{first}","{last}",{country},{postal},'
            f"{prefix},granted,granted,granted,2024-03-01"
        )
    return "\n".join(lines) + "\n"


def _import(capture, prefix: str, by) -> Upload:
    job = import_text(capture, _people_csv(prefix), by=by)
    assert job.status == Job.Status.SUCCEEDED, job.error
    return Upload.objects.get(job=job)


def _export_lines(by, prefix: str, platform: str) -> list[str]:
    segment = Segment.objects.create(
        name=f"{prefix} {platform}",
        rules={"op": "and", "rules": [{"field": "attr:batch", "operator": "eq", "value": prefix}]},
    )
    export = exported(
        frozen_audience(by, segment=segment, name=f"{prefix} {platform}"), platform, by
    )
    assert export.job.status == Job.Status.SUCCEEDED, export.job.error
    text = export_file(export).read_text()
    if platform == META_CUSTOM_AUDIENCE:
        # The API payload names each row by pseudonym, which differs between the two imports.
        rows = [row[1:] for line in text.splitlines() for row in json.loads(line)["data"]]
        return sorted(map(repr, rows))
    header, *rows = text.splitlines()
    return [header, *sorted(rows)]


def _identity_table_text() -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {CustomerIdentity._meta.db_table}")
        return repr(cursor.fetchall())


def _database_text() -> str:
    """Every row of every table, as text."""
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        rows = []
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {quote(table)}")
            rows.append(repr(cursor.fetchall()))
    return "\n".join(rows)


def _files_text() -> str:
    media = Path(django_settings.MEDIA_ROOT)
    return "\n".join(
        p.read_bytes().decode("utf-8", "replace")
        for p in media.rglob("*")
        if p.is_file() and "exports" not in p.parts
    )


@pytest.mark.parametrize(
    "platform",
    [GOOGLE_CUSTOMER_MATCH, META_CUSTOM_AUDIENCE, META_CUSTOM_AUDIENCE_CSV, TIKTOK_CUSTOMER_FILE],
)
def test_its_exports_carry_the_same_hashes_as_those_of_a_plain_import(
    marketer, settings, django_capture_on_commit_callbacks, platform
):
    _import(django_capture_on_commit_callbacks, "plain", marketer)
    settings.HASH_IDENTIFIERS_ON_UPLOAD = True
    _import(django_capture_on_commit_callbacks, "hashed", marketer)

    hashed = _export_lines(marketer, "hashed", platform)

    assert hashed == _export_lines(marketer, "plain", platform)
    assert len(hashed) > 2
    identities = CustomerIdentity.objects.filter(customer__external_id__startswith="hashed")
    assert identities.count() == len(PEOPLE)
    assert all(i.digests and not (i.email or i.phone or i.first_name) for i in identities)


def test_it_stores_no_plain_identifier_in_the_database_or_the_upload_file(
    marketer, settings, django_capture_on_commit_callbacks
):
    settings.HASH_IDENTIFIERS_ON_UPLOAD = True

    upload = _import(django_capture_on_commit_callbacks, "H", marketer)

    stored = _database_text() + _files_text()
    assert not [value for value in PLAIN_VALUES if value in stored]
    # Nor as normalised for a platform (lowercase, gmail dots and +suffix dropped, digits).
    normalised = (
        "cloudy.sf+shop@gmail.com",
        "cloudysf@gmail.com",
        "max.mustermann@example.de",
        "18005550100",
        "447123456789",
    )
    assert not [value for value in normalised if value in stored]
    identity = CustomerIdentity.objects.get(customer__external_id="H001")
    assert identity.country == "US" and identity.postal_code == ""
    assert identity.digests["google:postal_code"] == "02139"
    assert len(identity.digests["meta:postal_code"]) == 64
    assert "02139-4307" not in stored
    # The stored upload keeps its rows (ids, profile), so erasure still finds the person.
    assert "H001" in Path(upload.file.path).read_text()


def test_it_keeps_plain_identifiers_out_of_error_files_and_job_messages(
    marketer, settings, django_capture_on_commit_callbacks
):
    settings.HASH_IDENTIFIERS_ON_UPLOAD = True
    text = _people_csv("E").replace("li@example.com", "li-at-example.com")

    job = import_text(django_capture_on_commit_callbacks, text, by=marketer)
    upload = Upload.objects.get(job=job)

    assert job.status == Job.Status.FAILED
    assert "email" in job.error
    leaked = "li-at-example.com"
    assert leaked not in job.error + job.message + repr(job.result) + repr(upload.summary)
    assert leaked not in _files_text() + _database_text()
    assert not [value for value in PLAIN_VALUES if value in _files_text()]


def test_it_refuses_to_import_again_an_upload_whose_identifiers_were_removed(
    marketer, settings, django_capture_on_commit_callbacks
):
    settings.HASH_IDENTIFIERS_ON_UPLOAD = True
    text = _people_csv("R").replace("li@example.com", "li-at-example.com")
    job = import_text(django_capture_on_commit_callbacks, text, by=marketer)
    upload = Upload.objects.get(job=job)
    assert job.status == Job.Status.FAILED

    with pytest.raises(IngestError, match="upload the file again"):
        upload_set_mapping(
            upload=upload, mapping=upload.mapping, mode=Upload.Mode.VALID_ROWS, by=marketer
        )
        upload_import(upload=upload, by=marketer)


def test_it_shows_hashed_identifiers_as_hashed_to_everyone(
    marketer, steward, settings, django_capture_on_commit_callbacks
):
    settings.HASH_IDENTIFIERS_ON_UPLOAD = True
    _import(django_capture_on_commit_callbacks, "V", marketer)
    identity = Customer.objects.get(external_id="V001").identity

    for user in (marketer, steward):
        shown = masked_identity(identity, user)
        assert shown["email"] == shown["phone"] == shown["first_name"] == "hashed"
        assert shown["postal_code"] == "hashed" and shown["country"] == "US"


def test_a_plain_import_still_stores_identifiers_in_plain_text(
    marketer, django_capture_on_commit_callbacks
):
    _import(django_capture_on_commit_callbacks, "P", marketer)

    identity = Customer.objects.get(external_id="P001").identity
    assert identity.email == PEOPLE[0][0] and not identity.digests


def test_segments_see_hashed_emails_and_phones_as_present(
    marketer, settings, django_capture_on_commit_callbacks
):
    settings.HASH_IDENTIFIERS_ON_UPLOAD = True
    _import(django_capture_on_commit_callbacks, "S", marketer)

    def members(field: str, operator: str) -> list[str]:
        rules = {"op": "and", "rules": [{"field": field, "operator": operator}]}
        return sorted(segment_customers(rules).values_list("external_id", flat=True))

    assert members("identity:has_email", "is_true") == ["S001", "S002", "S003"]
    assert members("identity:has_phone", "is_true") == ["S001", "S002", "S004"]
    assert members("identity:has_email", "is_false") == ["S004"]


def test_the_command_hashes_identifiers_stored_before_the_setting_was_switched_on(
    marketer, settings, django_capture_on_commit_callbacks
):
    upload = _import(django_capture_on_commit_callbacks, "B", marketer)
    before = {
        platform: _export_lines(marketer, "B", platform)
        for platform in (GOOGLE_CUSTOMER_MATCH, META_CUSTOM_AUDIENCE_CSV)
    }
    settings.HASH_IDENTIFIERS_ON_UPLOAD = True

    call_command("hash_identities", "--batch-size", "3")

    stored = _identity_table_text() + Path(upload.file.path).read_text()
    assert not [value for value in PLAIN_VALUES if value in stored]
    for platform, lines in before.items():
        Segment.objects.filter(name=f"B {platform}").delete()
        assert _export_lines(marketer, "B", platform) == lines


def test_the_command_refuses_while_uploads_would_still_store_plain_identifiers(db):
    with pytest.raises(CommandError, match="HASH_IDENTIFIERS_ON_UPLOAD"):
        call_command("hash_identities")
