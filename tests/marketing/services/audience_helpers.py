"""Audience test data: many customers at once (bulk), each with an identity and a consent
history chosen by the caller, and shortcuts to freeze an audience and run an export."""

import itertools
from datetime import timedelta

from django.utils import timezone

from marketing.models import (
    Audience,
    ConsentRecord,
    Customer,
    CustomerIdentity,
    Export,
    Purpose,
    Segment,
    Suppression,
)
from marketing.pseudonyms import pseudonymiser
from marketing.services.audiences import audience_create, audience_freeze
from marketing.services.current_consent import current_consent_refresh
from marketing.services.exports import export_create
from marketing.services.jobs import run_job

GOOGLE_PURPOSES = (Purpose.AD_TARGETING, Purpose.AD_USER_DATA, Purpose.AD_PERSONALIZATION)
_batch = itertools.count(1)


def make_people(
    n: int,
    *,
    country: str = "US",
    purposes=(Purpose.AD_TARGETING,),
    status: str = ConsentRecord.Status.GRANTED,
    expired: bool = False,
    withdrawn: bool = False,
    suppressed: bool = False,
    identity: bool = True,
    attributes: dict | None = None,
) -> list[Customer]:
    """``n`` customers with unique email and phone, and one consent history for ``purposes``:
    granted (or ``status``) 30 days ago, optionally expired yesterday or withdrawn since."""
    prefix = f"P{next(_batch):03d}-"
    make = pseudonymiser()
    customers = Customer.objects.bulk_create(
        [
            Customer(
                external_id=f"{prefix}{i:05d}",
                pseudonym=make(f"{prefix}{i:05d}"),
                attributes=attributes or {},
            )
            for i in range(n)
        ]
    )
    customers = list(Customer.objects.filter(external_id__startswith=prefix).order_by("pk"))
    if identity:
        CustomerIdentity.objects.bulk_create(
            [
                CustomerIdentity(
                    customer=c,
                    email=f"{c.external_id.lower()}@example.com",
                    phone=f"+1 202 555 {i % 10000:04d}" if country in ("US", "") else "",
                    first_name="Jane",
                    last_name="Doe",
                    country=country,
                    postal_code="20500",
                )
                for i, c in enumerate(customers)
            ]
        )
    now = timezone.now()
    records = []
    for c in customers:
        for purpose in purposes:
            records.append(
                ConsentRecord(
                    customer=c,
                    purpose=purpose,
                    status=status,
                    effective_at=now - timedelta(days=30),
                    expires_at=now - timedelta(days=1) if expired else None,
                    source="form",
                    notice_version="v1",
                )
            )
            if withdrawn:
                records.append(
                    ConsentRecord(
                        customer=c,
                        purpose=purpose,
                        status=ConsentRecord.Status.WITHDRAWN,
                        effective_at=now - timedelta(days=2),
                        source="form",
                        notice_version="v1",
                    )
                )
    ConsentRecord.objects.bulk_create(records)
    current_consent_refresh(customer_ids=[c.pk for c in customers])
    if suppressed:
        Suppression.objects.bulk_create([Suppression(customer=c, reason="test") for c in customers])
    return customers


def everyone_segment(name: str = "Everyone") -> Segment:
    return Segment.objects.create(name=name, rules={"op": "and", "rules": []})


def frozen_audience(by, *, segment: Segment | None = None, **kwargs) -> Audience:
    segment = segment or everyone_segment()
    audience = audience_create(
        name=kwargs.pop("name", "Audience"), segment=segment, by=by, **kwargs
    )
    return audience_freeze(audience=audience, by=by)


def exported(audience: Audience, platform: str, by) -> Export:
    """Create the export and run its job right away (the test transaction never commits)."""
    export = export_create(audience=audience, platform=platform, by=by)
    run_job(export.job_id)
    export.refresh_from_db()
    export.job.refresh_from_db()
    return export
