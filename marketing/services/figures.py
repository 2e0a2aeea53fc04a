"""Counting the customer base for pages, as jobs: an audience's readiness, a segment's size
and reach, the overview's counts. Each job stores its raw counts on a figures row
(``marketing.models.figures``); pages and the API show the last ones, their age and the
progress of the next.

Starting a count while one of the same subject is queued or running returns that job, so a
page opened by many people, or a button pressed twice, counts once.
"""

from typing import Any

from django.db import transaction
from django.db.models import Count
from django.utils import timezone

from marketing.models import (
    Audience,
    AudienceDiversityFigures,
    AudienceFigures,
    Customer,
    Job,
    OverviewFigures,
    Purpose,
    ScoringRun,
    Segment,
    SegmentFigures,
)
from marketing.selectors.audiences import audience_members_now, audience_readiness
from marketing.selectors.consent import consent_q, consented_counts
from marketing.selectors.overview import breakdown_fields, count_breakdown
from marketing.selectors.segments import segment_customers
from marketing.services.audience_diversity import (
    AudienceDiversityError,
    audience_diversity,
    audience_diversity_settings,
)
from marketing.services.audit import Actor
from marketing.services.jobs import Progress, job_create, register_follow_up, register_runner

FiguresRow = AudienceFigures | SegmentFigures | OverviewFigures | AudienceDiversityFigures


def _start(row: FiguresRow, *, kind: str, title: str, params: dict[str, Any], by: Actor) -> Job:
    """The row's unfinished job, or a new one recorded on the row (the row locked meanwhile,
    so that two requests at once start one job)."""
    locked = type(row).objects.select_for_update(of=("self",)).select_related("job").get(pk=row.pk)
    if locked.job is not None and not locked.job.is_finished:
        return locked.job
    job = job_create(kind=kind, title=title, params=params, by=by)
    type(row).objects.filter(pk=row.pk).update(job=job)
    row.job = job  # the caller's row (and its subject's cached link to it) sees the job too
    return job


def _store(model: type[FiguresRow], job: Job | None, figures: dict[str, Any], **key: Any) -> None:
    model.objects.update_or_create(
        **key, defaults={"figures": figures, "computed_at": timezone.now(), "job": job}
    )


# ---- audiences --------------------------------------------------------------------------------


@transaction.atomic
def audience_figures_refresh(*, audience: Audience, by: Actor) -> Job:
    """Start counting the audience's consent gate and match readiness (see
    ``audience_readiness``); returns the job (the running one, if any)."""
    row, _ = AudienceFigures.objects.get_or_create(audience=audience)
    return _start(
        row,
        kind=Job.Kind.AUDIENCE_PREVIEW,
        title=f"Count audience “{audience.name}”"[:200],
        params={"audience": audience.pk},
        by=by,
    )


def audience_figures_save(*, audience: Audience, job: Job | None, figures: dict[str, Any]) -> None:
    """Keep ``figures`` (of ``audience_readiness``) as the audience's last figures."""
    _store(AudienceFigures, job, figures, audience=audience)


@register_runner(Job.Kind.AUDIENCE_PREVIEW, restartable=True)
def run_audience_preview(job: Job, progress: Progress) -> dict[str, Any]:
    audience = Audience.objects.select_related("segment", "scoring_run__training_run", "offer").get(
        pk=job.params["audience"]
    )
    progress(2, "Counting the members and their consent")
    figures = audience_readiness(members=audience_members_now(audience), progress=progress)
    audience_figures_save(audience=audience, job=job, figures=figures)
    return {"audience": audience.pk}


# ---- segments ---------------------------------------------------------------------------------


@transaction.atomic
def segment_figures_refresh(*, segment: Segment, by: Actor) -> Job:
    """Start counting the segment's members and their reach per purpose."""
    row, _ = SegmentFigures.objects.get_or_create(segment=segment)
    return _start(
        row,
        kind=Job.Kind.SEGMENT_COUNT,
        title=f"Count segment “{segment.name}”"[:200],
        params={"segment": segment.pk},
        by=by,
    )


def segment_count(rules: dict[str, Any]) -> dict[str, Any]:
    """A segment's members and how many of them may be used for each purpose, raw: one
    aggregate query with a FILTER per purpose."""
    reach = segment_customers(rules).aggregate(
        count=Count("pk"),
        **{purpose.value: Count("pk", filter=consent_q(purpose.value)) for purpose in Purpose},
    )
    return {"count": reach.pop("count"), "reach": reach}


# A count made while another import waits in the queue would be out of date as soon as that
# import ends, and that import starts a count of its own when it ends (however it ends): a
# batch of files is counted once, after the last, not after each.
IMPORT_WAITING = "An import is waiting to run: the counts are made once it has run."


