"""Importing customers: row checks, modes, upserts, consent history, rollback."""

import csv
import gc
import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management import call_command

from marketing.ingest import IngestError
from marketing.ingest.writers import Writer
from marketing.models import (
    AuditEvent,
    ConsentRecord,
    Customer,
    CustomerIdentity,
    Job,
    ProfileField,
    Upload,
)
from marketing.selectors.consent import customers_with_consent
from marketing.services import ingest
from marketing.services.ingest import (
    upload_create,
    upload_import,
    upload_preview,
    upload_set_mapping,
)
from marketing.services.jobs import job_cancel
from tests.factories import make_customer, record_consent
from tests.marketing.services.ingest_helpers import (
    csv_file,
    customers_csv,
    import_text,
    run_import,
    stored,
)

pytestmark = pytest.mark.django_db

ALL_OR_NOTHING = Upload.Mode.ALL_OR_NOTHING
VALID_ROWS = Upload.Mode.VALID_ROWS


@pytest.fixture
def existing():
    """A customer the files below would update, with history an import must not lose."""
    customer = make_customer(
        "C001", identity={"email": "old@example.com", "phone": "+49 1"}, age=50, vip=True
    )
    record_consent(customer, "email_marketing", "withdrawn", days_ago=3)
    return stored()


def test_it_imports_customers_with_identity_consent_and_typed_attributes(
    marketer, django_capture_on_commit_callbacks
):
    job = import_text(django_capture_on_commit_callbacks, customers_csv(30), by=marketer)
    assert job.status == Job.Status.SUCCEEDED, job.message
    assert job.result["created"] == 30 and job.result["consents_added"] == 30
    customer = Customer.objects.get(external_id="C003")
    assert customer.attributes == {"age": 23, "plan": "gold"}
    assert customer.identity.email == "person3@example.com"
    assert customer.identity.country == "DE"
    record = customer.consents.get()
    assert (record.purpose, record.status, record.source, record.effective_at) == (
        "email_marketing",
        "granted",
        "csv_import",
        datetime(2024, 3, 1, tzinfo=UTC),
    )
    assert ProfileField.objects.get(name="age").data_type == "number"
    assert ProfileField.objects.get(name="plan").sample_values == ["basic", "gold"]


def test_it_reports_a_wrong_type_in_row_17_and_changes_nothing(
    marketer, existing, django_capture_on_commit_callbacks
):
    text = customers_csv(30, bad={17: {"age": "abc"}})
    job = import_text(django_capture_on_commit_callbacks, text, by=marketer)
    assert job.status == Job.Status.FAILED
    assert "Row 17 (line 18), column 'age': 'abc' is not a number" in job.message
    assert "nothing was imported" in job.message
    assert stored() == existing
    upload = Upload.objects.get(job=job)
    assert upload.status == Upload.Status.FAILED
    assert upload.summary["invalid"] == 1
    assert upload.summary["errors"][0]["row"] == 17


def test_it_reports_duplicate_ids_naming_both_rows(
    marketer, existing, django_capture_on_commit_callbacks
):
    text = customers_csv(12, bad={9: {"customer_id": "C003"}})
    job = import_text(django_capture_on_commit_callbacks, text, by=marketer)
    assert job.status == Job.Status.FAILED
    assert (
        "Row 9 (line 10), column 'customer_id': 'C003' repeats the customer ID of row 3 (line 4)"
    ) in job.message
    assert stored() == existing


def test_it_requires_a_column_for_the_customer_id(
    marketer, existing, django_capture_on_commit_callbacks
):
    upload = upload_create(
        kind="customers", file=csv_file("email,age\na@example.com,3\n"), by=marketer
    )
    assert upload.summary["missing_required"] == ["external_id"]
    with pytest.raises(IngestError, match=r"Customer ID \(external_id\) is required"):
        upload_set_mapping(upload=upload, mapping=upload.mapping, mode=ALL_OR_NOTHING, by=marketer)
    with pytest.raises(IngestError, match="is required"):
        upload_import(upload=upload, by=marketer)
    assert stored() == existing


