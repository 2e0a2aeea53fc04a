"""The counting jobs: what they store matches a plain count, one customer at a time."""

import pytest

from marketing.exporters.countries import GOOGLE_CONSENT_COUNTRIES
from marketing.exporters.formats import FORMATS
from marketing.models import (
    AudienceFigures,
    ConsentRecord,
    Customer,
    Job,
    Purpose,
    SegmentFigures,
    Suppression,
)
from marketing.selectors.consent import current_consents, has_consent
from marketing.selectors.figures import audience_figures
from marketing.services.audiences import audience_create, audience_freeze_start
from marketing.services.figures import IMPORT_WAITING
from marketing.services.jobs import run_job
from tests.marketing.figures_helpers import counted_audience, counted_segment
from tests.marketing.services.audience_helpers import GOOGLE_PURPOSES, everyone_segment, make_people

pytestmark = pytest.mark.django_db


@pytest.fixture
def mixed_base(settings):
    """Every reason to be left out at least once, in groups of different sizes."""
    settings.MIN_GROUP_SIZE = 1  # counts shown exactly, to compare them
    make_people(9)
    make_people(3, withdrawn=True)
    make_people(2, expired=True)
    make_people(4, status=ConsentRecord.Status.DENIED)
    make_people(5, purposes=())
    make_people(2, suppressed=True)
    make_people(3, country="DE")
    make_people(6, country="FR", purposes=GOOGLE_PURPOSES)
    make_people(2, identity=False)


def plain_left_out(customer: Customer, *, google: bool) -> str | None:
    """Why the export gate refuses ``customer``, decided one customer at a time."""
    if not has_consent(customer, Purpose.AD_TARGETING):
        record = current_consents(customer).get(Purpose.AD_TARGETING)
        if record is None:
            return "no_record"
        return {"denied": "denied", "withdrawn": "withdrawn"}.get(record.status, "expired")
    if Suppression.objects.filter(customer=customer).exists():
        return "suppressed"
    identity = getattr(customer, "identity", None)
    country = (identity.country if identity else "").upper()
    outside = country != "" and country not in GOOGLE_CONSENT_COUNTRIES
    both = has_consent(customer, Purpose.AD_USER_DATA) and has_consent(
        customer, Purpose.AD_PERSONALIZATION
    )
    if google and not (outside or both):
        return "google_consent"
    return None


@pytest.mark.parametrize("key", ["google_customer_match", "tiktok_customer_file"])
def test_the_audience_count_job_finds_what_a_plain_count_finds(mixed_base, key):
    audience = audience_create(name="All", segment=everyone_segment(), by=None)

    job = counted_audience(audience)

    google = FORMATS[key].needs_google_consents
    reasons = [plain_left_out(c, google=google) for c in Customer.objects.all()]
    expected = {reason: reasons.count(reason) for reason in set(reasons) - {None}}
    row = next(f for f in audience_figures(audience)["preview"]["formats"] if f["format"] == key)
    assert {reason: n for reason, n in row["left_out"].items() if n} == expected
    assert row["exportable"] == reasons.count(None)
    assert AudienceFigures.objects.get(audience=audience).job == job
    assert job.progress == 100


def test_the_audience_counts_are_a_few_set_based_queries_whatever_the_size(mixed_base):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from marketing.selectors.audiences import audience_readiness

    def queries(n: int) -> int:
        make_people(n)
        with CaptureQueriesContext(connection) as captured:
            audience_readiness(members=Customer.objects.all(), formats=["generic_csv"])
        return len(captured.captured_queries)

    assert queries(5) == queries(200)


def test_the_freeze_job_writes_the_members_and_their_figures(mixed_base):
    audience = audience_create(name="Frozen later", segment=everyone_segment(), by=None)

    job = audience_freeze_start(audience=audience, by=None)
    finished = run_job(job.pk)

    audience.refresh_from_db()
    assert finished is not None and finished.status == Job.Status.SUCCEEDED
    assert finished.result == {"audience": audience.pk, "size": 36}
    assert audience.is_frozen and audience.members.count() == 36 == audience.size
    snapshot = audience.consent_snapshot
    assert snapshot["left_out"] == {
        "no_record": 5,
        "denied": 4,
        "withdrawn": 3,
        "expired": 2,
        "suppressed": 2,
    }
    assert snapshot["may_be_exported"] == 36 - 16
    figures = audience_figures(audience)
    assert figures["preview"]["size"] == 36 and figures["computed_at"] is not None


