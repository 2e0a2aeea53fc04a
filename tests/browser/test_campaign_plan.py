"""A marketer opens a scoring run, sets the campaign's costs and sees the profit curve and the
best depth."""

import pytest
from django.urls import reverse

from marketing.models import CampaignPlan
from tests.factories import make_offer
from tests.marketing.plan_helpers import scored_customers

pytestmark = [pytest.mark.browser]


def test_it_plans_a_campaign_from_a_scoring_run(
    live_server, transactional_db, marketer, browser_page, screenshot
):
    offer = make_offer("TERM-DEPOSIT", title="Term deposit", price=90, unit_cost=10)
    scoring, _ = scored_customers(400, offer, by=marketer)
    page = browser_page
    page.goto(live_server.url + reverse("login"))
    page.fill("#id_username", marketer.username)
    page.fill("#id_password", "pw-for-tests-only-123")
    page.click("button[type=submit]")

    page.goto(live_server.url + reverse("model-scoring-detail", args=[scoring.pk]))
    page.click("text=Plan a campaign")
    page.locator("#id_cost_per_contact").wait_for()
    assert page.input_value("#id_value_per_conversion") == "80"  # price − unit cost
    page.fill("#id_name", "Term deposit calls")
    page.fill("#id_cost_per_contact", "12")
    page.fill("#id_fixed_cost", "300")
    page.fill("#id_value_per_conversion", "60")
    screenshot(page, "60-campaign-plan-form")
    page.click("button:has-text('Compute the plan')")

    page.locator("[data-testid=best-depth]").wait_for()
    page.locator("#profit .chart .main-svg").first.wait_for()
    plan = CampaignPlan.objects.get()
    best = plan.result["best"]
    advice = page.locator("[data-testid=best-depth]").text_content()
    assert (
        f"Contact the top {best['depth_pct']:.0f}% ({best['contacts']:,} customers): "
        f"expected profit €{round(best['profit']):,}"
    ) in advice
    assert page.locator(".chart .main-svg").count() >= 2  # profit curve, gains and lift
    assert page.locator("#profit .chart").get_by_text("Best:").count() == 1
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "61-campaign-plan")

    page.fill("#id_budget", "1500")
    page.click("button:has-text('Re-plan')")
    page.locator("#profit .chart").get_by_text("Budget €1,500").wait_for()
    plan.refresh_from_db()
    assert plan.result["budget"]["max_contacts"] == 100  # (1,500 − 300) / 12
    within = plan.result["budget"]["best_within_budget"]
    assert plan.result["chosen"]["contacts"] == within["contacts"] <= 100
    advice = page.locator("[data-testid=best-depth]").text_content()
    assert (
        f"Contact the top 25% (100 customers): expected profit €{round(within['profit']):,}"
        f" within the budget of €1,500" in advice
    )
    assert page.locator("[data-testid=chosen-profit]").text_content() == (
        f"€{round(within['profit']):,}"
    )
    page.evaluate("window.scrollTo(0, 0)")
    screenshot(page, "62-campaign-plan-budget")
    assert page.errors == []
