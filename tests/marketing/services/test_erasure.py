"""Erasure removes the person from the database and from the files the product keeps."""

import csv
import io
import json
from pathlib import Path

import pytest

from marketing.models import (
    AuditEvent,
    Customer,
    Interaction,
    Job,
    ProfileField,
    Segment,
    Upload,
)
from marketing.pseudonyms import erasure_token, pseudonym_for
from marketing.services.audit import audit_log
from marketing.services.erasure import customer_erase
from marketing.services.exports import ExportFileMissing, export_file
from marketing.services.ingest import upload_create
from tests.factories import make_customer
from tests.marketing.services.audience_helpers import exported, frozen_audience, make_people
from tests.marketing.services.ingest_helpers import (
    csv_file,
    customers_csv,
    import_text,
    run_import,
)


def rows_of(path: Path, encoding: str = "utf-8-sig") -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding=encoding))))


def test_it_blanks_the_customers_rows_in_stored_uploads_and_keeps_the_others_numbered(
    marketer, steward, django_capture_on_commit_callbacks
):
    import_text(django_capture_on_commit_callbacks, customers_csv(20), by=marketer)
    text = customers_csv(20, bad={15: {"email": "not-an-email"}, 7: {"email": "nope"}})
    job = import_text(
        django_capture_on_commit_callbacks, text, by=marketer, mode=Upload.Mode.VALID_ROWS
    )
    assert job.status == "succeeded"
    first, second = Upload.objects.order_by("pk")
    before = rows_of(Path(second.file.path))
    assert [r[0] for r in rows_of(Path(second.error_file.path))[1:]] == ["7", "15"]

    counts = customer_erase(customer=Customer.objects.get(external_id="C015"), by=steward)

    assert counts["upload_rows"] == 2
    for upload in (first, second):
        assert "C015" not in Path(upload.file.path).read_text()
    after = rows_of(Path(second.file.path))
    assert after[15] == [] and before[15][0] == "C015"
    assert [r for i, r in enumerate(after) if i != 15] == [
        r for i, r in enumerate(before) if i != 15
    ]
    assert [r[0] for r in rows_of(Path(second.error_file.path))[1:]] == ["7"]


def test_it_blanks_the_customers_responses_in_interaction_uploads(
    marketer, steward, django_capture_on_commit_callbacks
):
    import_text(django_capture_on_commit_callbacks, customers_csv(5), by=marketer)
    import_text(
        django_capture_on_commit_callbacks,
        "offer_id,title\nO1,Term deposit\n",
        by=marketer,
        kind="offers",
    )
    job = import_text(
        django_capture_on_commit_callbacks,
        "customer_id,offer_id,kind,occurred_at\nC002,O1,click,2024-05-01\n"
        "C003,O1,click,2024-05-01\nC002,O1,conversion,2024-05-02\n",
        by=marketer,
        kind="interactions",
    )
    assert job.status == "succeeded", job.error
    assert Interaction.objects.count() == 3

    counts = customer_erase(customer=Customer.objects.get(external_id="C002"), by=steward)

    stored = Path(Upload.objects.get(kind="interactions").file.path).read_text()
    assert "C002" not in stored and "C003" in stored
    assert counts["upload_rows"] == 1 + 2  # the customers file and both responses
    event = AuditEvent.objects.get(action=AuditEvent.Action.ERASURE)
    assert len(event.details["uploads_changed"]) == 2
    assert Interaction.objects.count() == 1


def test_it_leaves_uploads_without_the_customer_untouched(
    marketer, steward, django_capture_on_commit_callbacks
):
    import_text(django_capture_on_commit_callbacks, customers_csv(5), by=marketer)
    upload = Upload.objects.get()
    path = Path(upload.file.path)
    content, mtime = path.read_bytes(), path.stat().st_mtime_ns
    lone = Customer.objects.create(external_id="X-ONLY-IN-DB", pseudonym="p" * 64)

    counts = customer_erase(customer=lone, by=steward)

    assert counts["upload_rows"] == 0
    assert path.read_bytes() == content and path.stat().st_mtime_ns == mtime


def test_it_deletes_the_export_files_that_held_the_customer_and_says_why(
    marketer, steward, django_capture_on_commit_callbacks
):
    people = make_people(12)
    audience = frozen_audience(marketer)
    export = exported(audience, "generic_csv", marketer)
    path = export_file(export)
    assert path.is_file()

    with django_capture_on_commit_callbacks(execute=True):
        counts = customer_erase(customer=people[0], by=steward)

    export.refresh_from_db()
    assert counts["export_files"] == 1 and not path.exists()
    assert export.checksum and export.row_count == 12  # the record of what was sent stays
    with pytest.raises(ExportFileMissing, match="erased"):
        export_file(export)
    event = AuditEvent.objects.get(action=AuditEvent.Action.ERASURE)
    assert event.details["export_files_removed"] == [export.pk]


def test_it_keeps_export_files_when_the_erasure_fails(
    marketer, steward, django_capture_on_commit_callbacks, monkeypatch
):
    people = make_people(12)
    export = exported(frozen_audience(marketer), "generic_csv", marketer)
    path = export_file(export)

    def broken(**kwargs):
        raise RuntimeError("registry unavailable")

    monkeypatch.setattr("marketing.services.erasure.training_runs_flag_erasure", broken)
    with django_capture_on_commit_callbacks(execute=True), pytest.raises(RuntimeError):
        customer_erase(customer=people[0], by=steward)

    export.refresh_from_db()
    assert path.is_file() and export.file_path
    assert Customer.objects.filter(pk=people[0].pk).exists()


