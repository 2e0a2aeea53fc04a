"""The main pages at a desktop width and a phone's (390 px): no horizontal scrolling, no chart
labels drawn over each other, the sidebar a labelled menu on the phone. Screenshots of each
page at each width are saved for the reviewer."""

import pytest
from django.urls import reverse

from tests.marketing.views.page_world import build_world

pytestmark = [pytest.mark.browser]

WIDTHS = (1400, 390)

# Boxes of the text plotly draws (annotations, tick labels, legend entries), per chart, that
# overlap another's by more than a pixel each way.
OVERLAPPING_LABELS = """
() => {
  const found = [];
  document.querySelectorAll('.js-plotly-plot').forEach((chart, index) => {
    const boxes = [];
    chart.querySelectorAll('g.annotation text, g.xtick text, g.ytick text, g.x2tick text, '
        + 'g.y2tick text, .legendtext, .g-gtitle text, .g-xtitle text, .g-ytitle text')
      .forEach((el) => {
        const r = el.getBoundingClientRect();
        const style = getComputedStyle(el);
        if (r.width < 1 || r.height < 1 || style.visibility === 'hidden'
            || style.opacity === '0' || !el.textContent.trim()) return;
        boxes.push({text: el.textContent.trim(), r});
      });
    for (let i = 0; i < boxes.length; i++) {
      for (let j = i + 1; j < boxes.length; j++) {
        const a = boxes[i].r, b = boxes[j].r;
        const w = Math.min(a.right, b.right) - Math.max(a.left, b.left);
        const h = Math.min(a.bottom, b.bottom) - Math.max(a.top, b.top);
        if (w > 1 && h > 1) found.push([index, boxes[i].text, boxes[j].text]);
      }
    }
  });
  return found;
}
"""


def _log_in(page, base: str, user) -> None:
    page.goto(base + reverse("login"))
    page.fill("#id_username", user.username)
    page.fill("#id_password", "pw-for-tests-only-123")
    page.click("button[type=submit]")
    page.wait_for_url(f"{base}/")


def _pages(world) -> dict[str, str]:
    return {
        "overview": reverse("overview"),
        "customer": reverse("customer-detail", args=[world.customer.pk]),
        "segment-builder": reverse("segment-edit", args=[world.job_segment.pk]),
        "model": reverse("model-detail", args=[world.single_scoring.training_run_id]),
        "plan": reverse("plan-detail", args=[world.plan.pk]),
        "audience": reverse("audience-detail", args=[world.audience.pk]),
    }


def test_the_main_pages_fit_a_desktop_and_a_phone(
    live_server, transactional_db, marketer, browser_page, screenshot
):
    world = build_world(marketer)
    page = browser_page
    _log_in(page, live_server.url, marketer)

    problems = []
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for name, url in _pages(world).items():
            page.goto(live_server.url + url)
            page.wait_for_load_state("networkidle")
            overflow = page.evaluate(
                "document.documentElement.scrollWidth - document.documentElement.clientWidth"
            )
            if overflow > 0:
                problems.append(f"{name} at {width} px scrolls {overflow} px sideways")
            for chart, first, second in page.evaluate(OVERLAPPING_LABELS):
                problems.append(f"{name} at {width} px, chart {chart}: {first!r} over {second!r}")
            screenshot(page, f"fit-{width}-{name}")
    assert not problems, "\n".join(problems)
    assert not page.errors


def test_the_sidebar_is_a_labelled_menu_on_a_phone(
    live_server, transactional_db, marketer, browser_page
):
    page = browser_page
    page.set_viewport_size({"width": 390, "height": 800})
    _log_in(page, live_server.url, marketer)
    segments = page.get_by_role("link", name="Segments")
    assert not segments.is_visible()  # folded away until asked for
    page.get_by_role("button", name="Menu").click()
    assert segments.is_visible()
    assert page.get_by_role("button", name="Menu").get_attribute("aria-expanded") == "true"
    breadcrumbs = page.locator(".breadcrumbs").bounding_box()
    user = page.locator(".topbar-user").bounding_box()
    overlap_x = min(breadcrumbs["x"] + breadcrumbs["width"], user["x"] + user["width"]) - max(
        breadcrumbs["x"], user["x"]
    )
    overlap_y = min(breadcrumbs["y"] + breadcrumbs["height"], user["y"] + user["height"]) - max(
        breadcrumbs["y"], user["y"]
    )
    assert overlap_x <= 0 or overlap_y <= 0  # the breadcrumbs never run under the user menu


# Text blocks narrower than this at 390 px (about half the screen) read a few words per line.
NARROW_TEXT_PX = 200
NARROW_TEXT = """
(limit) => {
  const found = [];
  document.querySelectorAll('#content p, #content span.small, #content .help').forEach((el) => {
    const r = el.getBoundingClientRect();
    const lines = r.height / parseFloat(getComputedStyle(el).lineHeight || 16);
    if (r.width > 0 && r.width < limit && lines > 3 && el.textContent.trim().length > 60) {
      found.push(el.textContent.trim().slice(0, 50) + ` (${Math.round(r.width)} px wide)`);
    }
  });
  return found;
}
"""


def test_no_paragraph_is_squeezed_into_a_narrow_column_on_a_phone(
    live_server, transactional_db, marketer, browser_page
):
    world = build_world(marketer)
    page = browser_page
    page.set_viewport_size({"width": 390, "height": 900})
    _log_in(page, live_server.url, marketer)
    squeezed = []
    for name, url in _pages(world).items():
        page.goto(live_server.url + url)
        page.wait_for_load_state("networkidle")
        squeezed += [f"{name}: {text}" for text in page.evaluate(NARROW_TEXT, NARROW_TEXT_PX)]
    assert not squeezed, "\n".join(squeezed)
