"""Appending to a customer's consent history (never editing it), with an audit trail."""

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from marketing.errors import ApplicationError
from marketing.models import AuditEvent, ConsentRecord, Customer, LawfulBasis, Purpose
from marketing.selectors.consent import current_consents
from marketing.services.audit import Actor, audit_log, stored_user
from marketing.services.current_consent import current_consent_lock, current_consent_record_added


class ConsentError(ApplicationError, ValueError):
    """The consent event cannot be recorded as given; the message says why."""


def _check_choice(name: str, value: str, choices: list[str]) -> None:
    if value not in choices:
        raise ConsentError(f"{name} must be one of {', '.join(choices)}, not {value!r}")


@transaction.atomic
def consent_record_append(
    *,
    customer: Customer,
    purpose: str,
    status: str,
    lawful_basis: str,
    source: str,
    notice_version: str,
    effective_at: datetime | None = None,
    expires_at: datetime | None = None,
    note: str = "",
    by: Actor,
) -> ConsentRecord:
    """Add one event to the history; the latest by ``effective_at`` is the current state,
    which the current consent table holds as of this transaction."""
    _check_choice("purpose", purpose, Purpose.values)
    _check_choice("status", status, ConsentRecord.Status.values)
    _check_choice("lawful_basis", lawful_basis, LawfulBasis.values)
    _check_choice("source", source, ConsentRecord.Source.values)
    effective_at = effective_at or timezone.now()
    if expires_at is not None and expires_at <= effective_at:
        raise ConsentError("The expiry must be later than the time the consent takes effect.")
    current_consent_lock(customer)
    record = ConsentRecord.objects.create(
        customer=customer,
        purpose=purpose,
        status=status,
        lawful_basis=lawful_basis,
        source=source,
        notice_version=notice_version,
        effective_at=effective_at,
        expires_at=expires_at,
        note=note,
        recorded_by=stored_user(by),
    )
    current_consent_record_added(record)
    audit_log(
        actor=by,
        action=AuditEvent.Action.CONSENT_CHANGE,
        target_type="customer",
        target_ref=customer.pseudonym,
        details={
            "record": record.pk,
            "purpose": purpose,
            "status": status,
            "lawful_basis": lawful_basis,
            "source": source,
            "notice_version": notice_version,
            "effective_at": effective_at.isoformat(),
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
    )
    return record


def consent_withdraw(
    *,
    customer: Customer,
    purpose: str,
    by: Actor,
    note: str = "",
    source: str = ConsentRecord.Source.ADMIN,
) -> ConsentRecord:
    """Withdraw now: as easy as granting, and recorded as a new event in the history."""
    current = current_consents(customer).get(purpose)
    return consent_record_append(
        customer=customer,
        purpose=purpose,
        status=ConsentRecord.Status.WITHDRAWN,
        lawful_basis=current.lawful_basis if current else LawfulBasis.CONSENT,
        source=source,
        notice_version=current.notice_version if current else "",
        note=note,
        by=by,
    )
