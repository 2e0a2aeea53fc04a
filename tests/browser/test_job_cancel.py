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


def test_a_page_keeps_following_a_job_after_an_error_answer(
    live_server, transactional_db, marketer, browser_page
):
    job = Job.objects.create(
        kind=Job.Kind.EXPORT, title="Export spring audience", created_by=marketer
    )
    page = browser_page
    page.goto(live_server.url + reverse("login"))
    page.fill("#id_username", marketer.username)
    page.fill("#id_password", "pw-for-tests-only-123")
    page.click("button[type=submit]")
    answered = []

    def first_answer_fails(route):
        answered.append(route.request.url)
        if len(answered) == 1:
            route.fulfill(status=503, content_type="application/json", body="{}")
        else:
            route.continue_()

    page.route(f"**/api/jobs/{job.pk}/", first_answer_fails)
    page.goto(live_server.url + reverse("job-detail", args=[job.pk]))
    page.wait_for_function("() => true")
    while not answered:
        page.wait_for_timeout(100)
    Job.objects.filter(pk=job.pk).update(status=Job.Status.SUCCEEDED, progress=100)
    page.locator(".job .job-status", has_text="Succeeded").wait_for(timeout=15_000)
    assert len(answered) >= 2
