from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from marketing.models import Job

pytestmark = pytest.mark.django_db


def test_it_filters_jobs_by_status(viewer_client):
    Job.objects.create(kind=Job.Kind.IMPORT, title="ok", status=Job.Status.SUCCEEDED)
    failed = Job.objects.create(kind=Job.Kind.IMPORT, title="bad", status=Job.Status.FAILED)
    response = viewer_client.get(reverse("job-list"), {"status": "failed"})
    assert list(response.context["jobs"]) == [failed]


def test_it_shows_the_error_of_a_failed_job_and_its_kind_to_staff_only(
    viewer_client, steward, client
):
    job = Job.objects.create(
        kind=Job.Kind.IMPORT,
        status=Job.Status.FAILED,
        message="Row 17: age is not a number",
        error="ValueError: Row 17: age is not a number",
    )
    content = viewer_client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert "Row 17: age is not a number" in content
    assert "ValueError" not in content
    assert "badge-failed" in content

    steward.is_staff = True  # the admin console's users
    steward.save()
    client.force_login(steward)
    content = client.get(reverse("job-detail", args=[job.pk])).content.decode()
    assert "ValueError: Row 17" in content


def test_it_shows_the_result_of_a_finished_job(viewer_client):
    job = Job.objects.create(
        kind=Job.Kind.IMPORT,
        status=Job.Status.SUCCEEDED,
        progress=100,
        result={"created": 1200, "updated": 3, "skipped_rows": 0},
    )
    response = viewer_client.get(reverse("job-detail", args=[job.pk]))
    assert ("Created", "1,200") in response.context["result_items"]


def test_it_offers_cancel_to_marketers_and_the_jobs_creator_only(client, marketer, viewer, steward):
    running = Job.objects.create(
        kind=Job.Kind.IMPORT, status=Job.Status.RUNNING, created_by=steward
    )
    url = reverse("job-detail", args=[running.pk])
    for user, allowed in ((marketer, True), (steward, True), (viewer, False)):
        client.force_login(user)
        assert (b"data-cancel-job" in client.get(url).content) is allowed, user


def test_it_does_not_offer_cancel_for_a_finished_job(marketer_client):
    job = Job.objects.create(kind=Job.Kind.IMPORT, status=Job.Status.SUCCEEDED)
    assert (
        b"data-cancel-job" not in marketer_client.get(reverse("job-detail", args=[job.pk])).content
    )


def test_it_shows_short_durations_in_seconds(viewer_client):
    now = timezone.now()
    Job.objects.create(
        kind=Job.Kind.IMPORT,
        status=Job.Status.SUCCEEDED,
        started_at=now - timedelta(seconds=42),
        finished_at=now,
    )
    assert "42 s" in viewer_client.get(reverse("job-list")).content.decode()
