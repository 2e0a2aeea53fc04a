"""Scoring a segment with a trained click model as a Job ("score").

Scoring for targeting is profiling (GDPR Art. 4(4)), so only customers with a valid
``profiling`` consent are scored; the others are counted by reason. Customers are read,
scored and written in chunks, so memory stays bounded however large the segment is.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction

from marketing.dbstats import analyze
from marketing.errors import ApplicationError
from marketing.models import (
    AuditEvent,
    CustomerScore,
    Job,
    Offer,
    Purpose,
    ScoringRun,
    Segment,
    TrainingRun,
)
from marketing.selectors.consent import customers_with_consent
from marketing.selectors.training import consent_exclusions
from marketing.services.audit import Actor, audit_log, stored_user
from marketing.services.jobs import Progress, job_create_once, register_runner
from marketing.services.model_inputs import (
    known_values_only,
    model_text_values,
    offer_columns,
    population,
)
from marketing.services.scorers import available_scorers, scorer_model

if TYPE_CHECKING:
    import numpy as np

CHUNK_ROWS = 2000
# Fine histogram kept while scoring; merged into HISTOGRAM_BARS bars at the end.
FINE_BINS = 1000
HISTOGRAM_BARS = 25


class ScoringSetupError(ApplicationError, ValueError):
    """The requested scoring cannot start; the message says why."""


def scoring_run_create(
    *,
    training_run: TrainingRun,
    segment: Segment | None,
    by: Actor,
    scorer: str = ScoringRun.Scorer.SERVED,
) -> ScoringRun:
    if training_run.job.status != Job.Status.SUCCEEDED or not training_run.model_id:
        raise ScoringSetupError("Only a finished training run has a model that can score.")
    offered = available_scorers(training_run.metrics)
    if scorer not in offered:
        raise ScoringSetupError(
            f"The model of “{training_run.name}” cannot score with {scorer!r}; it offers "
            f"{', '.join(offered)} (a model trained before the choice existed offers the "
            "served model only).",
            errors={"scorer": f"Choose one of {', '.join(offered)}."},
        )
    where = f"segment “{segment.name}”" if segment else "all customers"
    how = "" if scorer == ScoringRun.Scorer.SERVED else f" ({ScoringRun.Scorer(scorer).label})"
    creator = stored_user(by)
    with transaction.atomic():
        job, created = job_create_once(
            kind=Job.Kind.SCORE,
            title=f"Score {where} with “{training_run.name}”{how}"[:200],
            params={
                "training_run": training_run.pk,
                "segment": segment.pk if segment else None,
                "scorer": scorer,
            },
            by=by,
        )
        if not created:  # the same request a moment ago: its run
            return ScoringRun.objects.select_related("job", "training_run").get(job=job)
        scoring = ScoringRun.objects.create(
            job=job, training_run=training_run, segment=segment, created_by=creator, scorer=scorer
        )
        audit_log(
            actor=by,
            action=AuditEvent.Action.JOB,
            target_type="scoring_run",
            target_ref=scoring.pk,
            details={"job": job.pk, "purpose": Purpose.PROFILING},
        )
    return ScoringRun.objects.select_related("job", "training_run").get(pk=scoring.pk)


def scores_download_log(*, scoring_run: ScoringRun, by, file_format: str) -> None:
    """Every download of a run's scores is an export in the audit log."""
    audit_log(
        actor=by,
        action=AuditEvent.Action.EXPORT,
        target_type="scoring_run",
        target_ref=scoring_run.pk,
        details={"format": file_format, "rows": scoring_run.rows_scored},
    )