def test_it_names_the_erased_person_by_a_token_the_pseudonym_key_cannot_recompute(
    marketer, steward
):
    people = make_people(12)
    audience = frozen_audience(marketer)
    person = people[0]
    # What someone with PSEUDONYM_KEY gets from a guessed external id.
    guessed = pseudonym_for(person.external_id)

    customer_erase(customer=person, by=steward)

    token = erasure_token(guessed)
    event = AuditEvent.objects.get(action=AuditEvent.Action.ERASURE)
    assert event.target_ref == token != guessed
    assert audience.members.filter(pseudonym=token).count() == 1
    assert not audience.members.filter(pseudonym=guessed).exists()
    assert not AuditEvent.objects.filter(target_ref=guessed).exists()
    assert erasure_token(guessed, key="another-suppression-key") != token


def test_it_replaces_the_persons_identifiers_in_jobs_and_audit_details(steward):
    person = make_customer(
        "CUST-4711", identity={"email": "ada@example.org", "phone": "+44 20 7946 0958"}
    )
    job = Job.objects.create(
        kind=Job.Kind.IMPORT,
        message="Row 3: 'CUST-4711' appears twice",
        error="Traceback: ADA@example.org",
        result={"notes": ["+44 20 7946 0958", "kept"]},
    )
    viewed = audit_log(
        actor=steward,
        action=AuditEvent.Action.PII_VIEW,
        target_type="customer",
        target_ref=person.pseudonym,
        details={"customers": [person.pseudonym]},
    )

    customer_erase(customer=person, by=steward)

    job.refresh_from_db()
    viewed.refresh_from_db()
    token = erasure_token(person.pseudonym)
    assert job.message == "Row 3: '[erased]' appears twice"
    assert job.error == "Traceback: [erased]"
    assert job.result == {"notes": ["[erased]", "kept"]}
    assert (viewed.target_ref, viewed.details) == (token, {"customers": [token]})


def test_it_keeps_only_sample_values_that_enough_others_share(steward, settings):
    settings.MIN_GROUP_SIZE = 3
    ProfileField.objects.create(
        name="plan", data_type="text", sample_values=["gold", "Zeppelin", "duo"]
    )
    ProfileField.objects.create(name="city", data_type="text", sample_values=["Berlin", "Ulm"])
    for _ in range(3):
        make_customer(plan="gold", city="Berlin")
    make_customer(plan="duo", city="Ulm")
    person = make_customer(plan="Zeppelin", city="Berlin")
    other = make_customer(plan="duo", city="Ulm")

    customer_erase(customer=person, by=steward)
    customer_erase(customer=other, by=steward)

    assert ProfileField.objects.get(name="plan").sample_values == ["gold"]
    assert ProfileField.objects.get(name="city").sample_values == ["Berlin"]


def test_it_drops_the_problems_of_the_blanked_rows_from_the_upload_and_its_jobs(
    marketer, steward, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    upload = upload_create(
        kind="customers",
        by=marketer,
        file=csv_file(customers_csv(20, bad={15: {"email": "ada-at-example"}})),
    )
    failed = run_import(capture, upload, by=marketer)
    imported = run_import(capture, upload, by=marketer, mode=Upload.Mode.VALID_ROWS)
    # The job names the refused row (its value masked); the error file holds it in full.
    assert "Row 15 (line 16)" in failed.message and imported.result["errors"]

    customer_erase(customer=Customer.objects.get(external_id="C014"), by=steward)
    upload.refresh_from_db()
    assert upload.summary["errors"][0]["row"] == 15  # another customer's row: untouched

    # C015 never became a customer (its row was refused); its rows go with the next erasure
    # of the same id, e.g. after a corrected file created it.
    make_customer("C015")
    customer_erase(customer=Customer.objects.get(external_id="C015"), by=steward)

    upload = Upload.objects.get(pk=upload.pk)
    assert upload.summary["errors"] == []
    for job in (failed, imported):
        job.refresh_from_db()
        assert "ada-at-example" not in job.message + job.error + json.dumps(job.result)
        assert job.result.get("errors", []) == []
    reasons = AuditEvent.objects.filter(target_type="upload", target_ref=str(upload.pk))
    assert "ada-at-example" not in json.dumps([e.details for e in reasons])


def test_it_leaves_other_customers_ids_and_the_marketers_own_words_alone(steward):
    person = make_customer("C015", plan="Zeppelin")
    job = Job.objects.create(
        kind=Job.Kind.IMPORT, message="C015 and C0150 were merged", result={"note": "Zeppelin"}
    )
    rules = {"op": "and", "rules": [{"field": "plan", "operator": "eq", "value": "Zeppelin"}]}
    segment = Segment.objects.create(name="Zeppelin fans", rules=rules)

    customer_erase(customer=person, by=steward)

    job.refresh_from_db()
    segment.refresh_from_db()
    assert job.message == "[erased] and C0150 were merged"
    assert job.result == {"note": "[erased]"}  # a copy of the person's rare value
    assert (segment.name, segment.rules) == ("Zeppelin fans", rules)


def test_it_erases_a_customer_named_in_a_message_that_fills_its_column(steward):
    customer = make_customer("Q123")
    job = Job.objects.create(kind=Job.Kind.IMPORT, message=("Q123 " * 51)[:255])

    customer_erase(customer=customer, by=steward)

    job.refresh_from_db()
    assert "Q123" not in job.message and "[erased]" in job.message
    assert len(job.message) == 255
