import pytest

from marketing.models import AuditEvent, CustomerIdentity
from marketing.pii import (
    mask_email,
    mask_name,
    mask_phone,
    mask_postal_code,
    masked_identity,
)
from marketing.services.audit import log_pii_view
from tests.factories import make_customer

IDENTITY = {
    "email": "jane.doe@example.com",
    "phone": "+44 20 7946 0958",
    "first_name": "Jane",
    "last_name": "Doe",
    "country": "GB",
    "postal_code": "SW1A 1AA",
}


def test_it_masks_an_email_keeping_only_first_letters_and_the_tld():
    assert mask_email("jane.doe@example.com") == "j***@e***.com"
    assert mask_email("x@localhost") == "x***@l***"
    assert mask_email("") == ""


def test_it_masks_a_phone_keeping_the_last_two_digits():
    assert mask_phone("+44 20 7946 0958") == "***58"
    assert mask_phone("112") == "***"
    assert mask_phone("") == ""


def test_it_masks_names_and_postal_codes():
    assert mask_name("Jane") == "J***"
    assert mask_name("  ") == ""
    assert mask_postal_code("SW1A 1AA") == "SW***"


@pytest.mark.django_db
def test_it_masks_every_identifier_for_a_user_without_the_pii_permission(viewer, marketer):
    identity = CustomerIdentity(**IDENTITY)
    for user in (viewer, marketer, None):
        shown = masked_identity(identity, user)
        assert shown["masked"] is True
        for name in ("email", "phone", "first_name", "last_name", "postal_code"):
            assert shown[name] != IDENTITY[name]
            assert IDENTITY[name] not in str(shown)
        assert shown["country"] == "GB"


@pytest.mark.django_db
def test_it_shows_real_identifiers_to_a_steward(steward):
    shown = masked_identity(CustomerIdentity(**IDENTITY), steward)
    assert shown == {"masked": False, **IDENTITY}


@pytest.mark.django_db
def test_it_gives_blanks_for_a_customer_without_identity(steward, viewer):
    assert masked_identity(None, viewer)["email"] == ""
    assert masked_identity(None, steward)["email"] == ""


@pytest.mark.django_db
def test_it_logs_one_pii_view_event_for_many_customers(steward):
    customers = [
        make_customer(identity=IDENTITY | {"email": f"p{i}@example.com"}) for i in range(3)
    ]
    log_pii_view(user=steward, customers=customers, where="test list")
    event = AuditEvent.objects.get()
    assert event.action == AuditEvent.Action.PII_VIEW
    assert event.details == {"where": "test list", "customers": [c.pseudonym for c in customers]}
    assert "example.com" not in str(event.details)
