from datetime import timedelta

import pytest
from django.utils import timezone

from marketing.models import Interaction, Offer
from tests.factories import make_customer, make_offer

pytestmark = pytest.mark.django_db


def test_it_lets_a_marketer_manage_offers(marketer_client):
    response = marketer_client.post(
        "/api/offers/",
        {"external_id": "TD-1", "title": "Term deposit", "category": "savings", "price": "10.00"},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    offer = Offer.objects.get()
    response = marketer_client.patch(
        f"/api/offers/{offer.pk}/", {"active": False}, content_type="application/json"
    )
    assert response.status_code == 200
    assert Offer.objects.get().active is False


def test_it_refuses_offer_writes_for_a_viewer(viewer_client):
    make_offer("TD-1")
    assert viewer_client.get("/api/offers/").json()["count"] == 1
    response = viewer_client.post(
        "/api/offers/", {"external_id": "X", "title": "X"}, content_type="application/json"
    )
    assert response.status_code == 403


def test_it_filters_interactions_by_customer_offer_and_kind(viewer_client):
    a, b = make_customer(), make_customer()
    first, second = make_offer("O1"), make_offer("O2")
    now = timezone.now()
    Interaction.objects.bulk_create(
        [
            Interaction(customer=a, offer=first, kind="click", occurred_at=now),
            Interaction(customer=a, offer=second, kind="impression", occurred_at=now),
            Interaction(customer=b, offer=first, kind="click", occurred_at=now - timedelta(days=1)),
        ]
    )

    def ids(**params):
        return len(viewer_client.get("/api/interactions/", params).json()["results"])

    assert ids(customer=a.pk) == 2
    assert ids(kind="click") == 2
    assert ids(offer=second.pk) == 1
    assert ids(offer_external_id="O1", customer=b.pk) == 1


def test_it_keeps_interactions_read_only(marketer_client):
    response = marketer_client.post("/api/interactions/", {}, content_type="application/json")
    assert response.status_code == 405
