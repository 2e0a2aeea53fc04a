"""A marketer builds diversity-aware offer lists from a multi-offer model's scores and checks
who a single-offer campaign's top customers leave out."""

import numpy as np
import pytest
from django.urls import reverse

from marketing.models import Customer, Offer, ProfileField, Purpose
from marketing.pseudonyms import pseudonym_for
from tests.factories import make_offer
from tests.marketing.recommendation_helpers import multi_offer_scoring, record_clicks
from tests.marketing.training_helpers import add_consent, finished_run, finished_scoring

pytestmark = [pytest.mark.browser]

OFFERS = [
    ("SAVE-1", "Saver plus", "savings"),
    ("SAVE-2", "Fixed saver", "savings"),
    ("SAVE-3", "Kids saver", "savings, family"),
    ("LOAN-1", "Car loan", "loans"),
    ("LOAN-2", "Home loan", "loans, long-term"),
    ("CARD-1", "Travel card", "cards, travel"),
    ("CARD-2", "Cashback card", "cards"),
    ("INS-1", "Home insurance", "insurance, long-term"),
]
JOBS = ["admin.", "blue-collar", "technician", "student", "retired", "services"]


def log_in(page, live_server, user) -> None:
    page.goto(live_server.url + reverse("login"))
    page.fill("#id_username", user.username)
    page.fill("#id_password", "pw-for-tests-only-123")
    page.click("button[type=submit]")


def customers(n: int, seed: int = 0) -> list[Customer]:
    rng = np.random.default_rng(seed)
    Customer.objects.bulk_create(
        [
            Customer(
                external_id=f"W{i:05d}",
                pseudonym=pseudonym_for(f"W{i:05d}"),
                attributes={
                    "job": JOBS[int(rng.integers(0, len(JOBS)))],
                    "age": int(rng.integers(18, 85)),
                    "housing": str(rng.choice(["yes", "no"])),
                },
            )
            for i in range(n)
        ]
    )
    found = list(Customer.objects.filter(external_id__startswith="W").order_by("pk"))
    add_consent(found, Purpose.PROFILING)
    for name, kind in (("job", "text"), ("age", "number"), ("housing", "text")):
        ProfileField.objects.create(name=name, label=name.capitalize(), data_type=kind)
    return found


def test_it_builds_varied_lists_and_shows_the_trade_off(
    live_server, transactional_db, settings, marketer, browser_page, screenshot
):
    settings.JOB_QUEUE = "thread"
    offers = [make_offer(code, title=title, category=category) for code, title, category in OFFERS]
    people = customers(300)
    rng = np.random.default_rng(1)
    popularity = np.array([0.9, 0.85, 0.8, 0.5, 0.45, 0.4, 0.35, 0.3])
    scores = np.clip(popularity + rng.normal(0, 0.08, (len(people), len(offers))), 0.01, 0.99)
    scoring = multi_offer_scoring(
        people,
        offers,
        {(i, j): float(scores[i, j]) for i in range(len(people)) for j in range(len(offers))},
        by=marketer,
    )
    # Responses after the model was trained: each customer's two best offers, by chance.
    later = [
        (people[i], offers[j])
        for i in range(len(people))
        for j in np.argsort(-scores[i] + rng.normal(0, 0.15, len(offers)))[:1]
    ]
    record_clicks(later, days_ago=1)

    page = browser_page
    log_in(page, live_server, marketer)
    page.goto(live_server.url + reverse("model-scoring-detail", args=[scoring.pk]))
    page.click("[data-testid=recommendations-link]")
    page.fill("#id_k", "3")
    page.locator("#id_diversity").fill("0.5")
    page.locator("#diversity-value", has_text="0.50").wait_for()  # the label follows the slider
    page.fill("#id_offer_cap", "150")
    screenshot(page, "70-recommendation-form")
    page.click("button:has-text('Build the lists')")
    page.locator("#recommendation-page").wait_for()
    page.locator("[data-plotly=curve-chart-data] .main-svg").first.wait_for(timeout=120_000)
    page.locator("[data-plotly=exposure-chart-data] .main-svg").first.wait_for()
    assert "held out" in page.locator("[data-testid=accuracy-basis]").text_content()
    ild = float(page.locator("[data-testid=ild]").text_content())
    assert 0 < ild <= 1
    assert page.locator("#sample-lists tbody tr").count() == 10
    screenshot(page, "71-recommendation-run")

    page.locator("#sample-lists tbody tr a").first.click()
    page.locator("#customer-recommendations").wait_for()
    assert page.locator("#customer-recommendations tbody tr").count() == 3
    screenshot(page, "72-customer-recommendations")
    assert page.errors == []


def test_it_shows_who_a_single_offer_audience_leaves_out(
    live_server, transactional_db, marketer, browser_page, screenshot
):
    people = customers(400, seed=2)
    # Students and the young score highest; the retired lowest.
    people.sort(
        key=lambda c: (
            {"student": 2, "retired": -2}.get(c.attributes["job"], 0),
            -c.attributes["age"],
            c.pk,
        )
    )
    offer = make_offer("TERM-DEPOSIT", title="Term deposit", category="savings")
    scoring = finished_scoring(finished_run(offer, by=marketer), people)
    Offer.objects.exclude(pk=offer.pk).delete()

    page = browser_page
    log_in(page, live_server, marketer)
    page.goto(live_server.url + reverse("model-scoring-detail", args=[scoring.pk]))
    page.click("[data-testid=audience-diversity-link]")
    # Computed by a job (run inline by the test server), then shown with its age.
    page.click("[data-testid=diversity-compute]")
    page.locator("#findings").wait_for()
    page.locator(".chart .main-svg").first.wait_for()
    findings = page.locator("#findings li").all_text_contents()
    assert any("“retired”" in text and "none of the top 10%" in text for text in findings)
    screenshot(page, "73-audience-diversity")
    page.select_option("#id_top", "30")
    page.click("[data-testid=diversity-compute]")
    page.locator("[data-testid=audience-size]:has-text('120')").wait_for()
    screenshot(page, "74-audience-diversity-top30")
    assert page.errors == []
