"""What the overview counts: customers, uploads, jobs, consent per purpose and customers
grouped by one profile attribute, with every count too small to show held back."""

from typing import Any

from django.db.models import Count
from django.db.models.fields.json import KT

from marketing.models import Customer, Job, ProfileField, Purpose, Upload
from marketing.selectors.consent import customers_with_consent
from marketing.selectors.segments import shown_count, suppressed_count

BREAKDOWN_GROUPS = 10


def small_group(count: int) -> bool:
    return suppressed_count(count)["suppressed"]


def overview_counts() -> dict[str, Any]:
    """Customers, uploads and jobs as the overview's cards show them."""
    total = Customer.objects.count()
    return {
        "customer_count": total,
        "customer_count_shown": suppressed_count(total),
        "upload_count": Upload.objects.count(),
        "upload_imported_count": Upload.objects.filter(status=Upload.Status.IMPORTED).count(),
        "consent_rows": consent_rows(total),
        "running_job_count": Job.objects.filter(
            status__in=[Job.Status.QUEUED, Job.Status.RUNNING]
        ).count(),
        "recent_jobs": Job.objects.select_related("created_by")[:6],
        "recent_uploads": Upload.objects.select_related("job")[:5],
    }


def consent_rows(total: int) -> list[dict[str, Any]]:
    """Customers with a valid consent now, purpose by purpose, out of ``total``."""
    rows = []
    for purpose in Purpose:
        count = customers_with_consent(purpose.value).count() if total else 0
        shown = suppressed_count(count)
        # The share of the shown (rounded) counts, so it tells no more than they do.
        base = shown_count(total)
        rows.append(
            {
                "purpose": purpose.value,
                "label": purpose.label,
                "hidden": shown["suppressed"],
                "display": shown["display"],
                "percent": 100 * (shown["count"] or 0) / base if base else 0,
            }
        )
    return rows


def breakdown_fields() -> list[ProfileField]:
    """The text and yes/no profile attributes customers can be grouped by."""
    return list(
        ProfileField.objects.filter(
            data_type__in=[ProfileField.DataType.TEXT, ProfileField.DataType.BOOLEAN]
        )
    )


def breakdown(field: ProfileField) -> list[tuple[str, int | None]]:
    """(value, customers) for the largest groups by ``field``, the small ones merged into
    "Other groups" (left out when that too is small)."""
    groups = (
        Customer.objects.annotate(value=KT(f"attributes__{field.name}"))
        .values("value")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    shown: list[tuple[str, int | None]] = []
    other = 0
    for group in groups:
        if len(shown) < BREAKDOWN_GROUPS and not small_group(group["n"]):
            shown.append((_value_label(group["value"]), shown_count(group["n"])))
        else:
            other += group["n"]
    if other and not small_group(other):
        shown.append(("Other groups", shown_count(other)))
    return shown


def _value_label(value) -> str:
    if value in (None, ""):
        return "(not set)"
    return {"true": "Yes", "false": "No"}.get(str(value).lower(), str(value))
