"""Queries built once and run again with new values (``marketing.prepared``)."""

from datetime import timedelta

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.db.models import BooleanField, DateTimeField, Exists, ExpressionWrapper, OuterRef
from django.utils import timezone

from marketing.models import Customer, Purpose, Suppression
from marketing.prepared import PreparedQuery
from marketing.selectors.consent import profiling_use_q
from tests.factories import make_customer, record_consent

pytestmark = pytest.mark.django_db

EXTERNAL_ID = Customer._meta.get_field("external_id")


def people(external_id: str, now):
    return (
        Customer.objects.filter(external_id=external_id)
        .annotate(
            may_profile=ExpressionWrapper(
                profiling_use_q(customer="pk", now=now), output_field=BooleanField()
            ),
            suppressed=Exists(Suppression.objects.filter(customer=OuterRef("pk"))),
        )
        .order_by("pk")
        .values_list("pk", "attributes", "may_profile", "suppressed")
    )


def test_it_returns_what_the_queryset_returns_for_each_set_of_values():
    now = timezone.now()
    ada = make_customer("ADA", age=36, region="north")
    record_consent(ada, Purpose.PROFILING, expires_at=now + timedelta(days=2))
    bob = make_customer("BOB", tags=["a", "b"])
    Suppression.objects.create(customer=bob, reason="asked")
    read = PreparedQuery(people, external_id=EXTERNAL_ID, now=DateTimeField())

    for external_id, at in [
        ("ADA", now),
        ("BOB", now),
        ("ADA", now + timedelta(days=3)),  # past the consent's expiry
        ("NOBODY", now),
    ]:
        assert read.rows(external_id=external_id, now=at) == list(people(external_id, at))
    # The rows are converted as the queryset converts them: JSON, booleans.
    assert read.rows(external_id="ADA", now=now) == [
        (ada.pk, {"age": 36, "region": "north"}, True, False)
    ]
    assert read.rows(external_id="ADA", now=now + timedelta(days=3))[0][2] is False
    assert read.rows(external_id="BOB", now=now) == [(bob.pk, {"tags": ["a", "b"]}, False, True)]


def test_it_sees_rows_written_after_it_was_built():
    read = PreparedQuery(people, external_id=EXTERNAL_ID, now=DateTimeField())
    assert read.rows(external_id="LATE", now=timezone.now()) == []

    late = make_customer("LATE")
    record_consent(late, Purpose.PROFILING)

    assert read.rows(external_id="LATE", now=timezone.now()) == [(late.pk, {}, True, False)]


def test_it_refuses_a_value_the_query_does_not_use():
    read = PreparedQuery(
        lambda external_id, now: people(external_id, None),
        external_id=EXTERNAL_ID,
        now=DateTimeField(),
    )
    with pytest.raises(ImproperlyConfigured, match="'now'"):
        read.rows(external_id="ADA", now=timezone.now())


def test_it_asks_for_every_value_and_only_those():
    read = PreparedQuery(people, external_id=EXTERNAL_ID, now=DateTimeField())
    with pytest.raises(TypeError):
        read.rows(external_id="ADA")
    with pytest.raises(TypeError):
        read.rows(external_id="ADA", now=timezone.now(), extra=1)


def test_it_reads_only_values_lists():
    read = PreparedQuery(
        lambda external_id: Customer.objects.filter(external_id=external_id),
        external_id=EXTERNAL_ID,
    )
    with pytest.raises(ImproperlyConfigured, match="values_list"):
        read.rows(external_id="ADA")
