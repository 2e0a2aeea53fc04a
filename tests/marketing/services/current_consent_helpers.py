"""The current consent table as comparable data, and the check that it is in step with the
history: a full rebuild finds nothing to add, change or remove."""

from marketing.models import CurrentConsent
from marketing.services.current_consent import current_consent_rebuild

FIELDS = (
    "customer_id",
    "purpose",
    "status",
    "record_id",
    "effective_at",
    "expires_at",
    "pending_at",
)


def current_table() -> list[tuple]:
    return sorted(CurrentConsent.objects.values_list(*FIELDS))


def assert_in_step_with_history() -> None:
    before = current_table()
    counts = current_consent_rebuild(batch_size=3)
    after = current_table()
    assert before == after
    assert (counts.written, counts.removed) == (0, 0)
