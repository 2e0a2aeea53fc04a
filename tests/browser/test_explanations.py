"""A marketer opens a customer and sees the waterfall of their score, then opens the model and
sees which fields matter, BERT beside the baseline."""

import pytest
from django.urls import reverse

from marketing.models import ExplanationRun, Job
from marketing.services.training import training_run_create
from tests.factories import make_offer
from tests.marketing.training_helpers import FAST_PARAMS, make_click_customers

pytestmark = [pytest.mark.browser]


def test_it_shows_why_a_customer_scored_and_which_fields_matter(
    live_server, transactional_db, settings, marketer, browser_page, screenshot, tiny_bert
):
    offer = make_offer("TERM-DEPOSIT", title="Term deposit")
    customers = make_click_customers(160, offer)
    # Outside a transaction the training Job runs at once (inline); the page's jobs then run
    # in a worker thread, so the browser sees their progress.
    run = training_run_create(
        name="Term deposit model",
        segment=None,
        offer=offer,
        target="conversion",
        base_model="",
        mode="full",
        params={**FAST_PARAMS, "epochs": 1},
        by=marketer,
    )
    run.refresh_from_db()
    assert run.job.status == Job.Status.SUCCEEDED, run.job.error
    settings.JOB_QUEUE = "thread"
    page = browser_page
    page.goto(live_server.url + reverse("login"))
    page.fill("#id_username", marketer.username)
    page.fill("#id_password", "pw-for-tests-only-123")
    page.click("button[type=submit]")

    customer = customers[2]
    page.goto(live_server.url + reverse("customer-detail", args=[customer.pk]))
    section = page.locator("#explain-customer")
    section.locator("text=Not explained yet").wait_for()
    section.locator("button:has-text('Explain this customer')").click()
    page.locator("[data-testid=waterfall-bert] .main-svg").first.wait_for(timeout=60_000)
    page.locator("[data-testid=waterfall-baseline] .main-svg").first.wait_for()
    page.evaluate("window.scrollTo(0, 0)")  # sticky bars stay on top in a full-page shot
    screenshot(page, "50-customer-why-this-score")

    explanation = ExplanationRun.objects.get(customer=customer)
    words = page.locator("[data-testid=score-in-words]").text_content()
    assert "chance of a response" in words and "typical customer" in words
    waterfall = page.locator("[data-testid=waterfall-bert]")
    assert waterfall.locator("text=This customer").count() == 1
    assert waterfall.locator(f"text=job = {customer.attributes['job']}").count() == 1
    assert f"{explanation.result['bert']['logit']:.2f}" in waterfall.text_content()

    page.goto(live_server.url + reverse("model-detail", args=[run.pk]))
    section = page.locator("#explain-global")
    section.locator("#id_sample_size").fill("30")
    section.locator("button:has-text('Compute field importance')").click()
    page.locator("[data-testid=importance-chart] .main-svg").first.wait_for(timeout=90_000)
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "51-model-which-fields-matter")

    chart = page.locator("[data-testid=importance-chart]")
    for label in ("BERT", "LightGBM baseline", "job", "balance", "age"):
        assert chart.locator(f"text={label}").count() >= 1, label
    assert page.locator("#importance-accuracy tbody tr").count() == 2
    assert page.errors == []
