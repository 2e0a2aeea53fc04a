"""Pages with plotly charts and the segment builder's script work under the app's
Content-Security-Policy: the browser reports no violation."""

import pytest
from django.urls import reverse

from tests.factories import make_customer, make_offer
from tests.marketing.training_helpers import finished_run

pytestmark = [pytest.mark.browser]


@pytest.fixture
def watched_page(browser_page):
    """The page, with the console's policy violation reports collected in ``violations``."""
    page = browser_page
    page.violations = []
    page.on(
        "console",
        lambda message: (
            page.violations.append(message.text)
            if "Content Security Policy" in message.text
            else None
        ),
    )
    return page


def _log_in(page, live_server, user) -> None:
    page.goto(live_server.url + reverse("login"))
    page.fill("#id_username", user.username)
    page.fill("#id_password", "pw-for-tests-only-123")
    page.click("button[type=submit]")
    page.wait_for_url(live_server.url + reverse("overview"))


def test_it_draws_a_models_charts_without_a_policy_violation(
    live_server, transactional_db, marketer, watched_page, screenshot
):
    run = finished_run(make_offer("TERM-DEPOSIT", title="Term deposit"), by=marketer)
    page = watched_page
    _log_in(page, live_server, marketer)

    response = page.goto(live_server.url + reverse("model-detail", args=[run.pk]))
    page.locator(".chart .main-svg").first.wait_for()

    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert page.locator(".chart .main-svg").count() >= 3
    screenshot(page, "90-csp-model-charts")
    assert page.violations == [] and page.errors == []


def test_it_runs_the_segment_builder_without_a_policy_violation(
    live_server, transactional_db, marketer, watched_page, screenshot
):
    for i in range(12):
        make_customer(f"C{i}", age=20 + i)
    page = watched_page
    _log_in(page, live_server, marketer)

    page.goto(live_server.url + reverse("segment-create"))
    page.locator(".live-count-share").wait_for()
    page.wait_for_load_state("networkidle")

    screenshot(page, "91-csp-segment-builder")
    assert page.violations == [] and page.errors == []
