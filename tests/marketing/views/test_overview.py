import re
from functools import partial

import pytest
from django.urls import reverse

from marketing.ingest.demo import load_demo_data
from marketing.models import AuditEvent, ConsentRecord, Customer, Job, ProfileField, Purpose
from marketing.selectors.consent import has_consent
from marketing.services import demo
from tests.factories import make_customer, record_consent
from tests.marketing.figures_helpers import counted_overview

pytestmark = pytest.mark.django_db


def test_it_invites_to_upload_when_there_are_no_customers(marketer_client):
    response = marketer_client.get(reverse("overview"))
    assert b"No customers yet" in response.content
    assert reverse("upload-create").encode() in response.content


def test_it_counts_valid_consent_per_purpose_and_hides_small_groups(marketer_client, settings):
    settings.MIN_GROUP_SIZE = 3
    people = [make_customer(job="admin") for _ in range(5)]
    for person in people[:4]:
        record_consent(person, Purpose.EMAIL_MARKETING)
    record_consent(people[3], Purpose.EMAIL_MARKETING, ConsentRecord.Status.WITHDRAWN, days_ago=1)
    record_consent(people[0], Purpose.PROFILING)
    counted_overview()

    response = marketer_client.get(reverse("overview"))

    rows = {row["purpose"]: row for row in response.context["consent_rows"]}
    assert rows["email_marketing"]["display"] == "3"
    assert rows["profiling"]["display"] == "fewer than 3"
    chart = response.context["consent_chart"]
    assert chart["data"][0]["type"] == "bar"
    assert b"vendor/plotly/plotly.min.js" in response.content
    assert b"cdn" not in response.content.lower()


def test_it_groups_customers_by_a_chosen_attribute_folding_small_groups(marketer_client, settings):
    settings.MIN_GROUP_SIZE = 2
    ProfileField.objects.create(name="job", data_type="text")
    ProfileField.objects.create(name="marital", data_type="text")
    for job in ["admin", "admin", "admin", "student", "student", "retired"]:
        make_customer(job=job, marital="single")
    counted_overview()

    response = marketer_client.get(reverse("overview"), {"by": "job"})

    bars = response.context["breakdown_chart"]["data"][0]
    # Shown to the nearest 2 (k): 3 admins show as 4.
    assert dict(zip(bars["y"], bars["x"], strict=True)) == {"admin": 4, "student": 2}
    assert response.context["breakdown_field"].name == "job"


def test_it_lists_recent_jobs_with_a_live_progress_bar(marketer_client, marketer):
    job = Job.objects.create(
        kind=Job.Kind.IMPORT,
        title="Import people.csv",
        status=Job.Status.RUNNING,
        progress=40,
        message="Row 4,000 of 10,000",
        created_by=marketer,
    )
    content = marketer_client.get(reverse("overview")).content.decode()
    assert f'data-job-id="{job.pk}"' in content
    assert 'data-status="running"' in content
    assert "width: 40%" in content
    assert "Row 4,000 of 10,000" in content


def test_it_offers_to_count_a_base_never_counted_and_shows_the_count_job(marketer_client):
    make_customer(job="admin")

    before = marketer_client.get(reverse("overview")).content.decode()
    response = marketer_client.post(reverse("overview-refresh"))
    during = marketer_client.get(reverse("overview")).content.decode()

    job = Job.objects.get(kind=Job.Kind.OVERVIEW)
    assert "has not been counted yet" in before and "Count now" in before
    assert reverse("overview-refresh") in before and "No customers yet" not in before
    assert response.status_code == 302 and job.status == Job.Status.QUEUED
    assert f'data-job-id="{job.pk}"' in during and "Count now" not in during


def test_it_refuses_the_refresh_to_a_viewer(viewer_client):
    assert viewer_client.post(reverse("overview-refresh")).status_code == 403
    assert not Job.objects.exists()


def test_the_overview_reads_no_more_with_300_customers_than_with_10(marketer_client):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    ProfileField.objects.create(name="job", data_type="text")

    def queries(n: int) -> list[str]:
        for i in range(n):
            record_consent(make_customer(job=f"j{i % 3}"), Purpose.EMAIL_MARKETING)
        counted_overview()
        with CaptureQueriesContext(connection) as captured:
            assert marketer_client.get(reverse("overview")).status_code == 200
        return [q["sql"] for q in captured.captured_queries]

    small, large = queries(10), queries(300)

    assert len(small) == len(large)
    touching = [sql for sql in large if "marketing_customer" in sql or "consentrecord" in sql]
    assert all(re.search(r"\bLIMIT \d+\s*$", sql, re.IGNORECASE) for sql in touching), touching


def test_the_count_job_finds_what_a_plain_count_finds(settings):
    from marketing.models import OverviewFigures

    settings.MIN_GROUP_SIZE = 1
    people = [make_customer(job="admin" if i % 2 else "student") for i in range(7)]
    for person in people[:5]:
        record_consent(person, Purpose.EMAIL_MARKETING)
    record_consent(people[4], Purpose.EMAIL_MARKETING, ConsentRecord.Status.WITHDRAWN, days_ago=1)
    ProfileField.objects.create(name="job", data_type="text")

    counted_overview()

    figures = OverviewFigures.objects.get().figures
    assert figures["customers"] == Customer.objects.count() == 7
    plain = sum(has_consent(c, Purpose.EMAIL_MARKETING) for c in Customer.objects.all())
    assert figures["consent"]["email_marketing"] == plain == 4
    assert figures["breakdowns"]["job"] == {
        "groups": [["admin", 3], ["student", 4]][::-1],
        "rest": 0,
    }


@pytest.fixture
def small_demo(monkeypatch):
    """The real demo loader on the first rows of the bundled file, to stay fast."""
    monkeypatch.setattr(demo, "load_demo_data", partial(load_demo_data, limit=40))


def test_it_loads_the_demo_data_into_an_empty_base(marketer_client, small_demo):
    response = marketer_client.post(reverse("overview-demo"))
    assert response["Location"] == reverse("overview")
    assert Customer.objects.count() == 40
    assert ConsentRecord.objects.exists()
    assert AuditEvent.objects.filter(target_type="demo").exists()


def test_it_does_not_load_the_demo_data_over_real_customers(marketer_client, small_demo):
    make_customer("REAL-1")
    marketer_client.post(reverse("overview-demo"))
    assert list(Customer.objects.values_list("external_id", flat=True)) == ["REAL-1"]


def test_it_refuses_the_demo_data_to_a_viewer(viewer_client, small_demo):
    assert viewer_client.post(reverse("overview-demo")).status_code == 403
    assert not Customer.objects.exists()
