"""Data migrations, run from the state before them."""

from datetime import timedelta

import pytest
from django.db import connection
from django.db.migrations.executor import MigrationExecutor
from django.utils import timezone

from marketing.pseudonyms import erasure_token, pseudonym_for

BEFORE = [("marketing", "0011_data_access_audit")]
AFTER = [("marketing", "0012_erasure_tokens_for_earlier_erasures")]


def migrate(targets):
    executor = MigrationExecutor(connection)
    executor.loader.build_graph()
    executor.migrate(targets)
    return executor.loader.project_state(targets).apps


@pytest.fixture(autouse=True)
def _latest_schema_after():
    """Leave the database at the latest migrations, as later tests expect it."""
    yield
    executor = MigrationExecutor(connection)
    executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_it_turns_the_pseudonyms_earlier_erasures_kept_into_erasure_tokens():
    old = migrate(BEFORE)
    erased, kept = pseudonym_for("C-ERASED"), pseudonym_for("C-KEPT")
    Audience = old.get_model("marketing", "Audience")
    AuditEvent = old.get_model("marketing", "AuditEvent")
    old.get_model("marketing", "Customer").objects.create(external_id="C-KEPT", pseudonym=kept)
    audience = Audience.objects.create(name="Savers")
    for pseudonym in (erased, kept):
        audience.members.create(pseudonym=pseudonym)
    AuditEvent.objects.create(action="erasure", target_type="customer", target_ref=erased)
    AuditEvent.objects.create(
        action="pii_view", target_type="customer", details={"customers": [erased, kept]}
    )

    new = migrate(AFTER)

    token = erasure_token(erased)
    members = new.get_model("marketing", "AudienceMember").objects.order_by("pk")
    assert list(members.values_list("pseudonym", flat=True)) == [token, kept]
    events = new.get_model("marketing", "AuditEvent").objects.order_by("pk")
    assert events[0].target_ref == token
    assert events[1].details == {"customers": [token, kept]}


@pytest.mark.django_db
def test_it_leaves_no_table_of_plain_text_api_tokens():
    assert "authtoken_token" not in connection.introspection.table_names()


@pytest.mark.django_db(transaction=True)
def test_it_fills_the_current_consent_from_the_history():
    old = migrate([("marketing", "0012_erasure_tokens_for_earlier_erasures")])
    Customer = old.get_model("marketing", "Customer")
    ConsentRecord = old.get_model("marketing", "ConsentRecord")
    now = timezone.now()
    a = Customer.objects.create(external_id="M-A", pseudonym=pseudonym_for("M-A"))
    b = Customer.objects.create(external_id="M-B", pseudonym=pseudonym_for("M-B"))
    Customer.objects.create(external_id="M-C", pseudonym=pseudonym_for("M-C"))
    history = [
        (a, "profiling", "granted", 10, None),
        (a, "profiling", "withdrawn", 2, None),
        (a, "model_training", "granted", 5, now - timedelta(days=1)),
        (b, "profiling", "granted", 3, None),
        (b, "profiling", "withdrawn", -1, None),  # tomorrow
    ]
    records = [
        ConsentRecord.objects.create(
            customer=customer,
            purpose=purpose,
            status=status,
            effective_at=now - timedelta(days=days_ago),
            expires_at=expires_at,
            source="form",
        )
        for customer, purpose, status, days_ago, expires_at in history
    ]

    new = migrate([("marketing", "0013_current_consent")])

    rows = new.get_model("marketing", "CurrentConsent").objects.values_list(
        "customer__external_id", "purpose", "status", "record_id", "pending_at"
    )
    assert sorted(rows) == [
        ("M-A", "model_training", "expired", records[2].pk, None),
        ("M-A", "profiling", "withdrawn", records[1].pk, None),
        ("M-B", "profiling", "granted", records[3].pk, records[4].effective_at),
    ]
