"""Cancelling a job from its page: the button calls the API and the page follows the job."""

import pytest
from django.urls import reverse

from marketing.models import Job

pytestmark = [pytest.mark.browser]


def test_it_cancels_a_waiting_job_from_its_page(
    live_server, transactional_db, marketer, browser_page, screenshot
):
    job = Job.objects.create(
        kind=Job.Kind.EXPORT,
        title="Export autumn audience",
        message="Waiting for a worker",
        created_by=marketer,
    )
    page = browser_page
    page.goto(live_server.url + reverse("login"))
    page.fill("#id_username", marketer.username)
    page.fill("#id_password", "pw-for-tests-only-123")
    page.click("button[type=submit]")
    page.goto(live_server.url + reverse("job-detail", args=[job.pk]))
    screenshot(page, "20-job-waiting")

    page.once("dialog", lambda dialog: dialog.accept())
    page.click("[data-cancel-job]")

    page.locator(".job .job-status", has_text="Cancelled").wait_for()
    page.locator("[data-cancel-job]").wait_for(state="hidden")
    screenshot(page, "21-job-cancelled")
    job.refresh_from_db()
    assert job.status == Job.Status.CANCELLED
    assert page.errors == []
