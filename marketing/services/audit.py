from typing import Any, TypeAlias

from django.contrib.auth.base_user import AbstractBaseUser
from django.contrib.auth.models import AnonymousUser

from marketing.models import AuditEvent

# Who asks a service for a change: the request's user (anonymous on a public page), or
# nobody for the system itself (a job, a schedule, a management command).
Actor: TypeAlias = AbstractBaseUser | AnonymousUser | None


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
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        action=action,
        target_type=target_type,
        target_ref=str(target_ref),
        details=details or {},
    )
