"""Reading campaign plans and the scores a plan is computed from."""

from datetime import datetime

from django.db.models import QuerySet

from marketing.models import CampaignPlan, CustomerScore, Offer, ScoringRun
from marketing.selectors.consent import scores_for_use


def campaign_plans() -> QuerySet[CampaignPlan]:
    return CampaignPlan.objects.select_related(
        "scoring_run", "scoring_run__training_run", "scoring_run__segment", "offer", "created_by"
    )


def run_scores(scoring_run: ScoringRun, offer: Offer | None) -> QuerySet[CustomerScore]:
    """Every score of the run for ``offer`` (a single-offer run: all its scores)."""
    scores = CustomerScore.objects.filter(scoring_run=scoring_run)
    if scoring_run.training_run.offer_id is None:
        scores = scores.filter(offer=offer)
    return scores


def consented_scores(
    scoring_run: ScoringRun, offer: Offer | None, *, at: datetime | None = None
) -> QuerySet[CustomerScore]:
    """The run's scores for ``offer`` of customers with a valid profiling consent at ``at``
    (default now), best first; ties by customer, so the same customers are picked every time."""
    return scores_for_use(run_scores(scoring_run, offer), at=at).order_by("-score", "customer_id")
