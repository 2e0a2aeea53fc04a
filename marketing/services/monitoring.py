"""Models that stay true over time: drift checks of the models in use, scheduled re-training.

A drift check (a "drift" job) compares a model in use with the data it learned from: the
profiles of the customers its latest scoring scored, field by field, and those scores, with
the training rows' profile kept with the run (population stability index, PSI), and, once
responses to customer-offer pairs first met after its training arrive, its live AUC and
calibration on them. A check past the thresholds raises an alert on the overview and the
model page, which offer a re-training.

Re-train schedules (edited in the admin) re-train the model in use of a use case every so
often; celery beat calls ``retrain_schedules_run_due`` and ``drift_checks_start_all``.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.db.models import Case, IntegerField, Max, Min, When
from django.utils import timezone
from django.utils.translation import gettext_noop

from marketing.errors import ApplicationError
from marketing.models import (
    AuditEvent,
    Customer,
    CustomerScore,
    DriftCheck,
    Interaction,
    Job,
    RetrainSchedule,
    ScoringRun,
    TrainingRun,
)
from marketing.selectors.champions import champion_for, champions
from marketing.selectors.figures import unfinished_job
from marketing.services.audit import Actor, audit_log, stored_user
from marketing.services.jobs import Progress, job_create, register_runner
from marketing.services.model_inputs import field_types, learnable
from marketing.services.training import parent_data_until, training_run_retrain
from marketing.services.training_params import TrainingSetupError, message

if TYPE_CHECKING:
    import numpy as np


class MonitoringError(ApplicationError, ValueError):
    """A drift check cannot start or run; the message says why."""


DRIFT_TITLE = gettext_noop("Drift check of “%(name)s”")
NO_REFERENCE = gettext_noop(
    "“%(name)s” was trained before training profiles were kept: re-train it to check its drift."
)
NOT_SCORED = gettext_noop(
    "“%(name)s” has not scored any customer yet: score customers with it, then check its drift."
)
READING_SCORES = gettext_noop("Reading a sample of %(rows)s scored customers")
READING_RESPONSES = gettext_noop("Reading the responses since the model was trained")
NO_CHAMPION = gettext_noop("No model is in use for this offer and target.")
RETRAIN_STARTED = gettext_noop("Re-training started: run %(run)s.")
COMPARE_TITLE = gettext_noop("“%(name)s” against the model in use")
NO_CHAMPION_TO_COMPARE = gettext_noop(
    "No model is in use for this offer and target: there is nothing to compare “%(name)s” with."
)
IS_THE_CHAMPION = gettext_noop("“%(name)s” is the model in use: compare another model with it.")
NOT_FINISHED = gettext_noop("“%(name)s” has no finished model to compare.")
NOT_SCORED_TO_COMPARE = gettext_noop(
    "“%(name)s” has not scored any customer yet: score customers with it, then compare."
)
READING_BOTH = gettext_noop("Reading the responses since both models were trained")
BOOTSTRAP = gettext_noop("Comparing the models on %(rows)s responses")
MESSAGES = (
    COMPARE_TITLE,
    NO_CHAMPION_TO_COMPARE,
    IS_THE_CHAMPION,
    NOT_FINISHED,
    NOT_SCORED_TO_COMPARE,
    READING_BOTH,
    BOOTSTRAP,
    DRIFT_TITLE,
    NO_REFERENCE,
    NOT_SCORED,
    READING_SCORES,
    READING_RESPONSES,
    NO_CHAMPION,
    RETRAIN_STARTED,
)


# ---- drift checks -------------------------------------------------------------------------
def drift_check_start(*, run: TrainingRun, by: Actor) -> DriftCheck:
    """Start a drift check of ``run``'s model (a job); refused with the reason when the model
    has no training profile or has scored nobody yet."""
    if not run.reference:
        raise MonitoringError(message(NO_REFERENCE, name=run.name))
    if latest_scoring(run) is None:
        raise MonitoringError(message(NOT_SCORED, name=run.name))
    with transaction.atomic():
        job = job_create(
            kind=Job.Kind.DRIFT,
            title=message(DRIFT_TITLE, name=run.name),
            params={"training_run": run.pk},
            by=by,
        )
        check = DriftCheck.objects.create(job=job, training_run=run, created_by=stored_user(by))
        audit_log(
            actor=by,
            action=AuditEvent.Action.JOB,
            target_type="drift_check",
            target_ref=check.pk,
            details={"job": job.pk, "training_run": run.pk},
        )
    return check


def drift_checks_start_all(*, by: Actor = None) -> list[DriftCheck]:
    """A drift check of every model in use that can be checked (the scheduled daily run)."""
    started = []
    for run in TrainingRun.objects.filter(pk__in=set(champions().values())):
        try:
            started.append(drift_check_start(run=run, by=by))
        except MonitoringError:
            continue  # trained before profiles, or not scored yet: its page says so
    return started


def latest_scoring(run: TrainingRun) -> ScoringRun | None:
    return (
        ScoringRun.objects.filter(training_run=run, job__status=Job.Status.SUCCEEDED)
        .order_by("-created_at", "-id")
        .first()
    )


@register_runner(Job.Kind.DRIFT, restartable=True)
def run_drift_check(job: Job, progress: Progress) -> dict[str, Any]:
    check = DriftCheck.objects.select_related("training_run").get(job=job)
    outcome = drift_measure(check.training_run, progress)
    DriftCheck.objects.filter(pk=check.pk).update(**outcome)
    return {
        "drift_check": check.pk,
        "alert": outcome["alert"],
        "moved": outcome["report"]["moved"],
    }


def drift_measure(run: TrainingRun, progress: Progress) -> dict[str, Any]:
    """The drift report, live quality and alert of ``run``'s model now (DriftCheck fields)."""
    import pandas as pd

    from recengine.drift import Reference, drift_report, live_quality

    reference = Reference.from_dict(run.reference)
    scoring = latest_scoring(run)
    if scoring is None:
        raise MonitoringError(message(NOT_SCORED, name=run.name))
    sample = settings.DRIFT_SAMPLE_ROWS
    progress(5, message(READING_SCORES, rows=f"{sample:,}"))
    customer_ids, scores = sampled_scores(scoring, sample)
    types = field_types()
    fields = list(reference.fields)
    attributes = dict(
        Customer.objects.filter(pk__in=customer_ids)
        .values_list("pk", "attributes")
        .iterator(chunk_size=5000)
    )
    # Erased since scoring: no profile to compare, left out.
    present = [i for i, pk in enumerate(customer_ids) if pk in attributes]
    recent = pd.DataFrame.from_records(
        [learnable(attributes[customer_ids[i]] or {}, types) for i in present],
        columns=fields,
    )
    report = drift_report(
        reference,
        recent,
        score_recent=scores[present] if reference.score else None,
        thresholds=(settings.DRIFT_PSI_WATCH, settings.DRIFT_PSI_ALERT),
    )
    progress(60, READING_RESPONSES)
    y, p = live_responses(run, scoring)
    live = live_quality(y, p).as_dict() if len(y) >= settings.DRIFT_MIN_RESPONSES else {}
    served_auc = served_test_auc(run)
    auc_dropped = bool(
        live.get("auc") is not None
        and served_auc is not None
        and live["auc"] < served_auc - settings.DRIFT_AUC_DROP
    )
    score_moved = report.score is not None and report.score.psi >= settings.DRIFT_PSI_ALERT
    return {
        "report": {**report.as_dict(), "scoring_run": scoring.pk},
        "live": {**live, "responses": len(y), "test_auc": served_auc, "auc_dropped": auc_dropped}
        if live
        else {"responses": len(y), "test_auc": served_auc},
        "alert": bool(report.moved) or score_moved or auc_dropped,
        "recent_rows": len(recent),
    }