def test_a_freeze_job_for_an_audience_frozen_meanwhile_fails_with_the_reason(mixed_base):
    from marketing.services.audiences import audience_freeze

    audience = audience_create(name="Twice", segment=everyone_segment(), by=None)
    job = audience_freeze_start(audience=audience, by=None)
    audience_freeze(audience=audience, by=None)

    finished = run_job(job.pk)

    assert finished is not None and finished.status == Job.Status.FAILED
    assert "frozen already" in finished.message
    assert audience.members.count() == 36  # not written twice


def test_the_segment_count_job_stores_the_count_reach_and_rules(mixed_base):
    segment = everyone_segment()

    counted_segment(segment)

    row = SegmentFigures.objects.get(segment=segment)
    assert row.rules == segment.rules
    assert row.figures["count"] == Customer.objects.count() == 36
    plain = sum(has_consent(c, Purpose.AD_TARGETING) for c in Customer.objects.all())
    assert row.figures["reach"]["ad_targeting"] == plain


def test_an_import_has_the_overview_and_every_segment_counted_again(
    marketer, django_capture_on_commit_callbacks
):
    from marketing.models import OverviewFigures
    from tests.marketing.services.ingest_helpers import customers_csv, import_text

    segment = everyone_segment()

    job = import_text(django_capture_on_commit_callbacks, customers_csv(4), by=marketer)

    assert job.status == Job.Status.SUCCEEDED
    counts = Job.objects.filter(kind__in=[Job.Kind.OVERVIEW, Job.Kind.SEGMENT_COUNT])
    assert sorted(counts.values_list("kind", "status")) == [
        ("overview", "succeeded"),
        ("segment_count", "succeeded"),
    ]
    assert OverviewFigures.objects.get().figures["customers"] == 4
    assert SegmentFigures.objects.get(segment=segment).figures["count"] == 4


def test_a_batch_of_imports_is_counted_once_after_the_last(
    marketer, settings, django_capture_on_commit_callbacks
):
    """Counts that would be out of date at once are not made: while another import waits in
    the queue, the counts an import started finish without counting, and that import,
    whether it succeeds or fails, starts the counts again."""
    from marketing.models import OverviewFigures
    from marketing.services.ingest import upload_create, upload_import, upload_set_mapping
    from tests.marketing.services.ingest_helpers import csv_file, customers_csv

    settings.JOB_QUEUE = "thread"  # queued, not run: each job is run below by hand
    segment = everyone_segment()
    uploads = []
    for text in (customers_csv(4), "customer_id,email\nC009,not-an-email\n"):
        upload = upload_create(kind="customers", file=csv_file(text), by=marketer)
        upload_set_mapping(
            upload=upload, mapping=upload.mapping, mode="all_or_nothing", by=marketer
        )
        uploads.append(upload)
    with django_capture_on_commit_callbacks(execute=False):
        first, second = (upload_import(upload=u, by=marketer) for u in uploads)

    run_job(first.pk)
    counts = Job.objects.filter(kind__in=[Job.Kind.OVERVIEW, Job.Kind.SEGMENT_COUNT])
    for job in counts:
        run_job(job.pk)
    assert set(counts.values_list("status", flat=True)) == {Job.Status.SUCCEEDED}
    assert list(counts.values_list("result", flat=True)) == [{"skipped": IMPORT_WAITING}] * 2
    assert OverviewFigures.objects.get().figures == {}

    assert run_job(second.pk).status == Job.Status.FAILED
    after = counts.exclude(result={"skipped": IMPORT_WAITING})
    assert after.count() == 2
    for job in after:
        run_job(job.pk)
    assert OverviewFigures.objects.get().figures["customers"] == 4
    assert SegmentFigures.objects.get(segment=segment).figures["count"] == 4
