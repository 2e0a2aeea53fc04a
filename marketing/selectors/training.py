"""Reading training runs, scoring runs and scores; why customers were left out of them."""

from collections.abc import Iterator, Mapping
from typing import Any

from django.db.models import QuerySet

from marketing.models import Customer, CustomerScore, Job, ScoringRun, TrainingRun
from marketing.selectors.consent import EXCLUSION_REASONS, consent_exclusions, scores_for_use

__all__ = ["EXCLUSION_REASONS", "consent_exclusions"]  # read with the runs they explain


def training_runs() -> QuerySet[TrainingRun]:
    return TrainingRun.objects.select_related("job", "segment", "offer", "created_by")


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


def export_rows(scoring_run: ScoringRun, chunk_size: int = 5000) -> Iterator[tuple]:
    """(pseudonym, offer external id or None, score) by descending score, streamed; only the
    scores that may be used now."""
    return (
        scores_for_use(scoring_run.scores.all())
        .order_by("-score", "customer_id")
        .values_list("customer__pseudonym", "offer__external_id", "score")
        .iterator(chunk_size=chunk_size)
    )


def customer_latest_scores(customer: Customer, limit: int = 5) -> list[dict[str, Any]]:
    """The customer's latest score per model and offer, with the share of customers of that
    scoring run who scored higher (their rank as a "top x %"); none while the customer's
    profiling consent is not valid."""
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
    rows = []
    for score in list(latest.values())[:limit]:
        run = score.scoring_run
        above = scores_for_use(
            CustomerScore.objects.filter(scoring_run=run, offer=score.offer, score__gt=score.score)
        ).count()
        total = run.customers_scored or 1  # each offer scores every customer once
        rows.append(
            {
                "score": score.score,
                "offer": score.offer,
                "training_run": run.training_run,
                "scoring_run": run,
                "top_percent": max(1, round(100 * (above + 1) / total)),
            }
        )
    return rows
