from collections.abc import Iterable
from typing import Any, TypeAlias, cast

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser, User

from marketing.models import AuditEvent, Customer, Upload

# Who asks a service for a change: the request's user (anonymous on a public page), or
# nobody for the system itself (a job, a schedule, a management command).
Actor: TypeAlias = AbstractBaseUser | AnonymousUser | None


def stored_user(actor: Actor) -> User | None:
    """The user a row records as its author: nobody for an anonymous visitor or the system."""
    # AUTH_USER_MODEL is auth.User, so an authenticated actor is one.
    return cast(User, actor) if getattr(actor, "is_authenticated", False) else None


def audit_log(
    *,
    actor: Actor,
    action: str,
    target_type: str,
    target_ref: str | int = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Record one event; ``target_ref`` is stored as text (a row's id or a pseudonym)."""
    return AuditEvent.objects.create(
        actor=stored_user(actor),
        action=action,
        target_type=target_type,
        target_ref=str(target_ref),
        details=details or {},
    )


def log_pii_view(*, user, customers: Customer | Iterable[Customer], where: str) -> None:
    """One audit event per page or response that showed real identifiers (not per row)."""
    if isinstance(customers, Customer):
        ref, pseudonyms = customers.pseudonym, [customers.pseudonym]
    else:
        ref, pseudonyms = "", [c.pseudonym for c in customers]
    if not pseudonyms:
        return
    audit_log(
        actor=user,
        action=AuditEvent.Action.PII_VIEW,
        target_type="customer",
        target_ref=ref,
        details={"where": where, "customers": pseudonyms},
    )


def log_revealed_upload_rows(
    *, upload: Upload, user, stored: list[dict[str, Any]], shown: list[dict[str, Any]]
) -> None:
    """One audit event when a page shows identifiers of the upload's row problems that are
    stored masked (``shown`` is ``stored`` as the user sees it)."""
    rows = [
        s["row"]
        for s, e in zip(stored, shown, strict=True)
        if s.get("masked") and not e.get("masked")
    ]
    if rows:
        audit_log(
            actor=user,
            action=AuditEvent.Action.PII_VIEW,
            target_type="upload",
            target_ref=upload.pk,
            details={"where": "upload page", "rows": rows},
        )
