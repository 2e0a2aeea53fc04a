"""Cursor pages of the API's large lists: next/previous links, no count, disjoint pages in a
stable order under ties, every offered order indexed, a bad cursor answered 400."""

from datetime import timedelta

import pytest
from django.utils import timezone

from marketing.api.pagination import KeysetCursorPagination
from marketing.api.urls import router
from marketing.keyset import KeysetOrdering
from marketing.models import ConsentRecord, Customer, Interaction
from tests.factories import make_customer, make_offer, record_consent

pytestmark = pytest.mark.django_db


def _walk(client, url: str, params: dict, link: str = "next") -> list[list[int]]:
    pages, body = [], client.get(url, params).json()
    while True:
        assert "count" not in body
        pages.append([row["id"] for row in body["results"]])
        if not body[link]:
            return pages
        body = client.get(body[link]).json()


def _cursor_viewsets() -> list[type]:
    return [
        viewset
        for _, viewset, _ in router.registry
        if getattr(viewset, "pagination_class", None) is KeysetCursorPagination
    ]


def test_it_pages_customers_by_cursor_without_a_count(viewer_client, settings):
    ids = [make_customer().pk for _ in range(120)]

    pages = _walk(viewer_client, "/api/customers/", {})

    assert [len(p) for p in pages] == [50, 50, 20]
    assert [pk for page in pages for pk in page] == sorted(ids)


def test_it_breaks_ties_by_id_in_either_direction(viewer_client):
    ids = [make_customer().pk for _ in range(75)]
    Customer.objects.update(created_at=timezone.now())  # as one import leaves them

    newest = _walk(viewer_client, "/api/customers/", {"ordering": "-created_at"})
    oldest = _walk(viewer_client, "/api/customers/", {"ordering": "created_at"})

    assert [pk for page in newest for pk in page] == sorted(ids, reverse=True)
    assert [pk for page in oldest for pk in page] == sorted(ids)


def test_it_goes_back_to_the_same_pages(viewer_client):
    for _ in range(120):
        make_customer()
    forward = _walk(viewer_client, "/api/customers/", {"ordering": "-created_at"})
    body = viewer_client.get("/api/customers/", {"ordering": "-created_at"}).json()
    while body["next"]:
        body = viewer_client.get(body["next"]).json()

    backward = [[row["id"] for row in body["results"]]]
    backward += _walk(viewer_client, body["previous"], {}, link="previous")

    assert backward[::-1] == forward


def test_it_pages_interactions_newest_first_ties_by_id(viewer_client):
    customer, offer = make_customer(), make_offer()
    start = timezone.now() - timedelta(days=1)
    kinds = ["impression", "click", "conversion"]
    # Three responses share each moment.
    Interaction.objects.bulk_create(
        Interaction(
            customer=customer,
            offer=offer,
            kind=kinds[i % 3],
            occurred_at=start + timedelta(seconds=i // 3),
        )
        for i in range(120)
    )
    expected = list(
        Interaction.objects.order_by("-occurred_at", "-id").values_list("pk", flat=True)
    )

    pages = _walk(viewer_client, "/api/interactions/", {})

    assert [len(p) for p in pages] == [50, 50, 20]
    assert [pk for page in pages for pk in page] == expected


def test_it_pages_consent_records_with_a_filter(steward_client):
    customers = [make_customer() for _ in range(70)]
    for customer in customers:
        record_consent(customer, "email_marketing")
        record_consent(customer, "profiling")
    expected = list(
        ConsentRecord.objects.filter(purpose="profiling")
        .order_by("-id")
        .values_list("pk", flat=True)
    )

    pages = _walk(steward_client, "/api/consents/", {"purpose": "profiling"})

    assert [len(p) for p in pages] == [50, 20]
    assert [pk for page in pages for pk in page] == expected


@pytest.mark.parametrize("cursor", ["garbage", "a:b:c", "x" * 500, "%00"])
def test_it_answers_400_naming_the_cursor(viewer_client, cursor):
    make_customer()
    response = viewer_client.get("/api/customers/", {"cursor": cursor})
    assert response.status_code == 400
    assert "This page link is not valid" in response.json()["cursor"][0]


def test_it_answers_400_to_a_cursor_of_another_ordering(viewer_client):
    for _ in range(60):
        make_customer()
    next_link = viewer_client.get("/api/customers/", {"ordering": "external_id"}).json()["next"]

    response = viewer_client.get(next_link.replace("ordering=external_id", "ordering=-id"))

    assert response.status_code == 400
    assert "another order" in response.json()["cursor"][0]


def test_it_searches_external_ids_by_prefix_only(viewer_client):
    wanted = make_customer("CUST-100")
    make_customer("XCUST-100")

    by_prefix = viewer_client.get("/api/customers/", {"search": "cust-1"}).json()["results"]
    by_middle = viewer_client.get("/api/customers/", {"search": "ST-10"}).json()["results"]

    assert [c["id"] for c in by_prefix] == [wanted.pk]
    assert by_middle == []


def test_every_cursor_paged_list_offers_only_indexed_orders():
    viewsets = _cursor_viewsets()
    assert {v.queryset.model for v in viewsets} == {Customer, Interaction, ConsentRecord}
    for viewset in viewsets:
        model = viewset.queryset.model
        indexed = {tuple(index.fields) for index in model._meta.indexes if not index.condition}
        for name in [*viewset.ordering_fields, viewset.ordering]:
            fields = KeysetOrdering.of(model, name).fields
            # One field: the primary key or a unique one, which has its own index.
            assert len(fields) == 1 or fields in indexed, (model.__name__, name)
