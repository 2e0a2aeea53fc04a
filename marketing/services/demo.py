"""The demo data, loaded from the overview's empty state into an empty customer base, and
MovieLens 100K, imported from a folder the user downloaded."""

from pathlib import Path

from marketing.dbstats import analyze
from marketing.ingest.demo import load_demo_data
from marketing.ingest.movielens import load_movielens
from marketing.models import (
    AuditEvent,
    ConsentRecord,
    Customer,
    CustomerIdentity,
    Interaction,
    Offer,
    ProfileField,
)
from marketing.services.audit import Actor, audit_log

LOADED_TABLES = (Customer, CustomerIdentity, ConsentRecord, Offer, Interaction, ProfileField)


class DemoDataRefused(Exception):
    """The customer base is not empty; the message says so."""


def demo_data_load(*, by) -> dict[str, int]:
    """Load the demo data (audit-logged); returns what was written."""
    if Customer.objects.exists():
        raise DemoDataRefused("The demo data only goes into an empty customer base.")
    counts = load_demo_data()
    analyze(*LOADED_TABLES)
    audit_log(actor=by, action=AuditEvent.Action.IMPORT, target_type="demo", details=counts)
    return counts


def movielens_load(*, folder: Path, by: Actor = None) -> dict[str, int]:
    """Import (or refresh) MovieLens 100K from ``folder`` beside whatever the base holds
    (audit-logged); returns what was written. IngestError names a missing file or a bad
    line and column, and then nothing is written."""
    counts = load_movielens(folder)
    analyze(*LOADED_TABLES)
    audit_log(
        actor=by,
        action=AuditEvent.Action.IMPORT,
        target_type="movielens",
        details={"folder": str(folder), **counts},
    )
    return counts
