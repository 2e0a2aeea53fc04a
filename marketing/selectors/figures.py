"""Reading the figures jobs computed over the customer base (see ``marketing.models.figures``).

Pages and the API read these instead of counting: each reader returns the last figures as
they may be shown (through the small-count rule), when they were computed, and the job
computing the next ones while it runs. Every query here is a lookup by key, whatever the size
of the customer base.
"""

from typing import Any

from django.db.models import QuerySet
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from marketing.models import (
    Audience,
    AudienceDiversityFigures,
    AudienceFigures,
    Job,
    OverviewFigures,
    Purpose,
    ScoringRun,
    Segment,
    SegmentFigures,
)
from marketing.selectors.audiences import shown_readiness
from marketing.selectors.segments import shown_count, suppressed_count

# Groups shown per attribute in the overview's breakdown; the rest is "Other groups".
BREAKDOWN_GROUPS = 10
UNFINISHED = (Job.Status.QUEUED, Job.Status.RUNNING)


def unfinished_job(kind: str, **params: int) -> Job | None:
    """The newest queued or running job of ``kind`` whose params include ``params``."""
    jobs = Job.objects.filter(kind=kind, status__in=UNFINISHED)
    for name, value in params.items():
        jobs = jobs.filter(**{f"params__{name}": value})
    return jobs.order_by("-created_at", "-id").first()


def _running(job: Job | None) -> Job | None:
    return job if job is not None and not job.is_finished else None


FiguresRow = AudienceFigures | SegmentFigures | OverviewFigures | AudienceDiversityFigures


def _state(row: FiguresRow | None) -> dict[str, Any]:
    """What every figures reader returns besides the figures: when, and which job."""
    job = row.job if row is not None else None
    return {
        "computed_at": row.computed_at if row is not None else None,
        "job": job,
        "running_job": _running(job),
        # The last job failed after the figures shown (or before any were computed).
        "failed_job": job if job is not None and job.status == Job.Status.FAILED else None,
    }


# ---- audiences --------------------------------------------------------------------------------


def audience_figures(audience: Audience, formats: list[str] | None = None) -> dict[str, Any]:
    """The audience's last computed readiness (``preview``: as ``shown_readiness`` shows it;
    None before the first count), optionally for ``formats`` only."""
    row = AudienceFigures.objects.select_related("job").filter(audience=audience).first()
    preview = None
    if row is not None and row.is_computed:
        preview = shown_readiness(row.figures)
        if formats:
            preview["formats"] = [f for f in preview["formats"] if f["format"] in formats]
    return {"preview": preview, **_state(row)}


# ---- a single-offer scoring run's audience diversity -----------------------------------------


def audience_diversity_figures(scoring_run: ScoringRun) -> dict[str, Any]:
    """The scoring run's last computed audience diversity (``report``, as
    ``marketing.services.audience_diversity.audience_diversity`` returns it: small groups
    already left out; None before the first computation)."""
    row = (
        AudienceDiversityFigures.objects.select_related("job")
        .filter(scoring_run=scoring_run)
        .first()
    )
    report = row.figures if row is not None and row.is_computed else None
    return {"report": report, **_state(row)}


# ---- segments ---------------------------------------------------------------------------------

NOT_COUNTED = {"count": None, "display": gettext_lazy("not counted yet"), "suppressed": False}


def segment_figures(segment: Segment) -> dict[str, Any]:
    """The segment's last count and reach per purpose, shown by the small-count rule.

    ``count`` is ``{"count", "display", "suppressed"}`` (``NOT_COUNTED`` before the first
    count); ``stale`` says the rules changed since; ``reach`` is one row per purpose."""
    try:
        row: SegmentFigures | None = segment.figures
    except SegmentFigures.DoesNotExist:
        row = None
    if row is None or not row.is_computed:
        return {"count": NOT_COUNTED, "reach": [], "stale": False, **_state(row)}
    figures = row.figures
    count = suppressed_count(figures["count"])
    return {
        "count": count,
        "reach": [
            _reach(purpose, figures["reach"].get(purpose.value, 0), count) for purpose in Purpose
        ],
        "stale": row.rules != segment.rules,
        **_state(row),
    }


def _reach(purpose: Purpose, reached: int, segment_count: dict[str, Any]) -> dict[str, Any]:
    shown = suppressed_count(reached)
    total = segment_count["count"]
    percent = None if shown["suppressed"] or not total else 100 * shown["count"] / total
    return {"label": str(purpose.label), "display": shown["display"], "percent": percent}


def segments_with_figures() -> QuerySet[Segment]:
    """Segments with their figures and the figures' job, for lists (no count per row)."""
    return Segment.objects.select_related("created_by", "figures", "figures__job")


# ---- the overview -----------------------------------------------------------------------------


def overview_figures() -> dict[str, Any]:
    """The overview's last customer count and consent per purpose, as shown."""
    row = OverviewFigures.objects.select_related("job").order_by("id").first()
    if row is None or not row.is_computed:
        return {"counted": False, "customer_count_shown": None, "consent_rows": [], **_state(row)}
    figures = row.figures
    total = figures["customers"]
    return {
        "counted": True,
        "customer_count_shown": suppressed_count(total),
        "consent_rows": consent_rows(total, figures["consent"]),
        "breakdowns": figures.get("breakdowns", {}),
        **_state(row),
    }


def consent_rows(total: int, counts: dict[str, int]) -> list[dict[str, Any]]:
    """Customers with a valid consent, purpose by purpose, out of ``total``."""
    rows = []
    base = shown_count(total)
    for purpose in Purpose:
        shown = suppressed_count(counts.get(purpose.value, 0))
        rows.append(
            {
                "purpose": purpose.value,
                "label": str(purpose.label),
                "hidden": shown["suppressed"],
                "display": shown["display"],
                # The share of the shown (rounded) counts, so it tells no more than they do.
                "percent": 100 * (shown["count"] or 0) / base if base else 0,
            }
        )
    return rows


def shown_breakdown(groups: dict[str, Any]) -> list[tuple[str, int | None]]:
    """A stored breakdown (``{"groups": [[value, n], ...] largest first, "rest": n}``) as
    shown: the largest groups that may be shown, the small ones merged into "Other groups"
    (left out when that too is small)."""
    shown: list[tuple[str, int | None]] = []
    other = groups.get("rest", 0)
    for value, n in groups.get("groups", []):
        if len(shown) < BREAKDOWN_GROUPS and shown_count(n) is not None:
            shown.append((_value_label(value), shown_count(n)))
        else:
            other += n
    if other and shown_count(other) is not None:
        shown.append((_("Other groups"), shown_count(other)))
    return shown


def _value_label(value: Any) -> str:
    if value in (None, ""):
        return _("(not set)")
    return {"true": _("Yes"), "false": _("No")}.get(str(value).lower(), str(value))