def _import_waiting() -> bool:
    return Job.objects.filter(kind=Job.Kind.IMPORT, status=Job.Status.QUEUED).exists()


@register_runner(Job.Kind.SEGMENT_COUNT, restartable=True)
def run_segment_count(job: Job, progress: Progress) -> dict[str, Any]:
    if _import_waiting():
        return {"skipped": IMPORT_WAITING}
    segment = Segment.objects.get(pk=job.params["segment"])
    progress(5, "Counting the members and their consent")
    rules = segment.rules
    figures = segment_count(rules)
    _store(SegmentFigures, job, figures, segment=segment)
    SegmentFigures.objects.filter(segment=segment).update(rules=rules)
    return {"segment": segment.pk, "count": figures["count"]}


# ---- the overview -----------------------------------------------------------------------------


@transaction.atomic
def overview_refresh(*, by: Actor) -> Job:
    """Start counting the overview's figures (customers, consent per purpose, breakdowns)."""
    row = OverviewFigures.objects.order_by("id").first() or OverviewFigures.objects.create()
    return _start(row, kind=Job.Kind.OVERVIEW, title="Count the customer base", params={}, by=by)


@register_runner(Job.Kind.OVERVIEW, restartable=True)
def run_overview(job: Job, progress: Progress) -> dict[str, Any]:
    if _import_waiting():
        return {"skipped": IMPORT_WAITING}
    progress(5, "Counting customers and their consent")
    # The whole base: the grants in the current consent table, without a join to customers.
    consent = consented_counts()
    customers = Customer.objects.count()
    fields = breakdown_fields()
    breakdowns = {}
    for done, field in enumerate(fields):
        progress(20 + 80 * done / len(fields), f"Grouping customers by {field}")
        breakdowns[field.name] = count_breakdown(field)
    row = OverviewFigures.objects.order_by("id").first() or OverviewFigures.objects.create()
    OverviewFigures.objects.filter(pk=row.pk).update(
        figures={"customers": customers, "consent": consent, "breakdowns": breakdowns},
        computed_at=timezone.now(),
        job=job,
    )
    return {"customers": customers}


# ---- a single-offer scoring run's audience diversity -----------------------------------------


@transaction.atomic
def audience_diversity_refresh(
    *,
    scoring_run: ScoringRun,
    top_share: float | None = None,
    top_n: int | None = None,
    attributes: list[str] | None = None,
    by: Actor,
) -> Job:
    """Start computing the audience diversity of ``scoring_run`` for these settings (see
    ``audience_diversity``); returns the job (the running one, if any, whatever its settings).
    Settings that cannot work (a multi-offer run, a top out of range, an unknown attribute)
    raise ``AudienceDiversityError`` before any job starts."""
    params = audience_diversity_settings(
        scoring_run=scoring_run, top_share=top_share, top_n=top_n, attributes=attributes
    )
    row, _ = AudienceDiversityFigures.objects.get_or_create(scoring_run=scoring_run)
    return _start(
        row,
        kind=Job.Kind.AUDIENCE_DIVERSITY,
        title=f"Audience diversity of scores #{scoring_run.pk}",
        params={"scoring_run": scoring_run.pk, **params},
        by=by,
    )


@register_runner(Job.Kind.AUDIENCE_DIVERSITY, restartable=True)
def run_audience_diversity(job: Job, progress: Progress) -> dict[str, Any]:
    scoring = ScoringRun.objects.select_related("training_run", "job").get(
        pk=job.params["scoring_run"]
    )
    figures = audience_diversity(
        scoring_run=scoring,
        top_share=job.params.get("top_share"),
        top_n=job.params.get("top_n"),
        attributes=job.params.get("attributes"),
        progress=progress,
    )
    _store(AudienceDiversityFigures, job, figures, scoring_run=scoring)
    return {"scoring_run": scoring.pk, "base_size": figures["base_size"]}


@register_follow_up(Job.Kind.SCORE)
def audience_diversity_after_scoring(job: Job) -> None:
    """A single-offer scoring run computes its audience diversity (top 10 %, every attribute)
    as soon as its scores are in, so that its page usually has figures."""
    scoring = ScoringRun.objects.select_related("training_run", "job").get(job=job)
    if scoring.training_run.offer_id is None:
        return
    try:
        audience_diversity_refresh(scoring_run=scoring, by=job.created_by)
    except AudienceDiversityError:
        # Nothing to compare (no profile attribute yet): the page says so by itself.
        return


def figures_refresh_all(*, by: Actor) -> list[Job]:
    """Recount the overview and every segment (after an import, and on a schedule)."""
    jobs = [overview_refresh(by=by)]
    jobs += [segment_figures_refresh(segment=s, by=by) for s in Segment.objects.order_by("pk")]
    return jobs
