"""Right of access and portability: a steward downloads everything held about a customer."""

from typing import Any

from marketing.models import AuditEvent, Customer
from marketing.selectors.portability import customer_portability
from marketing.services.audit import Actor, audit_log


def customer_portability_download(*, customer: Customer, by: Actor, where: str) -> dict[str, Any]:
    """The customer's document (``customer_portability``); the download is audited, since
    the file holds their personal identifiers."""
    document = customer_portability(customer)
    audit_log(
        actor=by,
        action=AuditEvent.Action.DATA_ACCESS,
        target_type="customer",
        target_ref=customer.pseudonym,
        details={
            "where": where,
            "records": {name: len(rows) for name, rows in document["records"].items()},
        },
    )
    return document
