"""A marketer trains a click model in the browser, follows its progress and sees the results."""

import pytest
from django.urls import reverse

from marketing.models import Job, TrainingRun
from tests.factories import make_offer
from tests.marketing.training_helpers import make_click_customers

pytestmark = [pytest.mark.browser]


def test_it_trains_a_model_and_shows_metrics_and_charts(
    live_server, transactional_db, settings, marketer, browser_page, screenshot, tiny_bert
):
    settings.JOB_QUEUE = "thread"
    offer = make_offer("TERM-DEPOSIT", title="Term deposit")
    make_click_customers(300, offer)
    page = browser_page
    page.goto(live_server.url + reverse("login"))
    page.fill("#id_username", marketer.username)
    page.fill("#id_password", "pw-for-tests-only-123")
    page.click("button[type=submit]")

    page.goto(live_server.url + reverse("model-create"))
    page.fill("#id_name", "Term deposit in the browser")
    # The form leads with the time budget; the rest is picked for it unless set here.
    assert page.locator("#id_time_budget_minutes").input_value() == "10"
    page.fill("#id_time_budget_minutes", "2")
    page.click("text=Advanced: set what the budget would pick")
    page.fill("#id_epochs", "4")
    page.fill("#id_batch_size", "16")
    page.fill("#id_frozen_layers", "0")
    page.fill("#id_max_length", "32")
    screenshot(page, "30-model-train-form")
    page.click("button:has-text('Start training')")

    page.locator(".job[data-job-id]").wait_for()
    # The bar follows the job; a fast run may finish between two polls, so either will do.
    page.wait_for_function(
        "() => document.querySelector('#metric-table') || "
        "/Epoch \\d+\\/\\d+ · step/.test(document.querySelector('.job-message')?.textContent)",
        timeout=120_000,
    )
    screenshot(page, "31-model-training")
    page.locator("#metric-table").wait_for(timeout=120_000)  # the page refreshes when done
    page.locator(".chart .main-svg").first.wait_for()
    screenshot(page, "32-model-trained")

    run = TrainingRun.objects.get()
    assert Job.objects.get(pk=run.job_id).status == Job.Status.SUCCEEDED
    assert page.locator(".chart .main-svg").count() >= 4  # curves, ROC, calibration, gains
    assert page.locator("[data-testid=bert-auc]").text_content() == (
        f"{run.metrics['bert']['roc_auc']:.3f}"
    )
    assert page.errors == []
