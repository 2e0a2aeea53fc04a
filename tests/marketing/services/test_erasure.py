"""Erasure removes the person from the database and from the files the product keeps."""

import csv
import io
from pathlib import Path

import pytest

from marketing.models import AuditEvent, Customer, Interaction, Upload
from marketing.services.erasure import customer_erase
from marketing.services.exports import ExportFileMissing, export_file
from tests.marketing.services.audience_helpers import exported, frozen_audience, make_people
from tests.marketing.services.ingest_helpers import customers_csv, import_text


def rows_of(path: Path, encoding: str = "utf-8-sig") -> list[list[str]]:
    return list(csv.reader(io.StringIO(path.read_text(encoding=encoding))))


def test_it_blanks_the_customers_rows_in_stored_uploads_and_keeps_the_others_numbered(
    marketer, steward, django_capture_on_commit_callbacks
):
    import_text(django_capture_on_commit_callbacks, customers_csv(20), by=marketer)
    text = customers_csv(20, bad={15: {"email": "not-an-email"}, 7: {"email": "nope"}})
    job = import_text(django_capture_on_commit_callbacks, text, by=marketer,
                      mode=Upload.Mode.VALID_ROWS)
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
    import_text(django_capture_on_commit_callbacks,
                "offer_id,title\nO1,Term deposit\n", by=marketer, kind="offers")
    job = import_text(
        django_capture_on_commit_callbacks,
        "customer_id,offer_id,kind,occurred_at\nC002,O1,click,2024-05-01\n"
        "C003,O1,click,2024-05-01\nC002,O1,conversion,2024-05-02\n",
        by=marketer, kind="interactions",
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
