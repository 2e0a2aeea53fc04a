"""What the overview shows: uploads, jobs and the stored counts of the customer base.

Counting the base (customers, consent per purpose, customers grouped by one profile
attribute) is ``overview_count``, which the overview job runs; the page reads what it stored
(``marketing.selectors.figures.overview_figures``), with every count too small to show held
back.
"""

from typing import Any

from django.conf import settings
from django.db.models import Count
from django.db.models.fields.json import KT

from marketing.ingest.demo import OFFER_ID as DEMO_OFFER
from marketing.models import Customer, Job, Offer, ProfileField, Upload
from marketing.selectors.figures import BREAKDOWN_GROUPS, overview_figures


def demo_loaded() -> bool:
    """Whether the bundled demo data is in (its offer, looked up by its unique id): empty
    states then say that the demo came without an upload."""
    return Offer.objects.filter(external_id=DEMO_OFFER).exists()


def overview_counts() -> dict[str, Any]:
    """Uploads and jobs, and the last stored counts of the customer base (no count of it)."""
    return {
        # Whether to invite an upload: one row looked up, not a count.
        "has_customers": Customer.objects.exists(),
        "demo_loaded": demo_loaded(),
        "upload_count": Upload.objects.count(),
        "upload_imported_count": Upload.objects.filter(status=Upload.Status.IMPORTED).count(),
        "running_job_count": Job.objects.filter(
            status__in=[Job.Status.QUEUED, Job.Status.RUNNING]
        ).count(),
        "recent_jobs": Job.objects.select_related("created_by")[:6],
        "recent_uploads": Upload.objects.select_related("job")[:5],
        "figures": overview_figures(),
    }


def breakdown_fields() -> list[ProfileField]:
    """The text and yes/no profile attributes customers can be grouped by."""
    return list(
        ProfileField.objects.filter(
            data_type__in=[
                ProfileField.DataType.TEXT,
                ProfileField.DataType.CATEGORY,
                ProfileField.DataType.BOOLEAN,
            ]
        )
    )


def count_breakdown(field: ProfileField) -> dict[str, Any]:
    """Customers grouped by ``field``: the ``BREAKDOWN_GROUPS`` largest groups of at least
    ``MIN_GROUP_SIZE`` customers (largest first) and the sum of the rest, which is all
    ``shown_breakdown`` needs. A value held by fewer customers is never stored: the figures
    outlive an erasure, and such a value may single the person out."""
    groups = (
        Customer.objects.annotate(value=KT(f"attributes__{field.name}"))
        .values("value")
        .annotate(n=Count("id"))
        .filter(n__gte=settings.MIN_GROUP_SIZE)
        .order_by("-n", "value")
        .values_list("value", "n")
    )
    top: list[tuple[Any, int]] = list(groups[:BREAKDOWN_GROUPS])
    return {
        "groups": [[value, n] for value, n in top],
        "rest": Customer.objects.count() - sum(n for _, n in top),
    }
