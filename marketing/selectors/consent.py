"""The one place that answers "who may be used for purpose P now".

The current state of a (customer, purpose) pair is its latest consent record by
``effective_at`` (ties broken by id). A customer may be used when that record is ``granted``
and has not expired. Every feature that trains on, scores for, or exports a person asks here.
"""

from collections.abc import Collection
from datetime import datetime
from typing import NamedTuple, TypeVar

from django.db.models import Exists, Model, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from marketing.models import ConsentRecord, Customer, Purpose

M = TypeVar("M", bound=Model)


def _latest_record_id(purpose: str, at: datetime):
    return Subquery(
        ConsentRecord.objects.filter(
            customer=OuterRef("customer_id"), purpose=purpose, effective_at__lte=at
        )
        .order_by("-effective_at", "-id")
        .values("id")[:1]
    )


def valid_consent_records(purpose: str, *, at: datetime | None = None) -> QuerySet[ConsentRecord]:
    """Records that make their customer usable for ``purpose`` at ``at`` (default: now)."""
    at = at or timezone.now()
    return ConsentRecord.objects.filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=at),
        purpose=purpose,
        status=ConsentRecord.Status.GRANTED,
        effective_at__lte=at,
        id=_latest_record_id(purpose, at),
    )


def customers_with_consent(
    purpose: str, *, at: datetime | None = None, queryset: QuerySet[Customer] | None = None
) -> QuerySet[Customer]:
    """Customers who may be used for ``purpose`` at ``at``, optionally within ``queryset``."""
    base = queryset if queryset is not None else Customer.objects.all()
    return base.filter(consent_q(purpose, at=at))


def consent_q(purpose: str, *, at: datetime | None = None) -> Q:
    """The consent condition as a Q on Customer, for composing with other filters."""
    records = valid_consent_records(purpose, at=at).filter(customer=OuterRef("pk"))
    return Q(Exists(records))


def profiling_use_q(*, at: datetime | None = None, customer: str = "customer_id") -> Q:
    """Whether the row's customer (the field ``customer`` of the row) may be profiled at
    ``at``, as a Q: for annotating rows whose result is shown only to such customers."""
    records = valid_consent_records(Purpose.PROFILING, at=at).filter(customer=OuterRef(customer))
    return Q(Exists(records))


def scores_for_use(rows: QuerySet[M], *, at: datetime | None = None) -> QuerySet[M]:
    """The rows of ``rows`` (scores, recommendations, explanations: anything with a
    ``customer``) whose customer has a valid ``profiling`` consent at ``at`` (default now).

    A score is the result of profiling the customer. Once they withdraw or deny that consent,
    or it expires, their stored scores and what was derived from them may no longer be used:
    not shown, not downloaded, not used to pick an audience or plan a campaign. Every reader
    of such rows asks here, so the rule lives in one place.
    """
    return rows.filter(profiling_use_q(at=at))


def has_consent(customer: Customer, purpose: str, *, at: datetime | None = None) -> bool:
    return customers_with_consent(purpose, at=at).filter(pk=customer.pk).exists()


class StandingRefusal(NamedTuple):
    status: str  # withdrawn or denied
    effective_at: datetime
    source: str


def standing_refusals(
    external_ids: Collection[str], purposes: Collection[str]
) -> dict[tuple[str, str], StandingRefusal]:
    """Refusals a CSV import may not override, by (customer external id, purpose): where the
    latest record from any source but a CSV import (the person through a form or the API, a
    data steward in the console) is a withdrawal or a denial.

    One query for a chunk of customers, whatever its size; the latest record per pair is a
    lookup on the (customer, purpose, date) index.
    """
    own = ConsentRecord.objects.exclude(source=ConsentRecord.Source.CSV_IMPORT)
    latest_own = (
        own.filter(customer=OuterRef("customer_id"), purpose=OuterRef("purpose"))
        .order_by("-effective_at", "-id")
        .values("id")[:1]
    )
    rows = own.filter(
        customer__external_id__in=external_ids,
        purpose__in=purposes,
        status__in=(ConsentRecord.Status.WITHDRAWN, ConsentRecord.Status.DENIED),
        id=Subquery(latest_own),
    ).values_list("customer__external_id", "purpose", "status", "effective_at", "source")
    return {
        (ext, purpose): StandingRefusal(status, at, source)
        for ext, purpose, status, at, source in rows
    }


def current_consents(customer: Customer, *, at: datetime | None = None) -> dict[str, ConsentRecord]:
    """The latest record per purpose for one customer (for pages and the access export)."""
    at = at or timezone.now()
    latest: dict[str, ConsentRecord] = {}
    for record in customer.consents.filter(effective_at__lte=at).order_by(
        "purpose", "-effective_at", "-id"
    ):
        latest.setdefault(record.purpose, record)
    return latest


def is_record_valid(record: ConsentRecord, *, at: datetime | None = None) -> bool:
    at = at or timezone.now()
    return record.status == ConsentRecord.Status.GRANTED and (
        record.expires_at is None or record.expires_at > at
    )
