"""From a segment to a downloaded Meta payload in the browser: the builder's live preview,
freezing, the audience page's readiness and export buttons, the export history."""

import pytest
from django.urls import reverse

from marketing.models import Audience, Export, Job
from tests.marketing.services.audience_helpers import everyone_segment, make_people

pytestmark = [pytest.mark.browser]


def test_it_builds_an_audience_and_exports_it(
    live_server, transactional_db, marketer, browser_page, screenshot
):
    make_people(40, country="US")
    make_people(6, withdrawn=True)
    segment = everyone_segment("Newsletter readers")
    page = browser_page
    page.goto(live_server.url + reverse("login"))
    page.fill("#id_username", marketer.username)
    page.fill("#id_password", "pw-for-tests-only-123")
    page.click("button[type=submit]")

    page.goto(live_server.url + reverse("audience-create"))
    page.select_option("#id_segment", str(segment.pk))
    # Previews show counts rounded to the minimum group size (46 people: "50").
    page.locator('[data-preview="size"]', has_text="50").wait_for()
    meta = page.locator('[data-preview="formats"] tr', has_text="Meta Custom Audience (API")
    meta.locator("td", has_text="40").first.wait_for()
    screenshot(page, "40-audience-builder")
    page.fill("#id_name", "Spring newsletter")
    page.click("#audience-form button[type=submit]")

    page.locator("h1", has_text="Spring newsletter").wait_for()
    audience = Audience.objects.get()
    assert audience.is_frozen and audience.size == 46
    row = page.locator("#platforms tr", has_text="Meta Custom Audience (API payload)")
    row.locator("button", has_text="Export").click()
    page.locator("#audience-exports a", has_text="kB").wait_for()
    screenshot(page, "41-audience-exported")
    export = Export.objects.get()
    assert export.job.status == Job.Status.SUCCEEDED and export.row_count == 40

    page.goto(live_server.url + reverse("export-list"))
    with page.expect_download() as download:
        page.click(f'a[href="{reverse("export-download", args=[export.pk])}"]')
    assert download.value.suggested_filename.endswith(".jsonl")
    screenshot(page, "42-export-history")
    assert page.errors == []
