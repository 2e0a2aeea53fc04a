"""The audit log: one event per change, with who made it and what it was made to."""

import pytest
from django.contrib.auth.models import AnonymousUser

from marketing.models import AuditEvent
from marketing.services.audit import audit_log

pytestmark = pytest.mark.django_db


def test_it_stores_an_int_target_ref_as_its_string() -> None:
    event = audit_log(
        actor=None, action=AuditEvent.Action.UPLOAD, target_type="upload", target_ref=42
    )

    event.refresh_from_db()
    assert event.target_ref == "42"
    assert AuditEvent.objects.filter(target_type="upload", target_ref="42").exists()


def test_it_records_an_anonymous_actor_as_nobody() -> None:
    event = audit_log(
        actor=AnonymousUser(), action=AuditEvent.Action.UPLOAD, target_type="upload", target_ref="7"
    )

    assert event.actor is None


def test_it_records_the_signed_in_user(marketer) -> None:
    event = audit_log(actor=marketer, action=AuditEvent.Action.UPLOAD, target_type="upload")

    assert event.actor == marketer
    assert event.target_ref == ""
