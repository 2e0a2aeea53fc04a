"""Scoring a segment with a trained click model as a Job ("score").

Scoring for targeting is profiling (GDPR Art. 4(4)), so only customers with a valid
``profiling`` consent are scored; the others are counted by reason. Customers are read,
scored and written in chunks, so memory stays bounded however large the segment is.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Sum
from django.utils.translation import gettext_noop

from marketing.dbstats import analyze
from marketing.errors import ApplicationError
from marketing.models import (
    AuditEvent,
    CustomerScore,
    Job,
    Offer,
    Purpose,
    ScoringChunk,
    ScoringRun,
    Segment,
    TrainingRun,
)
from marketing.selectors.consent import customers_with_consent
from marketing.selectors.training import consent_exclusions
from marketing.services.audit import Actor, audit_log, stored_user
from marketing.services.jobs import (
    QUEUE_PARAM,
    Progress,
    job_create_once,
    register_ended,
    register_runner,
)
from marketing.services.model_inputs import (
    population,
)
from marketing.services.scorers import available_scorers
from marketing.services.scoring_chunks import (
    FINE_BINS,
    ChunkState,
    chunks_abandon,
    chunks_plan,
    chunks_send,
    chunks_work,
)
from marketing.services.training_params import message

if TYPE_CHECKING:
    import numpy as np

# The chunks' fine histograms are merged into HISTOGRAM_BARS bars at the end.
HISTOGRAM_BARS = 25


class ScoringSetupError(ApplicationError, ValueError):
    """The requested scoring cannot start; the message says why."""


# What the pages and the API read of a request or a run (English, translated where shown).
NOT_FINISHED = gettext_noop("Only a finished training run has a model that can score.")
SCORER_NOT_OFFERED = gettext_noop(
    "The model of “%(name)s” cannot score with %(scorer)s; it offers %(offered)s (a model "
    "trained before the choice existed offers the served model only)."
)
CHOOSE_SCORER = gettext_noop("Choose one of %(offered)s.")
# (a segment, another scorer than the served model) -> the scoring job's title.
SCORE_TITLES = {
    (True, False): gettext_noop("Score segment “%(segment)s” with “%(name)s”"),
    (False, False): gettext_noop("Score all customers with “%(name)s”"),
    (True, True): gettext_noop("Score segment “%(segment)s” with “%(name)s” (%(scorer)s)"),
    (False, True): gettext_noop("Score all customers with “%(name)s” (%(scorer)s)"),
}
SPLIT = gettext_noop("Split into %(parts)s parts")
SCORED = gettext_noop(
    "Scored %(rows)s of about %(expected)s rows (%(done)s of %(total)s parts done)"
)
MESSAGES = (NOT_FINISHED, SCORER_NOT_OFFERED, CHOOSE_SCORER, *SCORE_TITLES.values(), SPLIT, SCORED)


def scoring_run_create(
    *,
    training_run: TrainingRun,
    segment: Segment | None,
    by: Actor,
    scorer: str = ScoringRun.Scorer.SERVED,
) -> ScoringRun:
    if training_run.job.status != Job.Status.SUCCEEDED or not training_run.model_id:
        raise ScoringSetupError(NOT_FINISHED)
    offered = available_scorers(training_run.metrics)
    if scorer not in offered:
        raise ScoringSetupError(
            message(
                SCORER_NOT_OFFERED,
                name=training_run.name,
                scorer=repr(scorer),
                offered=", ".join(offered),
            ),
            errors={"scorer": message(CHOOSE_SCORER, offered=", ".join(offered))},
        )
    where = {"segment": segment.name} if segment else {}
    how = {} if scorer == ScoringRun.Scorer.SERVED else {"scorer": ScoringRun.Scorer(scorer).label}
    title = message(SCORE_TITLES[bool(where), bool(how)], name=training_run.name, **where, **how)
    creator = stored_user(by)
    with transaction.atomic():
        job, created = job_create_once(
            kind=Job.Kind.SCORE,
            title=title[:200],
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


def scores_download_log(
    *, scoring_run: ScoringRun, by, file_format: str, external_ids: bool = False
) -> None:
    """Every download of a run's scores is an export in the audit log, which says whether
    it carried external ids."""
    audit_log(
        actor=by,
        action=AuditEvent.Action.EXPORT,
        target_type="scoring_run",
        target_ref=scoring_run.pk,
        details={
            "format": file_format,
            "rows": scoring_run.rows_scored,
            "external_ids": external_ids,
        },
    )


@register_runner(Job.Kind.SCORE, restartable=True)
def run_scoring(job: Job, progress: Progress) -> dict[str, Any]:
    """Plan the run's chunks (a restarted run keeps those already done), send them to the
    workers, take chunks itself until all are done, then sum them up."""
    import numpy as np

    scoring = ScoringRun.objects.select_related("training_run__offer", "segment").get(job=job)
    training = scoring.training_run
    offers = 1 if training.offer else Offer.objects.filter(active=True).count()
    if not ScoringChunk.objects.filter(scoring_run=scoring).exists():
        members = population(scoring.segment)
        consented = customers_with_consent(Purpose.PROFILING, queryset=members)
        excluded = consent_exclusions(Purpose.PROFILING, queryset=members)
        with transaction.atomic():
            # A run scored before chunks existed and restarted: it starts over.
            CustomerScore.objects.filter(scoring_run_id=scoring.pk).delete()
            ScoringRun.objects.filter(pk=scoring.pk).update(customers_excluded=excluded)
            parts = chunks_plan(scoring, consented, offers)
        progress(2, message(SPLIT, parts=f"{parts:,}"))
    if settings.JOB_QUEUE == "celery":
        chunks_send(scoring.pk, job.params.get(QUEUE_PARAM) or settings.CELERY_TASK_DEFAULT_QUEUE)
    expected = max(1, _expected_rows(scoring.pk, offers))

    def report(state: ChunkState) -> None:
        ScoringRun.objects.filter(pk=scoring.pk).update(rows_scored=state.rows_scored)
        progress(
            3 + 96 * min(1.0, state.rows_scored / expected),
            message(
                SCORED,
                rows=f"{state.rows_scored:,}",
                expected=f"{expected:,}",
                done=f"{state.done:,}",
                total=f"{state.total:,}",
            ),
        )

    try:
        chunks_work(scoring.pk, report)
    except BaseException:
        if not _taken_over(job):
            chunks_abandon(scoring.pk)
        raise
    chunks = ScoringChunk.objects.filter(scoring_run=scoring)
    fine = np.zeros(FINE_BINS, dtype=np.int64)
    for histogram in chunks.values_list("histogram", flat=True):
        for index, count in histogram.items():
            fine[int(index)] += count
    totals = chunks.aggregate(
        rows=Sum("rows_scored"), customers=Sum("customers_scored"), score_sum=Sum("score_sum")
    )
    done, customers = totals["rows"] or 0, totals["customers"] or 0
    distribution = score_distribution(fine, totals["score_sum"] or 0.0, done)
    ScoringRun.objects.filter(pk=scoring.pk).update(
        rows_scored=done, customers_scored=customers, distribution=distribution
    )
    analyze(CustomerScore)
    scoring.refresh_from_db(fields=["customers_excluded"])
    return {
        "scoring_run": scoring.pk,
        "training_run": training.pk,
        "rows_scored": done,
        "customers_scored": customers,
        "customers_excluded": sum(scoring.customers_excluded.values()),
        "mean_score": distribution.get("mean"),
        "parts": chunks.count(),
        "workers": chunks.values("worker").distinct().count(),
    }


def _expected_rows(scoring_run_id: int, offers: int) -> int:
    """Rows the run will score about: its chunks' full size (the last may be smaller)."""
    parts = ScoringChunk.objects.filter(scoring_run_id=scoring_run_id).count()
    return parts * max(1, settings.SCORING_CHUNK_ROWS // max(1, offers)) * offers


def _taken_over(job: Job) -> bool:
    """Whether a later attempt runs the job now (this one lost its lease): then it is not
    this attempt's to clean up."""
    return Job.objects.filter(
        pk=job.pk, status=Job.Status.RUNNING, attempts__gt=job.attempts
    ).exists()


@register_ended(Job.Kind.SCORE)
def _scoring_ended(job: Job, message: str) -> None:
    """A run cancelled before it started, or ended after losing its workers, keeps nothing."""
    scoring = ScoringRun.objects.filter(job=job).only("pk").first()
    if scoring is not None:
        chunks_abandon(scoring.pk)


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