def test_it_imports_only_the_valid_rows_when_asked(
    marketer, existing, django_capture_on_commit_callbacks
):
    text = customers_csv(
        20,
        bad={
            4: {"email": "not-an-email"},
            7: {"country": "Germania"},
            11: {"consent_email_marketing": "maybe"},
        },
    )
    job = import_text(django_capture_on_commit_callbacks, text, by=marketer, mode=VALID_ROWS)
    assert job.status == Job.Status.SUCCEEDED, job.message
    assert (job.result["valid"], job.result["invalid"]) == (17, 3)
    assert Customer.objects.count() == 17  # C001 was there already and is updated
    assert not Customer.objects.filter(external_id__in=["C004", "C007", "C011"]).exists()

    upload = Upload.objects.get(job=job)
    rows = list(csv.reader(io.StringIO(upload.error_file.read().decode("utf-8-sig"))))
    header = ["customer_id", "email", "country", "age", "plan", "consent_email_marketing"]
    assert rows[0] == ["problem_row", "problem_line", "problems", *header, "consent_date"]
    # Each problem row once: its problems in words, then its cells as uploaded.
    assert rows[1:] == [
        [
            "4",
            "5",
            "email: is not an email address",
            "C004",
            "not-an-email",
            "DE",
            "24",
            "basic",
            "denied",
            "2024-03-01",
        ],
        [
            "7",
            "8",
            "country: is not a country: use a two-letter ISO 3166 code (e.g. DE, FR, "
            "US) or the English name",
            "C007",
            "person7@example.com",
            "Germania",
            "27",
            "basic",
            "granted",
            "2024-03-01",
        ],
        [
            "11",
            "12",
            "consent_email_marketing: is not a consent status (granted, denied or withdrawn)",
            "C011",
            "person11@example.com",
            "DE",
            "31",
            "basic",
            "maybe",
            "2024-03-01",
        ],
    ]
    assert [e["row"] for e in job.result["errors"]] == [4, 7, 11]


def test_it_replaces_the_error_file_of_an_earlier_import_of_the_upload(
    marketer, django_capture_on_commit_callbacks
):
    upload = upload_create(
        kind="customers", by=marketer, file=csv_file(customers_csv(10, bad={4: {"email": "nope"}}))
    )
    failed = run_import(django_capture_on_commit_callbacks, upload, by=marketer)
    assert failed.status == Job.Status.FAILED
    earlier = Path(upload.error_file.path)

    run_import(django_capture_on_commit_callbacks, upload, by=marketer, mode=VALID_ROWS)

    upload.refresh_from_db()
    assert [p.name for p in earlier.parent.iterdir()] == [Path(upload.error_file.name).name]


def test_it_leaves_the_same_rows_when_the_same_file_is_imported_twice(
    marketer, existing, django_capture_on_commit_callbacks
):
    first = import_text(django_capture_on_commit_callbacks, customers_csv(25), by=marketer)
    after_first = stored()
    second = import_text(django_capture_on_commit_callbacks, customers_csv(25), by=marketer)
    assert (first.status, second.status) == (Job.Status.SUCCEEDED, Job.Status.SUCCEEDED)
    assert stored() == after_first
    assert (second.result["created"], second.result["updated"]) == (0, 25)
    assert second.result["consents_added"] == 0
    assert Customer.objects.count() == 25
    assert ConsentRecord.objects.count() == 26  # 25 from the file + the earlier withdrawal


def test_it_keeps_stored_values_that_the_file_leaves_blank(
    marketer, existing, django_capture_on_commit_callbacks
):
    text = "customer_id,email,phone,age\nC001,,,51\n"
    job = import_text(django_capture_on_commit_callbacks, text, by=marketer)
    assert job.status == Job.Status.SUCCEEDED, job.message
    customer = Customer.objects.get(external_id="C001")
    assert customer.attributes == {"age": 51, "vip": True}
    assert (customer.identity.email, customer.identity.phone) == ("old@example.com", "+49 1")


