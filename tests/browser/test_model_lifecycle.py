"""A marketer keeps models true over time in the browser: puts a model in use, reads its
drift check and the model history, rolls back, and starts a re-training."""

import pytest
from django.urls import reverse
from django.utils import timezone

from marketing.models import Interaction, TrainingRun
from marketing.selectors.champions import champion_for
from tests.factories import make_offer
from tests.marketing.pii_world import _drift_check
from tests.marketing.training_helpers import finished_run, finished_scoring

pytestmark = [pytest.mark.browser]


def test_a_marketer_puts_a_model_in_use_reads_its_drift_and_rolls_back(
    live_server, transactional_db, marketer, browser_page, screenshot, settings
):
    from tests.factories import make_customer

    offer = make_offer("TERM-DEPOSIT", title="Term deposit")
    spring = finished_run(offer, by=marketer, name="Term deposit · spring")
    autumn = finished_run(offer, by=marketer, name="Term deposit · autumn")
    customers = [make_customer(f"B{i:03d}", age=30 + i % 40, balance=0.1) for i in range(60)]
    finished_scoring(autumn, customers)
    page = browser_page
    page.goto(live_server.url + reverse("login"))
    page.fill("#id_username", marketer.username)
    page.fill("#id_password", "pw-for-tests-only-123")
    page.click("button[type=submit]")

    page.goto(live_server.url + reverse("model-detail", args=[spring.pk]))
    page.fill("#use-case input[name=note]", "Best on the spring campaign")
    page.click('[data-testid="promote-button"]')
    page.locator("#use-case .badge", has_text="In use").wait_for()
    page.goto(live_server.url + reverse("model-detail", args=[autumn.pk]))
    page.click('[data-testid="promote-button"]')
    page.locator('[data-testid="rollback-button"]').wait_for()
    assert champion_for(offer, "conversion") == autumn
    _drift_check(autumn, customers, by=marketer)
    page.reload()
    page.locator('[data-testid="drift-alert"]').wait_for()
    page.locator("#drift .js-plotly-plot, #drift .plot-container").first.wait_for()
    screenshot(page, "60-model-in-use-with-drift")

    page.goto(live_server.url + reverse("overview"))
    page.locator('[data-testid="drift-alert"]', has_text="autumn").wait_for()
    screenshot(page, "61-overview-drift-alert")

    page.goto(live_server.url + reverse("model-detail", args=[autumn.pk]))
    page.click('[data-testid="rollback-button"]')
    page.locator("h1", has_text="spring").wait_for()
    assert champion_for(offer, "conversion") == spring
    page.locator("#use-case a", has_text="Model history").click()
    page.locator('[data-testid="promotions"] tr', has_text="Best on the spring campaign").wait_for()
    page.locator('[data-plotly="versions-chart-data"] .plot-container').wait_for()
    page.locator('[data-testid="drift-history"] tr', has_text="Drifted").wait_for()
    page.locator('[data-plotly="drift-history-data"] .plot-container').wait_for()
    screenshot(page, "62-model-history")

    # The model rolled back from is now a challenger: compared with the one in use on the
    # responses that came after both were trained.
    settings.DRIFT_MIN_RESPONSES = 30
    finished_scoring(spring, customers)
    responses = [
        Interaction(customer=c, offer=offer, kind=kind, occurred_at=timezone.now())
        for i, c in enumerate(customers)
        for kind in (["impression", "conversion"] if i % 3 == 0 else ["impression"])
    ]
    Interaction.objects.bulk_create(responses)
    page.goto(live_server.url + reverse("model-detail", args=[autumn.pk]))
    page.click('[data-testid="compare-button"]')
    page.locator('[data-testid="comparison-table"]').wait_for(timeout=60_000)
    assert "Too close to tell" in page.locator('[data-testid="comparison"]').inner_text()
    screenshot(page, "64-challenger-against-the-model-in-use")

    page.goto(live_server.url + reverse("model-detail", args=[spring.pk]))
    page.click('[data-testid="retrain-scratch"]')
    page.locator('[data-testid="lineage"]').wait_for()
    assert TrainingRun.objects.filter(parent=spring, start="scratch").exists()
    assert page.errors == []
