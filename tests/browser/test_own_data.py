"""A team's own data, first time right, in a real browser: a new user uploads customers,
offers and responses with the accepted values shown, sets two columns to category, trains
with a time budget, sees a planted leak flagged and reads a plan marked out of sample."""

import re

import numpy as np
import pytest
from django.urls import reverse

from marketing.models import Customer, ProfileField, TrainingRun

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROWS = 400


def customers_and_responses() -> tuple[bytes, bytes]:
    rng = np.random.default_rng(3)
    people = [
        "Customer ID,Age,Balance,Band,Store,Purchased,"
        "model_training_consent,profiling_consent,consent_date"
    ]
    responses = ["Customer ID,Offer ID,Kind,Date"]
    for i in range(ROWS):
        region, balance = int(rng.integers(1, 5)), round(float(rng.normal()), 2)
        bought = rng.random() < 1 / (1 + np.exp(-(1.4 * balance + 0.8 * (region == 2) - 0.5)))
        people.append(
            f"OWN-{i:04d},{rng.integers(18, 80)},{balance},{region},{[101, 205, 330][i % 3]},"
            f"{'yes' if bought else 'no'},granted,granted,2026-01-10"
        )
        responses.append(f"OWN-{i:04d},CALL-1,impression,2026-03-01")
        if bought:
            responses.append(f"OWN-{i:04d},CALL-1,conversion,2026-03-02")
    return ("\n".join(people) + "\n").encode(), ("\n".join(responses) + "\n").encode()


def upload(page, url, kind: str, name: str, content: bytes, screenshot, shot: str):
    page.goto(url + reverse("upload-create") + f"?kind={kind}")
    page.locator(f"label.choice-card:has(input[value={kind}])").click()
    accepted = page.locator(f"[data-accepted={kind}]")
    assert accepted.is_visible() and "Values we accept" in accepted.inner_text()
    page.set_input_files(
        "#id_file", files=[{"name": name, "mimeType": "text/csv", "buffer": content}]
    )
    if shot:
        screenshot(page, shot)
    page.click("button:has-text('Upload and continue')")
    page.wait_for_url(re.compile(r"/uploads/\d+/mapping/$"))


def check_and_import(page, screenshot, shot: str = ""):
    page.click("button:has-text('Check the data')")
    page.wait_for_url(re.compile(r"/uploads/\d+/preview/$"))
    if shot:
        screenshot(page, shot)
    page.click("button:has-text('Import')")
    page.wait_for_url(re.compile(r"/uploads/\d+/$"))
    page.locator(".job .job-status", has_text="Succeeded").wait_for(timeout=60_000)


def test_a_new_user_goes_from_their_own_files_to_an_out_of_sample_plan(
    live_server, transactional_db, settings, marketer, browser_page, screenshot, tiny_bert
):
    settings.JOB_QUEUE = "thread"
    people, responses = customers_and_responses()
    page, url = browser_page, live_server.url
    page.goto(url + reverse("login"))
    page.fill("#id_username", marketer.username)
    page.fill("#id_password", "pw-for-tests-only-123")
    page.click("button[type=submit]")

    # Customers: the accepted values are listed; Band and Store are set to category.
    upload(page, url, "customers", "own-customers.csv", people, screenshot, "70-own-upload")
    band = page.locator("select[aria-label='Type of column Band']")
    store = page.locator("select[aria-label='Type of column Store']")
    assert band.input_value() == "number"  # 1..4 reads as a count until the user says
    band.select_option("category")
    store.select_option("category")
    screenshot(page, "71-own-mapping-types")
    check_and_import(page, screenshot, "72-own-dry-run")
    assert ProfileField.objects.get(name="band").data_type == "category"
    assert ProfileField.objects.get(name="store").data_type == "category"
    assert isinstance(Customer.objects.get(external_id="OWN-0000").attributes["band"], str)

    upload(
        page, url, "offers", "offers.csv", b"Offer ID,Title\nCALL-1,Spring call\n", screenshot, ""
    )
    check_and_import(page, screenshot)
    upload(page, url, "interactions", "responses.csv", responses, screenshot, "")
    check_and_import(page, screenshot)

    # Training: the form leads with the time budget; the tiny test encoder trains fast.
    page.goto(url + reverse("model-create"))
    page.locator("[data-hardware]").wait_for()
    page.fill("#id_time_budget_minutes", "2")
    page.click("text=Advanced: set what the budget would pick")
    page.fill("#id_epochs", "2")
    page.fill("#id_batch_size", "16")
    page.fill("#id_frozen_layers", "0")
    page.fill("#id_max_length", "32")
    screenshot(page, "73-own-train-form")
    page.click("button:has-text('Start training')")
    page.locator("#metric-table").wait_for(timeout=180_000)

    run = TrainingRun.objects.get()
    flags = page.locator("#leakage-flags")
    assert "purchased" in flags.inner_text() and "left out" in flags.inner_text()
    assert run.settings["time_budget_s"] == 120 and run.settings["num_layers"] == 3
    screenshot(page, "74-own-model-leak-flagged")

    # Score everyone, then plan: the plan says its forecast is out of sample.
    page.click("button:has-text('Score a segment')")
    page.wait_for_url(re.compile(r"/models/scores/\d+/$"))
    # A job done before the page is drawn leaves no progress bar, only the run's actions.
    finished = page.locator(".job .job-status", has_text="Succeeded")
    finished.or_(page.locator("a:has-text('Plan a campaign')")).first.wait_for(timeout=300_000)
    page.reload()
    page.click("text=Plan a campaign")
    page.fill("#id_name", "Spring calls")
    page.fill("#id_cost_per_contact", "2")
    page.fill("#id_value_per_conversion", "40")
    page.click("button:has-text('Compute the plan')")
    basis = page.locator("[data-testid=forecast-basis]")
    basis.wait_for()
    assert "Out of sample" in basis.inner_text()
    screenshot(page, "75-own-plan-out-of-sample")
    assert page.errors == []