@register_runner(Job.Kind.SCORE, restartable=True)
def run_scoring(job: Job, progress: Progress) -> dict[str, Any]:
    import numpy as np

    from recengine.config import pick_device
    from recengine.registry import ModelRegistry
    from recengine.score import ScoreConfig, score_in_chunks

    scoring = ScoringRun.objects.select_related("training_run__offer", "segment").get(job=job)
    training = scoring.training_run
    # A restarted run (its worker was lost midway) starts over: no score is written twice.
    CustomerScore.objects.filter(scoring_run_id=scoring.pk).delete()
    members = population(scoring.segment)
    consented = customers_with_consent(Purpose.PROFILING, queryset=members)
    excluded = consent_exclusions(Purpose.PROFILING, queryset=members)
    offers = [training.offer] if training.offer else list(Offer.objects.filter(active=True))
    n_customers = consented.count()
    total = n_customers * len(offers)
    ScoringRun.objects.filter(pk=scoring.pk).update(customers_excluded=excluded)
    progress(2, f"Loading model {training.model_id}")
    # On a GPU worker ("gpu" queue) the model scores on the accelerator. The served model is
    # the BERT model or, when the training run chose it, its blend with the baseline.
    model = scorer_model(
        ModelRegistry(settings.MODEL_REGISTRY_DIR),
        training.model_id,
        scoring.scorer,
        device=pick_device(),
    )

    # Keys of the rows handed to the scorer, in order; score_in_chunks reads exactly one chunk
    # of rows before it yields that chunk's scores.
    keys: deque[tuple[int, int | None]] = deque()
    multi_offer = training.offer is None

    known = model_text_values(training)

    def rows() -> Iterator[dict[str, Any]]:
        customers = consented.order_by("pk").values_list("pk", "attributes")
        for customer_id, attributes in customers.iterator(chunk_size=CHUNK_ROWS):
            for offer in offers:
                keys.append((customer_id, offer.pk))
                yield known_values_only(
                    {**(attributes or {}), **(offer_columns(offer) if multi_offer else {})},
                    known,
                )

    fine = np.zeros(FINE_BINS, dtype=np.int64)
    score_sum, done = 0.0, 0
    try:
        for scores in score_in_chunks(model, rows(), ScoreConfig(chunk_size=CHUNK_ROWS)):
            batch = [keys.popleft() for _ in range(len(scores))]
            CustomerScore.objects.bulk_create(
                [
                    CustomerScore(
                        scoring_run_id=scoring.pk,
                        customer_id=customer_id,
                        offer_id=offer_id,
                        score=float(score),
                    )
                    for (customer_id, offer_id), score in zip(batch, scores, strict=True)
                ],
                batch_size=CHUNK_ROWS,
            )
            fine += np.histogram(scores, bins=FINE_BINS, range=(0.0, 1.0))[0]
            score_sum += float(scores.sum())
            done += len(scores)
            ScoringRun.objects.filter(pk=scoring.pk).update(rows_scored=done)
            progress(5 + 94 * done / max(total, 1), f"Scored {done:,} of {total:,} rows")
    except BaseException:
        # A cancelled or failed run leaves no half set of scores behind.
        CustomerScore.objects.filter(scoring_run_id=scoring.pk).delete()
        ScoringRun.objects.filter(pk=scoring.pk).update(rows_scored=0)
        raise
    distribution = score_distribution(fine, score_sum, done)
    ScoringRun.objects.filter(pk=scoring.pk).update(
        rows_scored=done, customers_scored=n_customers, distribution=distribution
    )
    analyze(CustomerScore)
    return {
        "scoring_run": scoring.pk,
        "training_run": training.pk,
        "rows_scored": done,
        "customers_scored": n_customers,
        "customers_excluded": sum(excluded.values()),
        "mean_score": distribution.get("mean"),
    }


def score_distribution(fine: np.ndarray, score_sum: float, count: int) -> dict[str, Any]:
    """Bars from 0 to the first 0.05 step above the highest score, mean and quantiles."""
    import numpy as np

    if not count:
        return {"count": 0}
    width = 1.0 / FINE_BINS
    top_bin = int(np.flatnonzero(fine)[-1]) + 1
    # Whole steps of 0.05 (50 fine bins), so every bar spans the same number of fine bins.
    steps = min(20, math.ceil(top_bin / 50))
    merged = fine[: steps * 50].reshape(HISTOGRAM_BARS, -1).sum(axis=1)
    cumulative = np.cumsum(fine)

    def quantile(q: float) -> float:
        return round(float(np.searchsorted(cumulative, q * count) + 0.5) * width, 4)

    return {
        "count": count,
        "mean": round(score_sum / count, 5),
        "edges": [round(i * steps * 0.05 / HISTOGRAM_BARS, 5) for i in range(HISTOGRAM_BARS + 1)],
        "counts": merged.astype(int).tolist(),
        "quantiles": {"p10": quantile(0.1), "p50": quantile(0.5), "p90": quantile(0.9)},
    }
