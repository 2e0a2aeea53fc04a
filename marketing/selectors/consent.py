"""The one place that answers "who may be used for purpose P now".

The current state of a (customer, purpose) pair is its latest consent record by
``effective_at`` (ties broken by id). A customer may be used when that record is ``granted``
and has not expired. Every feature that trains on, scores for, or exports a person asks here.

Asked about now (``at`` left out), the answer comes from ``CurrentConsent``, the state in
effect kept as data in the transaction of every change to the history: an indexed join,
whatever the size of the base. Asked about a given time (``at``: what held when a model was
trained, an audience frozen), it is worked out from the history.
"""

from collections.abc import Collection
from datetime import datetime
from typing import NamedTuple, TypeVar

from django.db import connection
from django.db.models import Count, Exists, Model, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from marketing.models import ConsentRecord, CurrentConsent, Customer, Purpose

M = TypeVar("M", bound=Model)


def _latest_record_id(purpose: str, at: datetime):
    return Subquery(
        ConsentRecord.objects.filter(
            customer=OuterRef("customer_id"), purpose=purpose, effective_at__lte=at
        )
        .order_by("-effective_at", "-id")
        .values("id")[:1]
    )


def _valid_now(now: datetime | None = None) -> QuerySet[CurrentConsent]:
    """Rows that make their customer usable now: a grant neither expired nor followed by a
    record that has taken effect since the row was written. ``now`` is the clock's unless
    given (a query built once and run later with the moment filled in: ``marketing.prepared``)."""
    if now is None:
        now = timezone.now()
    return CurrentConsent.objects.filter(
        Q(expires_at__isnull=True) | Q(expires_at__gt=now),
        Q(pending_at__isnull=True) | Q(pending_at__gt=now),
        status=CurrentConsent.Status.GRANTED,
    )


def valid_current_consents(
    purpose: str, *, now: datetime | None = None
) -> QuerySet[CurrentConsent]:
    """Rows that make their customer usable for ``purpose`` now (``_valid_now``)."""
    return _valid_now(now).filter(purpose=purpose)


def consented_counts() -> dict[str, int]:
    """How many customers may be used now, per purpose: one read of the grants in the
    current consent table, without a join to the customers."""
    counts = dict.fromkeys(Purpose.values, 0)
    for purpose, n in (
        _valid_now()
        .order_by()
        .values("purpose")
        .annotate(n=Count("id"))
        .values_list("purpose", "n")
    ):
        counts[purpose] = n
    return counts


def valid_consent_records(purpose: str, *, at: datetime | None = None) -> QuerySet[ConsentRecord]:
    """Records that make their customer usable for ``purpose`` at ``at`` (default: now)."""
    if at is None:
        return ConsentRecord.objects.filter(
            id__in=valid_current_consents(purpose).values("record_id")
        )
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


def _consent_exists(
    purpose: str, at: datetime | None, customer: str, now: datetime | None = None
) -> Q:
    """Whether the row's customer (its field ``customer``) may be used for ``purpose``."""
    rows: QuerySet = (
        valid_current_consents(purpose, now=now)
        if at is None
        else valid_consent_records(purpose, at=at)
    )
    return Q(Exists(rows.filter(customer=OuterRef(customer))))


def consent_q(purpose: str, *, at: datetime | None = None) -> Q:
    """The consent condition as a Q on Customer, for composing with other filters."""
    return _consent_exists(purpose, at, "pk")


def profiling_use_q(
    *, at: datetime | None = None, customer: str = "customer_id", now: datetime | None = None
) -> Q:
    """Whether the row's customer (the field ``customer`` of the row) may be profiled at
    ``at``, as a Q: for annotating rows whose result is shown only to such customers. Without
    ``at``, from the current consent table as of ``now`` (``_valid_now``)."""
    return _consent_exists(Purpose.PROFILING, at, customer, now)


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
    if at is None:
        return valid_current_consents(purpose).filter(customer=customer).exists()
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
    if at is None:
        in_effect = CurrentConsent.objects.filter(customer=customer, record__isnull=False)
        return {
            record.purpose: record
            for record in ConsentRecord.objects.filter(id__in=in_effect.values("record_id"))
        }
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


# Why a customer may not be used for a purpose, in the order pages show them.
EXCLUSION_REASONS = {
    "no_record": _("No consent record"),
    "denied": _("Consent denied"),
    "withdrawn": _("Consent withdrawn"),
    "expired": _("Consent expired"),
}


def consent_exclusions(
    purpose: str, *, queryset: QuerySet[Customer], at: datetime | None = None
) -> dict[str, int]:
    """How many customers of ``queryset`` may not be used for ``purpose`` at ``at`` (default
    now), by reason: the status of the state that decides (the current consent row now, the
    latest record at a given time): none, denied, withdrawn, or a grant that has expired.

    Now, a grant that a record dated ahead has overtaken, before the scheduled refresh puts
    that record in effect (minutes), counts as expired; a row for a record not yet in effect
    counts as no record.
    """
    if at is None:
        status: Subquery = Subquery(
            CurrentConsent.objects.filter(customer=OuterRef("pk"), purpose=purpose).values(
                "status"
            )[:1]
        )
        statuses: dict[str, tuple[str | None, ...]] = {
            "no_record": (None, CurrentConsent.Status.PENDING),
            "denied": (CurrentConsent.Status.DENIED,),
            "withdrawn": (CurrentConsent.Status.WITHDRAWN,),
            "expired": (CurrentConsent.Status.GRANTED, CurrentConsent.Status.EXPIRED),
        }
    else:
        status = Subquery(
            ConsentRecord.objects.filter(
                customer=OuterRef("pk"), purpose=purpose, effective_at__lte=at
            )
            .order_by("-effective_at", "-id")
            .values("status")[:1]
        )
        statuses = {
            "no_record": (None,),
            "denied": (ConsentRecord.Status.DENIED,),
            "withdrawn": (ConsentRecord.Status.WITHDRAWN,),
            "expired": (ConsentRecord.Status.GRANTED,),
        }
    rows = (
        queryset.exclude(consent_q(purpose, at=at))
        .annotate(decided_by=status)
        .order_by()
        .values_list("decided_by")
    )
    # One pass: the status looked up once per customer in a subquery, summed by a plain
    # aggregate around it. No GROUP BY, so no sort of the customers to spill to disk.
    sums, params = [], []
    for key in EXCLUSION_REASONS:
        values = [v for v in statuses[key] if v is not None]
        tests = (["r.decided_by IS NULL"] if None in statuses[key] else []) + (
            [f"r.decided_by IN ({', '.join(['%s'] * len(values))})"] if values else []
        )
        sums.append(f"COALESCE(SUM(CASE WHEN {' OR '.join(tests)} THEN 1 ELSE 0 END), 0)")
        params += values
    inner, inner_params = rows.query.sql_with_params()
    # The fence keeps the database from merging the subquery into the sums, where the lookup
    # would be repeated once per reason.
    fence = "OFFSET 0" if connection.vendor == "postgresql" else "LIMIT -1 OFFSET 0"
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {', '.join(sums)} FROM ({inner} {fence}) r", [*params, *inner_params]
        )
        counts = cursor.fetchone()
    return dict(zip(EXCLUSION_REASONS, counts, strict=True))
