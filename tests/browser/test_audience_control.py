"""A campaign's control group in the browser: an audience built with one, then its results
measured against it after the responses came back."""

from datetime import timedelta

import pytest
from django.urls import reverse

from marketing.models import Audience, Interaction
from tests.factories import make_offer
from tests.marketing.services.audience_helpers import everyone_segment, make_people

pytestmark = [pytest.mark.browser]


def test_a_marketer_holds_back_a_control_group_and_measures_the_lift(
    live_server, transactional_db, marketer, browser_page, screenshot
):
    make_people(600, country="US")
    segment = everyone_segment("Newsletter readers")
    offer = make_offer("SPRING", title="Spring savings", price=40)
    page = browser_page
    page.goto(live_server.url + reverse("login"))
    page.fill("#id_username", marketer.username)
    page.fill("#id_password", "pw-for-tests-only-123")
    page.click("button[type=submit]")

    page.goto(live_server.url + reverse("audience-create"))
    page.select_option("#id_segment", str(segment.pk))
    page.fill("#id_name", "Spring with a control group")
    page.fill("#id_control_percent", "25")
    page.fill("#id_control_seed", "7")
    # The first page of the session that starts a job (imports, a cold live server) may take
    # longer than a click's default wait on a loaded machine.
    with page.expect_navigation(timeout=90_000):
        page.click("#audience-form button[type=submit]", no_wait_after=True)
    page.locator("h1", has_text="Spring with a control group").wait_for()
    # The freeze is a job: the page counts the members held back once it is done.
    page.locator("text=held back as control").wait_for(timeout=90_000)
    audience = Audience.objects.get()
    assert audience.is_frozen and audience.control_size > 0

    # The campaign ran: 12 % of the contacted converted, 4 % of the control group.
    at = audience.frozen_at + timedelta(days=2)
    conversions = []
    for in_control, rate in ((False, 0.12), (True, 0.04)):
        members = list(audience.members.filter(in_control=in_control).order_by("pk"))
        conversions += [
            Interaction(customer_id=m.customer_id, offer=offer, kind="conversion", occurred_at=at)
            for m in members[: round(rate * len(members))]
        ]
    Interaction.objects.bulk_create(conversions)
    page.reload()
    page.locator("button", has_text="Measure results").click()
    page.locator("text=The campaign worked").wait_for(timeout=90_000)
    screenshot(page, "63-audience-control-results")
    assert page.errors == []
