from functools import partial

import pytest
from django.urls import reverse

from marketing.ingest.demo import load_demo_data
from marketing.models import AuditEvent, ConsentRecord, Customer, Job, ProfileField, Purpose
from marketing.services import demo
from tests.factories import make_customer, record_consent

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