def test_it_appends_a_consent_record_only_when_the_state_changes(
    marketer, django_capture_on_commit_callbacks
):
    # A withdrawal an earlier import recorded (one from the person or a steward would stand:
    # see test_ingest_consent_guard).
    record_consent(
        make_customer("C001"),
        "email_marketing",
        "withdrawn",
        days_ago=3,
        source=ConsentRecord.Source.CSV_IMPORT,
    )
    capture = django_capture_on_commit_callbacks
    granted = "customer_id,consent_email_marketing\nC001,yes\n"
    assert import_text(capture, granted, by=marketer).result["consents_added"] == 1
    assert customers_with_consent("email_marketing").filter(external_id="C001").exists()
    # The same undated statement again: the current record already says so.
    assert import_text(capture, granted, by=marketer).result["consents_added"] == 0
    withdrawn = "customer_id,consent_email_marketing\nC001,withdrawn\n"
    assert import_text(capture, withdrawn, by=marketer).result["consents_added"] == 1
    assert not customers_with_consent("email_marketing").filter(external_id="C001").exists()
    statuses = list(
        ConsentRecord.objects.filter(purpose="email_marketing")
        .order_by("effective_at", "id")
        .values_list("status", flat=True)
    )
    assert statuses == ["withdrawn", "granted", "withdrawn"]


def test_it_records_consent_dates_expiry_and_notice_version(
    marketer, django_capture_on_commit_callbacks
):
    text = (
        "customer_id,model_training_consent,consent_date,consent_expires,notice_version\n"
        "C1,granted,2024-01-10,2025-01-10,v3\n"
    )
    job = import_text(django_capture_on_commit_callbacks, text, by=marketer)
    record = ConsentRecord.objects.get()
    assert (record.purpose, record.notice_version, record.recorded_by) == (
        "model_training",
        "v3",
        marketer,
    )
    assert record.expires_at == datetime(2025, 1, 10, tzinfo=UTC)
    assert job.result["consents_added"] == 1
    # Expired by now: the selector does not count it.
    assert not customers_with_consent("model_training").exists()


def test_it_refuses_consent_dates_in_the_future(marketer, django_capture_on_commit_callbacks):
    text = "customer_id,consent_profiling,consent_date\nC1,granted,2999-01-01\n"
    job = import_text(django_capture_on_commit_callbacks, text, by=marketer)
    assert "Row 1 (line 2), column 'consent_date': '2999-01-01' is in the future" in job.message