def served_test_auc(run: TrainingRun) -> float | None:
    metrics = run.metrics or {}
    served = "blend" if (metrics.get("blend") or {}).get("served") else "bert"
    return (metrics.get(served) or {}).get("roc_auc")


def sampled_scores(scoring: ScoringRun, limit: int) -> tuple[list[int], np.ndarray]:
    """Up to ``limit`` of a scoring run's scores, every k-th in customer order (the whole
    run is read once in chunks; memory holds the sample only)."""
    import numpy as np

    total = scoring.rows_scored or CustomerScore.objects.filter(scoring_run=scoring).count()
    stride = max(1, -(-total // max(1, limit)))
    customers: list[int] = []
    scores: list[float] = []
    rows = (
        CustomerScore.objects.filter(scoring_run=scoring)
        .order_by("customer_id", "offer_id")
        .values_list("customer_id", "score")
    )
    for index, (customer_id, score) in enumerate(rows.iterator(chunk_size=10_000)):
        if index % stride == 0:
            customers.append(customer_id)
            scores.append(score)
    return customers, np.asarray(scores, dtype=float)


def live_responses(run: TrainingRun, scoring: ScoringRun) -> tuple[np.ndarray, np.ndarray]:
    """Outcomes of the customer-offer pairs first met after the newest ``run`` learned from,
    beside the scores ``scoring`` gave them (pairs it did not score are left out)."""
    import numpy as np

    scored = scored_responses(run, scoring, since=parent_data_until(run))
    y = np.fromiter((label for label, _ in scored.values()), dtype=int, count=len(scored))
    p = np.fromiter((score for _, score in scored.values()), dtype=float, count=len(scored))
    return y, p


def scored_responses(
    run: TrainingRun, scoring: ScoringRun, *, since
) -> dict[tuple[int, int | None], tuple[int, float]]:
    """{(customer, offer): (outcome, score)} of the pairs of ``run``'s use case first met
    after ``since`` that ``scoring`` scored (the offer is None for a one-offer model's
    scores, which hold no offer)."""
    responses = (
        Interaction.objects.filter(offer=run.offer_id) if run.offer_id else Interaction.objects
    )
    positive = (
        [Interaction.Kind.CONVERSION]
        if run.target == TrainingRun.Target.CONVERSION
        else [Interaction.Kind.CLICK, Interaction.Kind.CONVERSION]
    )
    pairs = (
        responses.values("customer_id", "offer_id")
        .annotate(
            label=Max(
                Case(When(kind__in=positive, then=1), default=0, output_field=IntegerField())
            ),
            first=Min("occurred_at"),
        )
        .order_by()
    )
    if since is not None:
        pairs = pairs.filter(first__gt=since)
    one_offer = scoring.training_run.offer_id is not None
    labels = {
        (c, None if one_offer else o): label
        for c, o, label in pairs.values_list("customer_id", "offer_id", "label").iterator(
            chunk_size=10_000
        )
    }
    scored: dict[tuple[int, int | None], tuple[int, float]] = {}
    customer_ids = sorted({c for c, _ in labels})
    for start in range(0, len(customer_ids), 5000):
        chunk = customer_ids[start : start + 5000]
        for customer_id, offer_id, score in CustomerScore.objects.filter(
            scoring_run=scoring, customer_id__in=chunk
        ).values_list("customer_id", "offer_id", "score"):
            key = (customer_id, None if one_offer else offer_id)
            if key in labels:
                scored[key] = (labels[key], score)
    return scored


# ---- champion and challenger on the same recent responses ----------------------------------
def challenger_compare_start(*, run: TrainingRun, by: Actor) -> Job:
    """Start comparing ``run``'s model (a challenger) with the model in use of its use case
    on the same responses, those first met after both learned (a job: it reads responses
    and scores that grow with the customers); returns the comparison under way if any."""
    if run.job.status != Job.Status.SUCCEEDED or not run.model_id:
        raise MonitoringError(message(NOT_FINISHED, name=run.name))
    champion = champion_for(run.offer_id, run.target)
    if champion is None:
        raise MonitoringError(message(NO_CHAMPION_TO_COMPARE, name=run.name))
    if champion.pk == run.pk:
        raise MonitoringError(message(IS_THE_CHAMPION, name=run.name))
    for model in (run, champion):
        if latest_scoring(model) is None:
            raise MonitoringError(message(NOT_SCORED_TO_COMPARE, name=model.name))
    running = unfinished_job(Job.Kind.COMPARE, challenger=run.pk)
    if running is not None:
        return running
    return job_create(
        kind=Job.Kind.COMPARE,
        title=message(COMPARE_TITLE, name=run.name)[:200],
        params={"challenger": run.pk, "champion": champion.pk},
        by=by,
    )


def latest_comparison(run: TrainingRun) -> Job | None:
    """The newest comparison of ``run``'s model with the model in use."""
    return (
        Job.objects.filter(kind=Job.Kind.COMPARE, params__challenger=run.pk)
        .order_by("-created_at", "-id")
        .first()
    )


@register_runner(Job.Kind.COMPARE, restartable=True)
def run_challenger_comparison(job: Job, progress: Progress) -> dict[str, Any]:
    import numpy as np

    from recengine.metrics import compare_aucs

    challenger = TrainingRun.objects.get(pk=job.params["challenger"])
    champion = TrainingRun.objects.get(pk=job.params["champion"])
    theirs_scoring, ours_scoring = latest_scoring(champion), latest_scoring(challenger)
    for model, scoring in ((champion, theirs_scoring), (challenger, ours_scoring)):
        if scoring is None:
            raise MonitoringError(message(NOT_SCORED_TO_COMPARE, name=model.name))
    assert theirs_scoring is not None and ours_scoring is not None
    # Held out from both: first met after the newest response either learned from.
    since = max(d for d in (parent_data_until(champion), parent_data_until(challenger)) if d)
    progress(5, READING_BOTH)
    ours = scored_responses(challenger, ours_scoring, since=since)
    progress(45, READING_BOTH)
    theirs = scored_responses(champion, theirs_scoring, since=since)
    shared = sorted(ours.keys() & theirs.keys(), key=lambda key: (key[0], key[1] or 0))
    figures: dict[str, Any] = {
        "champion": champion.pk,
        "challenger": challenger.pk,
        "since": since.isoformat(),
        "scoring_runs": [theirs_scoring.pk, ours_scoring.pk],
        "responses": len(shared),
    }
    y = np.array([ours[key][0] for key in shared], dtype=int)
    if len(shared) < settings.DRIFT_MIN_RESPONSES or y.min(initial=0) == y.max(initial=0):
        return {**figures, "enough": False}
    progress(80, message(BOOTSTRAP, rows=f"{len(shared):,}"))
    comparison = compare_aucs(
        y,
        np.array([theirs[key][1] for key in shared], dtype=float),
        np.array([ours[key][1] for key in shared], dtype=float),
    )
    return {**figures, "enough": True, **comparison.as_dict()}


# ---- scheduled re-training ----------------------------------------------------------------
def retrain_schedules_run_due(*, now=None) -> list[int]:
    """Start the re-training of every enabled schedule that is due; the runs started. Each
    schedule moves on to its next date whatever happened, and says what it did."""
    now = now or timezone.now()
    started = []
    due = RetrainSchedule.objects.filter(enabled=True, next_at__lte=now).values_list(
        "pk", flat=True
    )
    for pk in list(due):
        with transaction.atomic():
            schedule = (
                RetrainSchedule.objects.select_for_update(skip_locked=True)
                .filter(pk=pk, enabled=True, next_at__lte=now)
                .first()
            )
            if schedule is None:  # another beat or worker took it
                continue
            champion = champion_for(schedule.offer_id, schedule.target)
            run = None
            if champion is None:
                schedule.last_message = NO_CHAMPION
            else:
                try:
                    run = training_run_retrain(run=champion, by=None, start=schedule.start)
                except TrainingSetupError as exc:
                    schedule.last_message = str(exc)[:300]
                else:
                    schedule.last_run = run
                    schedule.last_message = message(RETRAIN_STARTED, run=run.pk)
                    started.append(run.pk)
            while schedule.next_at <= now:
                schedule.next_at += timedelta(days=max(1, schedule.every_days))
            schedule.save(update_fields=["next_at", "last_run", "last_message"])
            audit_log(
                actor=None,
                action=AuditEvent.Action.JOB,
                target_type="retrain_schedule",
                target_ref=schedule.pk,
                details={"training_run": run.pk if run else None, "message": schedule.last_message},
            )
    return started
