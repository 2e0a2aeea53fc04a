"""Counts over the customer base that pages show, computed by a job and kept here.

A page never counts the customer base itself: it reads the last figures stored here, their
age (``computed_at``) and the job computing the next ones (``job``, whose progress it shows).
``figures`` holds raw counts; readers pass them through the small-count rule
(``marketing.selectors.segments.shown_count``) before showing any.
"""

from django.db import models


class ComputedFigures(models.Model):
    # Empty until a job has computed figures once.
    figures = models.JSONField(default=dict, blank=True)
    computed_at = models.DateTimeField(null=True, blank=True)
    # The last job asked to compute them (running, or the one that computed ``figures``).
    job = models.ForeignKey(
        "marketing.Job", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    class Meta:
        abstract = True

    @property
    def is_computed(self) -> bool:
        return self.computed_at is not None


class AudienceFigures(ComputedFigures):
    """An audience's size, consent gate and match readiness per export format."""

    audience = models.OneToOneField(
        "marketing.Audience", on_delete=models.CASCADE, related_name="figures"
    )

    def __str__(self) -> str:
        return f"Figures of audience {self.audience_id}"


class SegmentFigures(ComputedFigures):
    """A segment's size and how many of its members may be used for each purpose."""

    segment = models.OneToOneField(
        "marketing.Segment", on_delete=models.CASCADE, related_name="figures"
    )
    # The rules the figures were counted for: a change of rules makes them stale.
    rules = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"Figures of segment {self.segment_id}"


class OverviewFigures(ComputedFigures):
    """The overview's customer count, consent per purpose and attribute breakdowns; one row."""

    def __str__(self) -> str:
        return "Overview figures"


class AudienceDiversityFigures(ComputedFigures):
    """How the top customers of a single-offer scoring run spread over profile attributes,
    compared with every scored customer with a valid profiling consent.

    Unlike the counts above, ``figures`` is kept as shown: groups under the minimum group size
    were left out when it was computed, so no small group's counts are stored at all.
    """

    scoring_run = models.OneToOneField(
        "marketing.ScoringRun", on_delete=models.CASCADE, related_name="diversity_figures"
    )

    def __str__(self) -> str:
        return f"Audience diversity of scoring run {self.scoring_run_id}"