def test_it_rolls_back_everything_when_writing_fails_midway(
    marketer, existing, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(ingest, "CHUNK_ROWS", 10)
    original = Writer.write
    written = []

    def fail_after_first_chunk(self, prepared):
        if written:
            raise RuntimeError("disk full")
        original(self, prepared)
        written.append(prepared.rows)

    monkeypatch.setattr(Writer, "write", fail_after_first_chunk)
    job = import_text(django_capture_on_commit_callbacks, customers_csv(30), by=marketer)
    assert written == [10]  # the first chunk (with C001) was written, then the failure
    assert job.status == Job.Status.FAILED and "unexpected error (RuntimeError)" in job.message
    assert stored() == existing
    assert Upload.objects.get(job=job).status == Upload.Status.FAILED


def test_it_stores_text_with_tabs_backslashes_quotes_and_line_breaks_as_written(
    marketer, django_capture_on_commit_callbacks
):
    # One awkward value per row: each must survive on its own.
    rows = [
        ["C\\N", "Ann", "Smith \\ Jones", "Rome"],
        ["C2", "Ann\tMarie", "Smith", 'Città "eterna" \\ 😀'],
        ["C3", "Ann", 'O"Brien', "Line 1\nLine 2"],
        ["C4", "Ann", "Smith", "Rome\r"],
    ]
    buffer = io.StringIO()
    csv.writer(buffer).writerows(
        [["customer_id", "first_name", "last_name", "city", "consent_profiling"]]
        + [[*row, "granted"] for row in rows]
        + [["C5", "", "", "", ""]]  # nothing to store but the customer
    )
    job = import_text(django_capture_on_commit_callbacks, buffer.getvalue(), by=marketer)
    assert job.status == Job.Status.SUCCEEDED, job.message
    for external_id, first_name, last_name, city in rows:
        customer = Customer.objects.get(external_id=external_id)
        assert (customer.identity.first_name, customer.identity.last_name) == (
            first_name,
            last_name.strip(),
        )
        assert customer.attributes == {"city": city.strip()}
        assert customer.consents.get().status == "granted"
    plain = Customer.objects.get(external_id="C5")
    assert plain.attributes == {}
    assert not CustomerIdentity.objects.filter(customer=plain).exists()
    assert not plain.consents.exists()


def test_it_pauses_the_garbage_collector_only_while_importing(
    marketer, django_capture_on_commit_callbacks, monkeypatch
):
    original = Writer.write
    collecting_while_writing = []

    def write(self, prepared):
        collecting_while_writing.append(gc.isenabled())
        original(self, prepared)

    monkeypatch.setattr(Writer, "write", write)
    job = import_text(django_capture_on_commit_callbacks, customers_csv(5), by=marketer)
    assert job.status == Job.Status.SUCCEEDED, job.message
    assert collecting_while_writing == [False]
    assert gc.isenabled()
    text = customers_csv(5, bad={2: {"age": "abc"}})
    job = import_text(django_capture_on_commit_callbacks, text, by=marketer)
    assert job.status == Job.Status.FAILED
    assert gc.isenabled()


def test_it_lets_an_existing_profile_field_type_win(marketer, django_capture_on_commit_callbacks):
    ProfileField.objects.create(name="age", data_type=ProfileField.DataType.TEXT)
    text = customers_csv(30, bad={17: {"age": "about 30"}})
    job = import_text(django_capture_on_commit_callbacks, text, by=marketer)
    assert job.status == Job.Status.SUCCEEDED, job.message
    assert Customer.objects.get(external_id="C017").attributes["age"] == "about 30"
    assert Customer.objects.get(external_id="C018").attributes["age"] == "38"


def test_it_treats_placeholders_as_blank_in_number_columns(
    marketer, django_capture_on_commit_callbacks
):
    text = customers_csv(30, bad={5: {"age": "N/A"}})
    job = import_text(django_capture_on_commit_callbacks, text, by=marketer)
    assert job.status == Job.Status.SUCCEEDED, job.message
    assert "age" not in Customer.objects.get(external_id="C005").attributes


def test_it_previews_without_writing(marketer, existing, django_capture_on_commit_callbacks):
    upload = upload_create(
        kind="customers", file=csv_file(customers_csv(30, bad={17: {"age": "abc"}})), by=marketer
    )
    preview = upload_preview(upload=upload, sample_size=2)
    assert stored() == existing
    assert (preview["rows"], preview["valid"], preview["invalid"]) == (30, 29, 1)
    assert (preview["new"], preview["updates"]) == (28, 1)
    assert preview["errors"][0]["message"] == (
        "Row 17 (line 18), column 'age': 'abc' is not a number"
    )
    assert preview["sample"][0]["external_id"] == "C001"
    assert preview["sample"][0]["attr:age"] == "21"
    assert len(preview["sample"]) == 2


def test_it_runs_the_import_as_a_job_with_progress_and_audit(
    marketer, django_capture_on_commit_callbacks
):
    upload = upload_create(kind="customers", file=csv_file(customers_csv(5)), by=marketer)
    job = run_import(django_capture_on_commit_callbacks, upload, by=marketer)
    assert (job.kind, job.status, job.progress, job.created_by) == (
        Job.Kind.IMPORT,
        Job.Status.SUCCEEDED,
        100,
        marketer,
    )
    assert upload.status == Upload.Status.IMPORTED and upload.job == job
    event = AuditEvent.objects.get(action=AuditEvent.Action.IMPORT)
    assert event.details["created"] == 5 and event.actor == marketer
    with pytest.raises(IngestError, match="already imported"):
        upload_import(upload=upload, by=marketer)


def test_it_checks_the_mapping(marketer):
    upload = upload_create(kind="customers", file=csv_file(customers_csv(3)), by=marketer)
    bad = {
        "external_id": "customer_id",
        "email": "nope",
        "phone": "customer_id",
        "attr:Bad Name": "age",
        "colour": "plan",
    }
    with pytest.raises(IngestError) as caught:
        upload_set_mapping(upload=upload, mapping=bad, mode=ALL_OR_NOTHING, by=marketer)
    message = str(caught.value)
    assert "the file has no column named 'nope'" in message
    assert "column 'customer_id' is mapped twice (external_id and phone)" in message
    assert "'Bad Name' cannot be a profile attribute name" in message
    assert "'colour' is not a field of a customers upload" in message
    with pytest.raises(IngestError, match="not an import mode"):
        upload_set_mapping(upload=upload, mapping=upload.mapping, mode="some", by=marketer)


def test_it_imports_only_the_mapped_columns(marketer, django_capture_on_commit_callbacks):
    upload = upload_create(kind="customers", file=csv_file(customers_csv(3)), by=marketer)
    mapping = {"external_id": "customer_id", "attr:years": "age"}
    upload_set_mapping(upload=upload, mapping=mapping, mode=ALL_OR_NOTHING, by=marketer)
    job = run_import(django_capture_on_commit_callbacks, upload, by=marketer)
    assert job.status == Job.Status.SUCCEEDED, job.message
    assert Customer.objects.get(external_id="C002").attributes == {"years": 22}
    assert not CustomerIdentity.objects.exists() and not ConsentRecord.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_the_command_imports_a_file(marketer, tmp_path, capsys):
    path = tmp_path / "customers.csv"
    path.write_text(customers_csv(4, bad={2: {"email": "x"}}))
    call_command(
        "import_csv", "customers", str(path), "--mode", "valid_rows", "--user", marketer.username
    )
    out = capsys.readouterr().out
    assert "Imported 3 of 4 rows: 3 new, 0 updated." in out
    assert "Rows with problems: 1" in out
    assert Customer.objects.count() == 3


def test_it_writes_nothing_when_the_job_is_cancelled_midway(
    marketer, existing, django_capture_on_commit_callbacks, monkeypatch
):
    monkeypatch.setattr(ingest, "CHUNK_ROWS", 10)
    original = Writer.write

    def cancel_after_first_chunk(self, prepared):
        original(self, prepared)
        job_cancel(job=Job.objects.get(kind=Job.Kind.IMPORT), by=marketer)

    monkeypatch.setattr(Writer, "write", cancel_after_first_chunk)
    job = import_text(django_capture_on_commit_callbacks, customers_csv(30), by=marketer)
    assert job.status == Job.Status.CANCELLED
    assert stored() == existing
    assert Upload.objects.get(job=job).summary["error"] == "Cancelled"


def test_it_refuses_a_stored_file_with_a_nul_byte_and_writes_nothing(
    marketer, existing, django_capture_on_commit_callbacks, monkeypatch
):
    # A file accepted before NUL bytes were refused at upload: the import must not write half.
    monkeypatch.setattr(ingest, "CHUNK_ROWS", 10)
    upload = upload_create(kind="customers", file=csv_file(customers_csv(30)), by=marketer)
    with_nul = customers_csv(30, bad={25: {"plan": "go\x00ld"}})
    with upload.file.open("wb") as stored_file:
        stored_file.write(with_nul.encode())

    job = run_import(django_capture_on_commit_callbacks, upload, by=marketer, mode=VALID_ROWS)

    assert job.status == Job.Status.FAILED
    assert "Row 25 (line 26), column 'plan'" in job.message and "NUL" in job.message
    assert stored() == existing


RAW_EMAIL = "jane.doe(at)example.com"


def job_and_upload_text(job: Job) -> str:
    """Everything an import stores as text about itself, as one string."""
    job.refresh_from_db()
    upload = Upload.objects.get(job=job)
    return json.dumps([job.message, job.error, job.result, upload.summary])


def test_it_keeps_refused_identifiers_out_of_the_job_and_upload_when_nothing_is_imported(
    marketer, django_capture_on_commit_callbacks
):
    text = customers_csv(12, bad={5: {"email": RAW_EMAIL}})
    job = import_text(django_capture_on_commit_callbacks, text, by=marketer)
    assert job.status == Job.Status.FAILED
    assert "Row 5 (line 6), column 'email': 'j***@***' is not an email address" in job.message
    assert RAW_EMAIL not in job_and_upload_text(job)
    [problem] = Upload.objects.get(job=job).summary["errors"]
    assert problem == {
        "row": 5,
        "line": 6,
        "column": "email",
        "value": "j***@***",
        "masked": True,
        "reason": "is not an email address",
        "message": "Row 5 (line 6), column 'email': 'j***@***' is not an email address",
    }


def test_it_keeps_refused_identifiers_out_of_the_job_and_upload_of_the_valid_rows(
    marketer, django_capture_on_commit_callbacks
):
    text = customers_csv(30, bad={5: {"email": RAW_EMAIL}, 6: {"age": "abc"}})
    job = import_text(django_capture_on_commit_callbacks, text, by=marketer, mode=VALID_ROWS)
    assert job.status == Job.Status.SUCCEEDED
    assert RAW_EMAIL not in job_and_upload_text(job)
    email, age = job.result["errors"]
    assert (email["value"], email["masked"]) == ("j***@***", True)
    assert (age["value"], age["masked"]) == ("abc", False)  # not an identifier: as written
    # The error file keeps the whole value, for those who may see it (masked on download).
    assert RAW_EMAIL in Upload.objects.get(job=job).error_file.read().decode("utf-8-sig")


def test_it_words_an_unexpected_failure_without_quoting_it(
    marketer, django_capture_on_commit_callbacks, monkeypatch, caplog
):
    def fails(self, prepared):
        raise RuntimeError(f"value too long: {RAW_EMAIL}")

    monkeypatch.setattr(Writer, "write", fails)
    job = import_text(django_capture_on_commit_callbacks, customers_csv(5), by=marketer)
    assert job.status == Job.Status.FAILED
    assert "unexpected error (RuntimeError)" in job.message
    assert RAW_EMAIL not in job_and_upload_text(job)
    assert Upload.objects.get(job=job).summary["error"] == job.message
    # The log says where it failed and with what, never the value (a log cannot be erased).
    assert "builtins.RuntimeError" in caplog.text and "in fails" in caplog.text
    assert RAW_EMAIL not in caplog.text


def test_an_error_file_fixed_and_uploaded_again_imports_its_rows(
    marketer, django_capture_on_commit_callbacks
):
    text = customers_csv(
        30, bad={4: {"email": "not-an-email"}, 9: {"age": "forty", "country": "Germania"}}
    )
    first = upload_create(kind="customers", file=csv_file(text), by=marketer)
    # The dry run already leaves the rows to correct.
    preview = upload_preview(upload=first)
    first.refresh_from_db()
    assert preview["invalid"] == 2 and first.error_file
    job = run_import(django_capture_on_commit_callbacks, first, by=marketer, mode=VALID_ROWS)
    assert job.status == Job.Status.SUCCEEDED and Customer.objects.count() == 28

    first.refresh_from_db()
    rows = list(csv.reader(io.StringIO(first.error_file.read().decode("utf-8-sig"))))
    assert [row[:3] for row in rows[1:]] == [
        ["4", "5", "email: is not an email address"],
        [
            "9",
            "10",
            "age: is not a number; country: is not a country: use a two-letter ISO "
            "3166 code (e.g. DE, FR, US) or the English name",
        ],
    ]
    header = rows[0]
    fixed = [dict(zip(header, row, strict=True)) for row in rows[1:]]
    fixed[0]["email"] = "person4@example.com"
    fixed[1].update(age="40", country="DE")
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=header)
    writer.writeheader()
    writer.writerows(fixed)

    again = upload_create(kind="customers", file=csv_file(out.getvalue()), by=marketer)
    # The error file's own columns are not taken for profile attributes.
    assert {"problem_row", "problem_line", "problems"}.isdisjoint(again.mapping.values())
    job = run_import(django_capture_on_commit_callbacks, again, by=marketer)
    assert job.status == Job.Status.SUCCEEDED, job.message
    assert Customer.objects.count() == 30
    nine = Customer.objects.get(external_id="C009")
    assert nine.attributes["age"] == 40 and nine.identity.country == "DE"
    assert Customer.objects.get(external_id="C004").identity.email == "person4@example.com"
