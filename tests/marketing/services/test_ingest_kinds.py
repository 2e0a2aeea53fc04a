"""Importing offers and interactions."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from marketing.models import Interaction, Job, Offer, Upload
from marketing.services.ingest import upload_create
from tests.factories import make_customer, make_offer
from tests.marketing.services.ingest_helpers import csv_file, import_text, stored

pytestmark = pytest.mark.django_db

OFFERS = """sku,name,category,price,cost
P1,Savings plus,savings,12.50,3
P2,Travel card,cards,0,
"""


def test_it_imports_and_updates_offers(marketer, django_capture_on_commit_callbacks):
    make_offer("P2", title="Old title", unit_cost=Decimal("1.10"), description="kept")
    job = import_text(django_capture_on_commit_callbacks, OFFERS, by=marketer, kind="offers")
    assert job.status == Job.Status.SUCCEEDED, job.message
    assert (job.result["created"], job.result["updated"]) == (1, 1)
    p1, p2 = Offer.objects.order_by("external_id")
    assert (p1.title, p1.category, p1.price, p1.unit_cost) == (
        "Savings plus",
        "savings",
        Decimal("12.50"),
        Decimal("3.00"),
    )
    # Blank cost and absent description keep what was stored.
    assert (p2.title, p2.price, p2.unit_cost, p2.description) == (
        "Travel card",
        Decimal("0.00"),
        Decimal("1.10"),
        "kept",
    )


def test_it_refuses_negative_prices_and_missing_titles(
    marketer, django_capture_on_commit_callbacks
):
    text = "offer_id,title,price,unit_cost\nP1,Card,-5,1\nP2,,3,1\nP3,Loan,1.005,1\n"
    before = stored()
    job = import_text(django_capture_on_commit_callbacks, text, by=marketer, kind="offers")
    assert job.status == Job.Status.FAILED
    upload = Upload.objects.get(job=job)
    messages = [e["message"] for e in upload.summary["errors"]]
    assert messages == [
        "Row 1 (line 2), column 'price': '-5' is negative",
        "Row 2 (line 3), column 'title': is empty, but Title is required",
        "Row 3 (line 4), column 'price': '1.005' has more than two decimals",
    ]
    assert stored() == before


INTERACTIONS = """customer_id,offer_id,event,timestamp,revenue,campaign
C1,P1,impression,2024-05-01 10:00,,spring
C1,P1,click,2024-05-01T10:01:00+02:00,,spring
C2,P1,conversion,2024-05-02,49.90,spring
C9,P1,click,2024-05-02,,spring
C1,P7,click,2024-05-03,,spring
"""


@pytest.fixture
def catalogue():
    make_customer("C1")
    make_customer("C2")
    make_offer("P1")


def test_it_reports_interactions_of_unknown_customers_and_offers(
    marketer, catalogue, django_capture_on_commit_callbacks
):
    before = stored()
    job = import_text(
        django_capture_on_commit_callbacks, INTERACTIONS, by=marketer, kind="interactions"
    )
    assert job.status == Job.Status.FAILED
    assert (
        "Row 4 (line 5), column 'customer_id': 'C9' is not a known customer "
        "(import the customers first)"
    ) in job.message
    assert "Row 5 (line 6), column 'offer_id': 'P7' is not a known offer" in job.message
    assert stored() == before


def test_it_imports_the_known_interactions_once(
    marketer, catalogue, django_capture_on_commit_callbacks
):
    capture = django_capture_on_commit_callbacks
    job = import_text(
        capture, INTERACTIONS, by=marketer, kind="interactions", mode=Upload.Mode.VALID_ROWS
    )
    assert job.status == Job.Status.SUCCEEDED, job.message
    assert (job.result["created"], job.result["invalid"]) == (3, 2)
    click = Interaction.objects.get(kind="click")
    assert click.occurred_at == datetime(2024, 5, 1, 8, 1, tzinfo=UTC)
    assert Interaction.objects.get(kind="conversion").value == Decimal("49.90")
    assert Interaction.objects.get(kind="impression").campaign == "spring"
    after_first = stored()

    again = import_text(
        capture, INTERACTIONS, by=marketer, kind="interactions", mode=Upload.Mode.VALID_ROWS
    )
    assert (again.result["created"], again.result["updated"]) == (0, 3)
    assert stored() == after_first


def test_it_refuses_unknown_kinds_and_repeated_interactions(
    marketer, catalogue, django_capture_on_commit_callbacks
):
    text = (
        "customer_id,offer_id,kind,occurred_at\n"
        "C1,P1,hover,2024-05-01\nC1,P1,click,2024-05-01\nC1,P1,Click,2024-05-01\n"
    )
    job = import_text(django_capture_on_commit_callbacks, text, by=marketer, kind="interactions")
    messages = [e["message"] for e in Upload.objects.get(job=job).summary["errors"]]
    assert messages == [
        "Row 1 (line 2), column 'kind': 'hover' is not a kind of interaction "
        "(impression, click or conversion)",
        "Row 3 (line 4), column 'kind': 'click' repeats the same customer, offer, kind and "
        "time of row 2 (line 3)",
    ]


def test_it_guesses_interaction_columns(marketer):
    upload = upload_create(kind="interactions", file=csv_file(INTERACTIONS), by=marketer)
    assert upload.mapping == {
        "customer_external_id": "customer_id",
        "offer_external_id": "offer_id",
        "kind": "event",
        "occurred_at": "timestamp",
        "value": "revenue",
        "campaign": "campaign",
    }
