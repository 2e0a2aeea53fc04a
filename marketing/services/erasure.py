"""Erasure (GDPR Art. 17): the customer and everything stored about them is deleted."""

from django.db import transaction

from marketing.models import AuditEvent, Customer, CustomerIdentity
from marketing.services.audit import audit_log
from marketing.services.training import training_runs_flag_erasure


@transaction.atomic
def customer_erase(*, customer: Customer, by) -> dict[str, int]:
    """Delete the customer, identity, interactions and consent history; audit by pseudonym.

    The audit event keeps only the pseudonym and counts, so the trail outlives the person.
    """
    counts = {
        "identity": CustomerIdentity.objects.filter(customer=customer).count(),
        "interactions": customer.interactions.count(),
        "consent_records": customer.consents.count(),
    }
    pseudonym = customer.pseudonym
    # A trained model cannot forget the person: its run is flagged for retraining without them.
    models_flagged = training_runs_flag_erasure(pseudonym=pseudonym)
    # A queryset delete cascades in SQL; ConsentRecord.delete() (which refuses single
    # deletions to protect the history) is deliberately not involved.
    Customer.objects.filter(pk=customer.pk).delete()
    audit_log(
        actor=by,
        action=AuditEvent.Action.ERASURE,
        target_type="customer",
        target_ref=pseudonym,
        details={**counts, "models_flagged": models_flagged},
    )
    return counts
