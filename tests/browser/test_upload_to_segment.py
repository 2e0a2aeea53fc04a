"""A marketer's first session in a real browser: log in, import customers, build a segment."""

import re

import pytest
from django.urls import reverse

from marketing.models import Customer, Segment, Upload

pytestmark = [pytest.mark.browser, pytest.mark.slow]

ROWS = 3000
JOBS = ["admin", "technician", "student", "retired"]


# Ages run 18..77 and jobs cycle in fours, so the counts below can be made by hand.
def age(i: int) -> int:
    return 18 + i % 60


def customers_csv() -> bytes:
    lines = ["Customer ID;Email;Age;Job;email_marketing_consent"]
    for i in range(ROWS):
        consent = "granted" if i % 3 else "denied"
        lines.append(f"WEB-{i:05d};person{i}@example.com;{age(i)};{JOBS[i % 4]};{consent}")
    return ("\n".join(lines) + "\n").encode()


OVER_60 = sum(1 for i in range(ROWS) if age(i) >= 60)
OVER_60_STUDENT_OR_RETIRED = sum(
    1 for i in range(ROWS) if age(i) >= 60 and JOBS[i % 4] in ("student", "retired")
)


def test_it_takes_a_marketer_from_login_to_a_saved_segment(
    live_server, transactional_db, settings, marketer, browser_page, screenshot
):
    # Like the embedded app: the import runs on a worker thread while the page polls it.
    settings.JOB_QUEUE = "thread"
    page = browser_page
    url = live_server.url

    page.goto(url + reverse("overview"))
    page.wait_for_url(re.compile(r"/accounts/login/"))
    screenshot(page, "01-login")
    page.fill("#id_username", marketer.username)
    page.fill("#id_password", "pw-for-tests-only-123")
    page.click("button[type=submit]")
    page.wait_for_url(url + reverse("overview"))
    assert page.locator("text=No customers yet").is_visible()
    screenshot(page, "02-overview-empty")

    page.click("a:has-text('Upload CSV')")
    page.wait_for_url(url + reverse("upload-create"))
    assert page.locator("input[name=kind][value=customers]").is_checked()
    page.set_input_files(
        "#id_file",
        files=[{"name": "web-customers.csv", "mimeType": "text/csv", "buffer": customers_csv()}],
    )
    screenshot(page, "03-upload-choose-file")
    page.click("button:has-text('Upload and continue')")

    page.wait_for_url(re.compile(r"/uploads/\d+/mapping/$"))
    assert page.locator("select[name=col-0]").input_value() == "external_id"
    assert page.locator("[data-missing-required]").inner_text() == "All required fields are mapped"
    page.click("label.choice-card:has-text('Import the valid rows')")
    screenshot(page, "04-upload-mapping")
    page.click("button:has-text('Check the data')")

    page.wait_for_url(re.compile(r"/uploads/\d+/preview/$"))
    assert page.locator("[data-testid=valid-count]").inner_text() == f"{ROWS:,}"
    assert page.locator("[data-testid=invalid-count]").inner_text() == "0"
    screenshot(page, "05-upload-preview")
    page.click("button:has-text('Import')")

    page.wait_for_url(re.compile(r"/uploads/\d+/$"))
    assert page.locator(".job .progress-bar").count() == 1
    screenshot(page, "06-import-started")
    page.locator(".job .job-status", has_text="Succeeded").wait_for(timeout=60_000)
    page.locator("[data-testid=import-finished]").wait_for()
    screenshot(page, "07-import-finished")
    upload = Upload.objects.get()
    assert upload.status == Upload.Status.IMPORTED
    assert Customer.objects.count() == ROWS

    page.click(".sidebar a:has-text('Segments')")
    page.click("a:has-text('Build a segment')")
    page.wait_for_url(url + reverse("segment-create"))
    count = page.locator("[data-testid=live-count]")
    count.filter(has_text=f"{ROWS:,}").wait_for()  # one empty rule: everyone
    page.select_option("select[data-role=field]", "attr:age")
    page.select_option("select[data-role=operator]", "gte")
    page.fill("input[data-role=value]", "60")
    count.filter(has_text=f"{OVER_60:,}").wait_for()
    # A nested "any" group: (job is student or job is retired).
    page.click(".builder > .builder-group > .builder-actions [data-action=add-group]")
    group = page.locator(".builder-group .builder-group")
    group.locator("select[data-role=field]").select_option("attr:job")
    group.locator("select[data-role=value]").select_option("student")
    group.locator("[data-action=add-rule]").click()
    group.locator("select[data-role=field]").nth(1).select_option("attr:job")
    group.locator("select[data-role=value]").nth(1).select_option("retired")
    count.filter(has_text=f"{OVER_60_STUDENT_OR_RETIRED:,}").wait_for()
    page.fill("#id_name", "Students and retirees aged 60 and over")
    screenshot(page, "08-segment-builder")
    page.click("#save-segment")

    page.wait_for_url(re.compile(r"/segments/\d+/$"))
    segment = Segment.objects.get()
    assert segment.rules == {
        "op": "and",
        "rules": [
            {"field": "attr:age", "operator": "gte", "value": 60},
            {
                "op": "or",
                "rules": [
                    {"field": "attr:job", "operator": "eq", "value": "student"},
                    {"field": "attr:job", "operator": "eq", "value": "retired"},
                ],
            },
        ],
    }
    shown = f"{OVER_60_STUDENT_OR_RETIRED:,}"
    # Saving starts the count as a job; the page shows its progress, then the count.
    page.locator("[data-testid=segment-count]", has_text=shown).wait_for()
    screenshot(page, "09-segment-detail")

    page.click(".sidebar a:has-text('Segments')")
    row = page.locator("#segment-table tr", has_text="Students and retirees aged 60 and over")
    # The stored count, with its age beneath.
    assert row.locator("td.num").inner_text().splitlines()[0] == shown
    screenshot(page, "10-segment-list")

    page.goto(url + reverse("overview"))
    screenshot(page, "11-overview")
    assert page.errors == [], "the pages raised JavaScript errors"
