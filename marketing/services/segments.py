"""Writing segments: every change is validated against the rule engine and audit-logged, and
starts a count of the segment (a job) so that its pages show figures for the new rules."""

from typing import Any

from django.db import transaction

from marketing.models import AuditEvent, Segment
from marketing.segments import compile_rules
from marketing.services.audit import Actor, audit_log, stored_user
from marketing.services.figures import segment_figures_refresh


def _log(segment: Segment, change: str, by: Actor) -> None:
    audit_log(
        actor=by,
        action=AuditEvent.Action.SEGMENT_CHANGE,
        target_type="segment",
        target_ref=segment.pk,
        details={"change": change, "name": segment.name, "rules": segment.rules},
    )


@transaction.atomic
def segment_create(
    *, name: str, rules: dict[str, Any], description: str = "", by: Actor
) -> Segment:
    compile_rules(rules)
    segment = Segment.objects.create(
        name=name,
        description=description,
        rules=rules,
        created_by=stored_user(by),
    )
    _log(segment, "created", by)
    segment_figures_refresh(segment=segment, by=by)
    return segment


@transaction.atomic
def segment_update(
    *, segment: Segment, name: str, rules: dict[str, Any], description: str, by: Actor
) -> Segment:
    compile_rules(rules)
    rules_changed = rules != segment.rules
    segment.name, segment.rules, segment.description = name, rules, description
    segment.save(update_fields=["name", "rules", "description", "updated_at"])
    _log(segment, "updated", by)
    if rules_changed:
        segment_figures_refresh(segment=segment, by=by)
    return segment


@transaction.atomic
def segment_delete(*, segment: Segment, by: Actor) -> None:
    _log(segment, "deleted", by)
    segment.delete()
