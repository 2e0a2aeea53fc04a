"""Retention: rows and files older than their configured period are purged, newer ones kept,
and every run leaves an audit event with what it purged."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.utils import timezone

from marketing.models import AuditEvent, Interaction, Job, Upload
from marketing.services.retention import retention_purge
from tests.factories import make_customer, make_offer
from tests.marketing.services.audience_helpers import exported, frozen_audience, make_people

pytestmark = pytest.mark.django_db

KEEP_ALL = {
    "interactions": 0,
    "uploads": 0,
    "upload_error_files": 0,
    "export_files": 0,
    "job_logs": 0,
}


@pytest.fixture
def periods(settings):
    settings.RETENTION_DAYS = dict(KEEP_ALL)
    return settings.RETENTION_DAYS


def days_ago(n: int):
    return timezone.now() - timedelta(days=n)


def interaction(customer, offer, *, age_days: int) -> Interaction:
    return Interaction.objects.create(
        customer=customer, offer=offer, kind="click", occurred_at=days_ago(age_days)
    )


def upload(marketer, *, age_days: int, error_file: bool = True) -> Upload:
    row = Upload.objects.create(
        kind=Upload.Kind.CUSTOMERS,
        original_name="c.csv",
        file=ContentFile(b"external_id\nC1\n", name="c.csv"),
        created_by=marketer,
    )
    if error_file:
        row.error_file.save("errors.csv", ContentFile(b"row,column,value,reason\n"))
    Upload.objects.filter(pk=row.pk).update(created_at=days_ago(age_days))
    row.refresh_from_db()
    return row


def finished_job(*, age_days: int, kind: str = Job.Kind.IMPORT) -> Job:
    return Job.objects.create(
        kind=kind,
        status=Job.Status.SUCCEEDED,
        error="",
        message="Imported C1, C2",
        finished_at=days_ago(age_days),
    )


def test_it_purges_old_interactions_and_keeps_new_ones(periods):
    periods["interactions"] = 30
    customer, offer = make_customer("C1"), make_offer("O1")
    interaction(customer, offer, age_days=31)
    new = interaction(customer, offer, age_days=29)

    counts = retention_purge()

    assert counts["interactions"] == 1
    assert list(Interaction.objects.values_list("pk", flat=True)) == [new.pk]


def test_it_deletes_old_uploads_with_their_files(
    periods, marketer, django_capture_on_commit_callbacks
):
    periods["uploads"] = 30
    old, new = upload(marketer, age_days=31), upload(marketer, age_days=1)
    old_files = [Path(old.file.path), Path(old.error_file.path)]

    with django_capture_on_commit_callbacks(execute=True):
        counts = retention_purge()

    assert counts["uploads"] == 1
    assert list(Upload.objects.values_list("pk", flat=True)) == [new.pk]
    assert not any(path.exists() for path in old_files)
    assert Path(new.file.path).exists() and Path(new.error_file.path).exists()


def test_it_deletes_old_error_files_but_keeps_the_upload(
    periods, marketer, django_capture_on_commit_callbacks
):
    periods["upload_error_files"] = 7
    old, new = upload(marketer, age_days=8), upload(marketer, age_days=6)
    old_errors = Path(old.error_file.path)

    with django_capture_on_commit_callbacks(execute=True):
        counts = retention_purge()

    old.refresh_from_db()
    assert counts["upload_error_files"] == 1
    assert not old.error_file and not old_errors.exists()
    assert Path(old.file.path).exists()
    assert Path(new.error_file.path).exists()


def test_it_deletes_old_export_files_but_keeps_the_record(
    periods, marketer, django_capture_on_commit_callbacks
):
    periods["export_files"] = 30
    make_people(3)
    audience = frozen_audience(marketer)
    old, new = (
        exported(audience, "generic_csv", marketer),
        exported(audience, "generic_json", marketer),
    )
    old_path = Path(settings.MEDIA_ROOT) / old.file_path
    type(old).objects.filter(pk=old.pk).update(created_at=days_ago(31))

    with django_capture_on_commit_callbacks(execute=True):
        counts = retention_purge()

    old.refresh_from_db()
    new.refresh_from_db()
    assert counts["export_files"] == 1
    assert old.file_path == "" and not old_path.exists()
    assert old.checksum and old.row_count == 3  # the record of who got what stays
    assert (Path(settings.MEDIA_ROOT) / new.file_path).exists()


def test_it_deletes_old_finished_jobs_that_nothing_refers_to(periods, marketer):
    periods["job_logs"] = 30
    old, new = finished_job(age_days=31), finished_job(age_days=29)
    running = Job.objects.create(kind=Job.Kind.IMPORT, status=Job.Status.RUNNING)
    Job.objects.filter(pk=running.pk).update(created_at=days_ago(90))
    make_people(3)
    export = exported(frozen_audience(marketer), "generic_csv", marketer)
    Job.objects.filter(pk=export.job_id).update(finished_at=days_ago(90))

    counts = retention_purge()

    assert counts["job_logs"] == 1
    remaining = set(Job.objects.values_list("pk", flat=True))
    assert old.pk not in remaining
    assert {new.pk, running.pk, export.job_id} <= remaining


def test_it_keeps_everything_when_every_period_is_zero(
    periods, marketer, django_capture_on_commit_callbacks
):
    customer, offer = make_customer("C1"), make_offer("O1")
    interaction(customer, offer, age_days=3650)
    upload(marketer, age_days=3650)
    finished_job(age_days=3650)

    with django_capture_on_commit_callbacks(execute=True):
        counts = retention_purge()

    assert counts == {}
    assert Interaction.objects.count() == Upload.objects.count() == Job.objects.count() == 1


def test_it_writes_an_audit_event_with_counts_per_kind(periods, marketer):
    periods.update(interactions=30, job_logs=30)
    customer, offer = make_customer("C1"), make_offer("O1")
    interaction(customer, offer, age_days=40)
    interaction(customer, offer, age_days=50)
    finished_job(age_days=40)

    retention_purge()

    event = AuditEvent.objects.get(action=AuditEvent.Action.RETENTION)
    assert event.actor is None
    assert event.details["purged"] == {"interactions": 2, "job_logs": 1}
    assert event.details["days"] == {"interactions": 30, "job_logs": 30}
