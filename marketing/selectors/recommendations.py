"""Reading recommendation runs and customers' lists, and the profile attributes an
audience's diversity is compared over.

Lists and audiences come from scores, which is profiling: only customers whose ``profiling``
consent is valid now are shown or counted.
"""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet

from marketing.models import (
    Customer,
    CustomerRecommendation,
    Job,
    ProfileField,
    Purpose,
    RecommendationRun,
    ScoringRun,
)
from marketing.selectors.consent import has_consent, scores_for_use

# Profile attribute types the audience is compared over (dates have no useful groups).
AUDIENCE_TYPES = (
    ProfileField.DataType.NUMBER,
    ProfileField.DataType.TEXT,
    ProfileField.DataType.CATEGORY,
    ProfileField.DataType.BOOLEAN,
)


def recommendation_runs() -> QuerySet[RecommendationRun]:
    return RecommendationRun.objects.select_related(
        "job", "scoring_run", "scoring_run__training_run", "scoring_run__segment", "created_by"
    )


def multi_offer_scoring_runs() -> QuerySet[ScoringRun]:
    """Finished scoring runs of multi-offer models (the ones recommendations come from)."""
    return ScoringRun.objects.select_related("training_run", "segment", "job").filter(
        job__status=Job.Status.SUCCEEDED, training_run__offer__isnull=True
    )


def run_lists(run: RecommendationRun, *, customers: int = 10) -> list[dict[str, Any]]:
    """A sample of the run's lists: those of the ``customers`` consented customers that come
    first by id, shown by best first score.

    The sample walks the ``(run, customer, rank)`` index and stops after ``customers`` lists,
    so it reads the same few rows however many customers the run has; picking the best first
    scores instead would read and sort every list of the run.
    """
    picked = list(
        scores_for_use(run.items.filter(rank=1))
        .order_by("customer_id")
        .values_list("customer_id", "score")[:customers]
    )
    firsts = [pk for pk, _ in sorted(picked, key=lambda row: (-row[1], row[0]))]
    items = (
        run.items.filter(customer_id__in=firsts)
        .select_related("customer", "offer")
        .order_by("customer_id", "rank")
    )
    lists: dict[int, dict[str, Any]] = {}
    for item in items:
        entry = lists.setdefault(
            item.customer_id,
            {
                "customer_id": item.customer_id,
                "pseudonym": item.customer.pseudonym,
                "offers": [],
            },
        )
        entry["offers"].append(_item(item))
    return [lists[pk] for pk in firsts if pk in lists]


def customer_list(run: RecommendationRun, customer: Customer) -> list[dict[str, Any]] | None:
    """One customer's list in ``run``; None when their profiling consent is not valid now."""
    if not has_consent(customer, Purpose.PROFILING):
        return None
    items = scores_for_use(run.items.filter(customer=customer)).select_related("offer")
    items = items.order_by("rank")
    return [_item(item) for item in items]


def customer_latest_recommendations(customer: Customer) -> dict[str, Any] | None:
    """The customer's list from the latest finished run that has one (None when there is
    none); ``refused`` when their profiling consent is not valid now."""
    latest = (
        CustomerRecommendation.objects.filter(
            customer=customer, recommendation_run__job__status=Job.Status.SUCCEEDED
        )
        .order_by("-recommendation_run__created_at", "-recommendation_run_id")
        .values_list("recommendation_run_id", flat=True)
        .first()
    )
    if latest is None:
        return None
    run = recommendation_runs().get(pk=latest)
    items = customer_list(run, customer)
    return {"run": run, "items": items or [], "refused": items is None}


def _item(item: CustomerRecommendation) -> dict[str, Any]:
    return {
        "rank": item.rank,
        "offer_id": item.offer_id,
        "title": item.offer.title,
        "category": item.offer.category,
        "score": item.score,
    }


# ---- audience diversity ---------------------------------------------------------------------


def audience_attributes() -> list[ProfileField]:
    return list(ProfileField.objects.filter(data_type__in=AUDIENCE_TYPES).order_by("name"))
