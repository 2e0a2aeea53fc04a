from typing import Any

from marketing.models import AuditEvent


def audit_log(
    *,
    actor,
    action: str,
    target_type: str,
    target_ref: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    return AuditEvent.objects.create(
        actor=actor if getattr(actor, "is_authenticated", False) else None,
        action=action,
        target_type=target_type,
        target_ref=str(target_ref),
        details=details or {},
    )
