"""Keyset pages: disjoint slices in a stable order, the same cost at any depth, and a clear
refusal of a cursor the list did not make."""

import pytest
from django.core import signing
from django.utils import timezone

from marketing.keyset import (
    CURSOR_SALT,
    BadCursor,
    KeysetOrdering,
    encode_cursor,
    keyset_page,
)
from marketing.models import Customer
from tests.factories import make_customer

pytestmark = pytest.mark.django_db


def _pages(ordering: KeysetOrdering, size: int) -> list[list[int]]:
    pages, cursor = [], None
    while True:
        page = keyset_page(Customer.objects.all(), ordering, size=size, cursor=cursor)
        pages.append([c.pk for c in page.rows])
        if page.next_cursor is None:
            return pages
        cursor = page.next_cursor


def test_it_adds_the_id_as_tiebreaker_unless_the_field_is_unique():
    assert KeysetOrdering.of(Customer, "-created_at").fields == ("created_at", "id")
    assert KeysetOrdering.of(Customer, "external_id").fields == ("external_id",)
    assert KeysetOrdering.of(Customer, "id").fields == ("id",)


def test_it_gives_disjoint_pages_in_a_stable_order_when_every_row_ties():
    ids = [make_customer().pk for _ in range(23)]
    Customer.objects.update(created_at=timezone.now())  # one import: one created_at

    pages = _pages(KeysetOrdering.of(Customer, "-created_at"), size=5)

    assert [len(p) for p in pages] == [5, 5, 5, 5, 3]
    assert [pk for page in pages for pk in page] == sorted(ids, reverse=True)


def test_a_deep_page_is_the_slice_after_its_cursor():
    ids = [make_customer(f"X{i:03d}").pk for i in range(40)]
    ordering = KeysetOrdering.of(Customer, "external_id")
    cursor = encode_cursor(ordering, ("X029",), backwards=False)

    page = keyset_page(Customer.objects.all(), ordering, size=5, cursor=cursor)

    assert [c.pk for c in page.rows] == ids[30:35]
    assert page.next_cursor is not None and page.previous_cursor is not None


def test_it_pages_back_from_the_end_to_the_first_page():
    ids = [make_customer().pk for _ in range(12)]
    ordering = KeysetOrdering.of(Customer, "id")
    last = keyset_page(
        Customer.objects.all(),
        ordering,
        size=5,
        cursor=encode_cursor(ordering, (ids[9],), backwards=False),
    )
    middle = keyset_page(Customer.objects.all(), ordering, size=5, cursor=last.previous_cursor)
    first = keyset_page(Customer.objects.all(), ordering, size=5, cursor=middle.previous_cursor)

    assert [c.pk for c in last.rows] == ids[10:]
    assert [c.pk for c in middle.rows] == ids[5:10]
    assert [c.pk for c in first.rows] == ids[:5]
    assert first.previous_cursor is None and first.next_cursor is not None


def test_a_page_back_before_deleted_rows_starts_the_list_again():
    ids = [make_customer().pk for _ in range(8)]
    ordering = KeysetOrdering.of(Customer, "id")
    Customer.objects.filter(pk__in=ids[:4]).delete()

    page = keyset_page(
        Customer.objects.all(),
        ordering,
        size=3,
        cursor=encode_cursor(ordering, (ids[4],), backwards=True),
    )

    assert [c.pk for c in page.rows] == ids[4:7]


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"o": "id", "p": ["seven"], "b": False}, "its id is not valid"),
        ({"o": "id", "p": [1, 2], "b": False}, "not a cursor of this list"),
        ({"o": "id", "p": [None], "b": False}, "not a cursor of this list"),
        ({"o": "-created_at", "p": ["x", 1], "b": False}, "another order"),
        (["id", 1], "not a cursor of this list"),
    ],
)
def test_it_refuses_a_signed_cursor_that_does_not_fit_the_list(payload, reason):
    token = signing.dumps(payload, salt=CURSOR_SALT)
    with pytest.raises(BadCursor, match=reason):
        keyset_page(Customer.objects.all(), KeysetOrdering.of(Customer, "id"), size=5, cursor=token)


def test_it_refuses_a_cursor_whose_position_was_changed():
    ordering = KeysetOrdering.of(Customer, "id")
    token = encode_cursor(ordering, (10,), backwards=False)
    signature = token.rpartition(":")[2]
    changed = signing.dumps({"o": "id", "p": [1], "b": False}, salt=CURSOR_SALT)
    forged = changed.rpartition(":")[0] + ":" + signature

    with pytest.raises(BadCursor, match="changed"):
        keyset_page(Customer.objects.all(), ordering, size=5, cursor=forged)


def test_it_refuses_a_datetime_that_is_not_one():
    ordering = KeysetOrdering.of(Customer, "-created_at")
    token = signing.dumps({"o": "-created_at", "p": ["yesterday", 3], "b": False}, salt=CURSOR_SALT)
    with pytest.raises(BadCursor, match="its created_at is not valid"):
        keyset_page(Customer.objects.all(), ordering, size=5, cursor=token)
