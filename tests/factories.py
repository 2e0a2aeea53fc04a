"""Small factories for test data (plain functions; no magic)."""

import itertools
from datetime import datetime, timedelta

from django.utils import timezone

from marketing.models import ConsentRecord, Customer, CustomerIdentity, Offer
from marketing.pseudonyms import pseudonym_for
from marketing.services.current_consent import current_consent_refresh

_seq = itertools.count(1)


def make_customer(
    external_id: str | None = None, *, identity: dict | None = None, **attributes
) -> Customer:
    external_id = external_id or f"C{next(_seq):06d}"
    customer = Customer.objects.create(
        external_id=external_id, pseudonym=pseudonym_for(external_id), attributes=attributes
    )
    if identity is not None:
        CustomerIdentity.objects.create(customer=customer, **identity)
    return customer


def make_offer(external_id: str | None = None, **fields) -> Offer:
    external_id = external_id or f"O{next(_seq):05d}"
    fields.setdefault("title", f"Offer {external_id}")
    return Offer.objects.create(external_id=external_id, **fields)


def record_consent(
    customer: Customer,
    purpose: str,
    status: str = ConsentRecord.Status.GRANTED,
    *,
    effective_at: datetime | None = None,
    days_ago: float | None = None,
    expires_at: datetime | None = None,
    source: str = ConsentRecord.Source.FORM,
) -> ConsentRecord:
    if effective_at is None:
        effective_at = timezone.now() - timedelta(days=days_ago if days_ago is not None else 30)
    record = ConsentRecord.objects.create(
        customer=customer,
        purpose=purpose,
        status=status,
        effective_at=effective_at,
        expires_at=expires_at,
        source=source,
        notice_version="v1",
    )
    # As every writer of the history does: the current consent follows in the same step.
    current_consent_refresh(customer_ids=[customer.pk])
    return record
