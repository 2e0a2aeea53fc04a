import re
from urllib.parse import parse_qs

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from marketing.dbstats import analyze
from marketing.models import (
    AuditEvent,
    ConsentRecord,
    Customer,
    Interaction,
    ProfileField,
    Purpose,
)
from tests.factories import make_customer, make_offer, record_consent

pytestmark = pytest.mark.django_db

JANE = {
    "email": "jane.doe@example.com",
    "first_name": "Jane",
    "last_name": "Doe",
    "phone": "+44 20 7946 0958",
}


def test_it_invites_to_upload_when_there_are_no_customers(viewer_client):
    response = viewer_client.get(reverse("customer-list"))
    assert b"No customers yet" in response.content


def test_it_searches_by_external_id_and_pseudonym(viewer_client):
    alice = make_customer("ALICE-1")
    bob = make_customer("BOB-2")

    by_id = viewer_client.get(reverse("customer-list"), {"q": "alice"})
    by_pseudonym = viewer_client.get(reverse("customer-list"), {"q": bob.pseudonym[:10]})

    assert [r["customer"] for r in by_id.context["rows"]] == [alice]
    assert [r["customer"] for r in by_pseudonym.context["rows"]] == [bob]


def _walk(client, url: str, link: str = "next_url", **params) -> list[list[int]]:
    """The ids of each page, following ``link`` from ``url`` until there is none."""
    pages, response = [], client.get(url, params)
    while True:
        assert response.status_code == 200
        pages.append([row["customer"].pk for row in response.context["rows"]])
        if not response.context[link]:
            return pages
        response = client.get(reverse("customer-list") + response.context[link])


def test_it_pages_by_cursor_through_every_customer_once(viewer_client):
    ids = [make_customer().pk for _ in range(60)]

    pages = _walk(viewer_client, reverse("customer-list"))

    assert [len(page) for page in pages] == [25, 25, 10]
    assert [pk for page in pages for pk in page] == sorted(ids)


def test_it_pages_back_to_the_same_slices(viewer_client):
    for _ in range(60):
        make_customer()
    forward = _walk(viewer_client, reverse("customer-list"))
    last = viewer_client.get(reverse("customer-list"))
    while last.context["next_url"]:
        last = viewer_client.get(reverse("customer-list") + last.context["next_url"])

    backward = [[r["customer"].pk for r in last.context["rows"]]]
    backward += _walk(
        viewer_client, reverse("customer-list") + last.context["previous_url"], "previous_url"
    )

    assert backward[::-1] == forward
    assert last.context["first_url"] == "?"


def test_it_breaks_ties_in_created_at_by_id(viewer_client):
    # One import gives all its customers the same created_at.
    moment = timezone.now()
    ids = [make_customer().pk for _ in range(55)]
    Customer.objects.update(created_at=moment)

    pages = _walk(viewer_client, reverse("customer-list"), sort="newest")

    assert [pk for page in pages for pk in page] == sorted(ids, reverse=True)
    assert len({pk for page in pages for pk in page}) == 55


def test_it_keeps_the_filters_and_order_in_its_page_links(viewer_client):
    for i in range(30):
        make_customer(f"KEEP-{i:02d}")
    make_customer("OTHER-1")

    pages = _walk(viewer_client, reverse("customer-list"), q="keep", sort="external_id")

    found = [Customer.objects.get(pk=pk).external_id for page in pages for pk in page]
    assert found == [f"KEEP-{i:02d}" for i in range(30)]


@pytest.mark.parametrize(
    "cursor",
    ["garbage", "eyJvIjoiaWQifQ:1abc:xyz", "", "' OR 1=1 --"],
)
def test_it_answers_400_to_a_cursor_it_did_not_make(viewer_client, cursor):
    make_customer()
    response = viewer_client.get(reverse("customer-list"), {"cursor": cursor or "x:y"})
    assert response.status_code == 400
    assert "This page link is not valid" in response.content.decode()


def test_it_answers_400_to_a_cursor_of_another_order(viewer_client):
    for _ in range(30):
        make_customer()
    by_id = viewer_client.get(reverse("customer-list")).context["next_url"]
    cursor = parse_qs(by_id.removeprefix("?"))["cursor"][0]

    response = viewer_client.get(reverse("customer-list"), {"sort": "newest", "cursor": cursor})

    assert response.status_code == 400
    assert "another order" in response.content.decode()


def test_it_pages_the_customers_with_a_consent(viewer_client):
    consented = []
    for i in range(60):
        customer = make_customer()
        if i % 2:
            record_consent(customer, Purpose.EMAIL_MARKETING)
            consented.append(customer.pk)

    pages = _walk(viewer_client, reverse("customer-list"), consent="email_marketing")

    assert [len(page) for page in pages] == [25, 5]
    assert [pk for page in pages for pk in page] == consented


def test_it_finds_customers_by_prefix_not_by_substring(viewer_client):
    alice = make_customer("ALICE-1")
    make_customer("MALICE-2")

    found = viewer_client.get(reverse("customer-list"), {"q": "alice"})
    inside = viewer_client.get(reverse("customer-list"), {"q": "LICE"})

    assert [r["customer"] for r in found.context["rows"]] == [alice]
    assert inside.context["rows"] == []


