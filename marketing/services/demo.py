"""The demo data, loaded from the overview's empty state into an empty customer base."""

from marketing.dbstats import analyze
from marketing.ingest.demo import load_demo_data
from marketing.models import (
    AuditEvent,
    ConsentRecord,
    Customer,
    CustomerIdentity,
    Interaction,
    Offer,
    ProfileField,
)
from marketing.services.audit import audit_log


class DemoDataRefused(Exception):
    """The customer base is not empty; the message says so."""


def demo_data_load(*, by) -> dict[str, int]:
    """Load the demo data (audit-logged); returns what was written."""
    if Customer.objects.exists():
        raise DemoDataRefused("The demo data only goes into an empty customer base.")
    counts = load_demo_data()
    analyze(Customer, CustomerIdentity, ConsentRecord, Offer, Interaction, ProfileField)
    audit_log(actor=by, action=AuditEvent.Action.IMPORT, target_type="demo", details=counts)
    return counts
