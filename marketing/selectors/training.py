"""Reading training runs, scoring runs and scores; why customers were left out of them."""

import math
from collections.abc import Iterator, Mapping
from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _

from marketing.models import (
    Customer,
    CustomerScore,
    Job,
    Offer,
    OverviewFigures,
    Purpose,
    ScoringRun,
    TrainingRun,
)
from marketing.selectors.consent import EXCLUSION_REASONS, consent_exclusions, scores_for_use

__all__ = ["EXCLUSION_REASONS", "consent_exclusions"]  # read with the runs they explain


def training_runs() -> QuerySet[TrainingRun]:
    return TrainingRun.objects.select_related("job", "segment", "offer", "created_by", "parent")


def scoring_runs() -> QuerySet[ScoringRun]:
    return ScoringRun.objects.select_related(
        "job", "segment", "training_run", "training_run__offer", "created_by"
    )


def finished_training_runs() -> QuerySet[TrainingRun]:
    """Runs whose model can score (trained and saved in the registry)."""
    return training_runs().filter(job__status=Job.Status.SUCCEEDED).exclude(model_id="")


def top_scores(scoring_run: ScoringRun, limit: int = 20) -> list[Mapping[str, Any]]:
    """The highest usable scores of a run, by pseudonym (the ``(scoring_run, -score)`` index)."""
    return list(
        scores_for_use(scoring_run.scores.all())
        .order_by("-score", "customer_id")
        .values("customer_id", "customer__pseudonym", "offer__title", "score")[:limit]
    )


def export_rows(
    scoring_run: ScoringRun, *, external_ids: bool = False, chunk_size: int = 5000
) -> Iterator[tuple]:
    """(pseudonym, offer external id or None, score) by descending score, streamed; only the
    scores that may be used now. With ``external_ids`` (only for `can_link_customers`), the
    customer's external id follows the pseudonym."""
    columns = ["customer__pseudonym", "offer__external_id", "score"]
    if external_ids:
        columns.insert(1, "customer__external_id")
    return (
        scores_for_use(scoring_run.scores.all())
        .order_by("-score", "customer_id")
        .values_list(*columns)
        .iterator(chunk_size=chunk_size)
    )


def customer_latest_scores(customer: Customer, limit: int = 5) -> list[dict[str, Any]]:
    """The customer's latest score per model and offer, with an estimate of their rank among
    the scores of that scoring run ("about top x %", from the run's stored distribution); none
    while the customer's profiling consent is not valid."""
    scores = (
        scores_for_use(
            CustomerScore.objects.filter(
                customer=customer, scoring_run__job__status=Job.Status.SUCCEEDED
            )
        )
        .select_related("scoring_run__training_run", "offer")
        .order_by("-scoring_run__created_at", "-scoring_run_id")
    )
    latest: dict[tuple[int, int | None], CustomerScore] = {}
    for score in scores[: limit * 10]:
        key = (score.scoring_run.training_run_id, score.offer_id)
        latest.setdefault(key, score)
    return [
        {
            "score": score.score,
            "offer": score.offer,
            "training_run": score.scoring_run.training_run,
            "scoring_run": score.scoring_run,
            "top_percent": top_percent_estimate(score.scoring_run.distribution, score.score),
        }
        for score in list(latest.values())[:limit]
    ]


def top_percent_estimate(distribution: Mapping[str, Any], score: float) -> int | None:
    """The share of a scoring run's scores above ``score``, as the whole "top x %" it is
    within (at least 1),
    estimated from the run's stored histogram (``ScoringRun.distribution``): the bars above the
    score count whole, the bar the score falls in counts in proportion to the part of it above
    the score. A fixed amount of work, whatever the size of the run; None when the run has no
    distribution (it scored nobody).

    The histogram covers every score of the run, so for a model that scores several offers the
    rank is among the scores of all its offers.
    """
    total = distribution.get("count") or 0
    if not total:
        return None
    edges, counts = distribution["edges"], distribution["counts"]
    if len(edges) != len(counts) + 1:
        raise ValueError(
            f"Scoring distribution has {len(counts)} bars but {len(edges)} edges; "
            "expected one edge more than bars."
        )
    above = 0.0
    for low, high, count in zip(edges, edges[1:], counts, strict=False):
        if low >= score:
            above += count
        elif high > score:
            above += count * (high - score) / (high - low)
    # Up to the whole percent the score is within; rounded first so that float noise in the
    # bar shares (15.000000000000002) does not lift a whole percent to the next one.
    return max(1, min(100, math.ceil(round(100 * above / total, 6))))


def scorer_choices(run: TrainingRun) -> list[dict[str, Any]]:
    """The scorers a finished run's model offers, as the scoring form shows them: validation
    AUC and speed measured when the model was trained, and the time each would take for every
    customer with profiling consent by the overview's last count (no count here)."""
    from marketing.services.scorers import available_scorers

    counted = OverviewFigures.objects.order_by("id").values_list("figures", flat=True).first()
    consented = (counted or {}).get("consent", {}).get(Purpose.PROFILING.value)
    offers = 1 if run.offer_id else Offer.objects.filter(active=True).count()
    rows = consented * offers if consented else None
    choices = []
    for value, figures in available_scorers(run.metrics).items():
        speed = figures.get("rows_per_s")
        choices.append(
            {
                "value": value,
                "label": figures["label"],
                "val_auc": figures.get("val_auc"),
                "rows_per_s": speed,
                "rows": rows,
                "expected": _about(rows / speed) if rows and speed else None,
            }
        )
    return choices


def _about(seconds: float) -> str:
    if seconds < 60:
        return _("under a minute")
    if seconds < 90 * 60:
        return _("about %(minutes)s min") % {"minutes": round(seconds / 60)}
    return _("about %(hours)s h") % {"hours": f"{seconds / 3600:.1f}"}