def test_it_shows_the_base_size_only_unfiltered_and_as_counts_are_shown(viewer_client):
    for i in range(23):
        make_customer(f"C-{i}")
    analyze(Customer)  # PostgreSQL's estimate is from the statistics; SQLite counts

    unfiltered = viewer_client.get(reverse("customer-list"))
    filtered = viewer_client.get(reverse("customer-list"), {"q": "C-1"})

    # 23 customers are shown as counts of customers are everywhere: rounded to k (10).
    estimate = connection.vendor == "postgresql"
    assert unfiltered.context["total"] == {"display": "20", "approximate": estimate}
    shown = ("about " if estimate else "") + "20 customers<"
    assert shown in unfiltered.content.decode()
    assert filtered.context["total"] is None


def test_it_shows_attributes_as_columns_and_consent_badges(viewer_client):
    ProfileField.objects.create(name="age", label="Age", data_type="number")
    customer = make_customer(age=41)
    record_consent(customer, Purpose.EMAIL_MARKETING)
    record_consent(customer, Purpose.AD_TARGETING)
    record_consent(customer, Purpose.AD_TARGETING, ConsentRecord.Status.WITHDRAWN, days_ago=1)

    response = viewer_client.get(reverse("customer-list"))

    row = response.context["rows"][0]
    assert row["values"] == [("41", True)]
    assert [short for short, _ in row["consents"]] == ["Email"]


def test_it_masks_personal_identifiers_without_the_pii_permission(marketer_client):
    customer = make_customer(identity=JANE)
    for url in (reverse("customer-list"), reverse("customer-detail", args=[customer.pk])):
        content = marketer_client.get(url).content.decode()
        assert "jane.doe@example.com" not in content
        # As a whole word: the page's random CSRF token may hold the letters "Doe".
        assert not re.search(r"\bDoe\b", content)
        assert "j***@e***.com" in content
    assert not AuditEvent.objects.filter(action=AuditEvent.Action.PII_VIEW).exists()


def test_it_shows_identifiers_to_a_steward_and_records_the_view(steward_client, steward):
    customer = make_customer(identity=JANE)
    content = steward_client.get(reverse("customer-detail", args=[customer.pk])).content.decode()
    assert "jane.doe@example.com" in content
    event = AuditEvent.objects.get(action=AuditEvent.Action.PII_VIEW)
    assert (event.actor, event.target_ref) == (steward, customer.pseudonym)


def test_it_shows_the_consent_history_and_current_state(viewer_client):
    customer = make_customer()
    record_consent(customer, Purpose.EMAIL_MARKETING, days_ago=30)
    record_consent(customer, Purpose.EMAIL_MARKETING, ConsentRecord.Status.WITHDRAWN, days_ago=2)
    record_consent(customer, Purpose.PROFILING, days_ago=5)

    response = viewer_client.get(reverse("customer-detail", args=[customer.pk]))

    state = {row["purpose"]: row["state"] for row in response.context["consent_state"]}
    assert state["Email marketing"] == "withdrawn"
    assert state["Profiling"] == "granted"
    assert state["Model training"] == "none"
    assert len(response.context["consent_history"]) == 3


def test_it_lists_the_customers_responses(viewer_client):
    customer = make_customer()
    offer = make_offer(title="Term deposit")
    Interaction.objects.create(
        customer=customer,
        offer=offer,
        kind=Interaction.Kind.CLICK,
        occurred_at="2024-05-01T10:00:00Z",
    )
    content = viewer_client.get(reverse("customer-detail", args=[customer.pk])).content.decode()
    assert "Term deposit" in content
    assert "Click" in content


def test_it_shows_the_columns_the_user_picks_across_pages(viewer_client):
    for name in ("age", "job", "city"):
        ProfileField.objects.create(name=name, data_type="text")
    make_customer(age=30, job="admin", city="Porto")

    picked = viewer_client.get(reverse("customer-list"), {"cols": ["city", "age"]})
    later = viewer_client.get(reverse("customer-list"), {"sort": "newest"})

    assert [f.name for f in picked.context["columns"]] == ["age", "city"]
    assert [f.name for f in later.context["columns"]] == ["age", "city"]
    assert later.context["rows"][0]["values"] == [("30", False), ("Porto", False)]


def test_it_shows_a_scores_rank_as_an_estimate_from_the_runs_histogram(viewer_client):
    from marketing.models import ScoringRun
    from tests.marketing.training_helpers import finished_run, finished_scoring

    customers = [make_customer() for _ in range(4)]
    for customer in customers:
        record_consent(customer, Purpose.PROFILING)
    scoring = finished_scoring(finished_run(make_offer("RANK-1")), customers)
    # The stored histogram, not the four stored scores, says where the 0.45 of the second
    # customer stands: 1,000 scores, 30 of them in the bar 0.45 sits at the middle of.
    ScoringRun.objects.filter(pk=scoring.pk).update(
        distribution={"count": 1000, "edges": [0.0, 0.4, 0.5, 1.0], "counts": [900, 30, 70]}
    )

    body = viewer_client.get(reverse("customer-detail", args=[customers[1].pk])).content.decode()

    assert "about top 9%" in body  # 70 above plus half of 30, of 1,000: within the top 8.5 %


def test_a_search_lists_at_most_its_cap_of_matches_and_says_so(viewer_client, monkeypatch):
    from marketing.views import customers as view

    monkeypatch.setattr(view, "SEARCH_MATCHES", 3)
    for i in range(5):
        make_customer(f"CAP-{i}")
    make_customer("OTHER-1")

    capped = viewer_client.get(reverse("customer-list"), {"q": "cap-"})
    narrow = viewer_client.get(reverse("customer-list"), {"q": "cap-4"})

    assert len(capped.context["rows"]) == 3
    assert b'data-testid="search-capped"' in capped.content
    assert [r["customer"].external_id for r in narrow.context["rows"]] == ["CAP-4"]
    assert b'data-testid="search-capped"' not in narrow.content
