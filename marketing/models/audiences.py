from django.db import models
from django.utils.translation import gettext_lazy as _

from marketing.exporters.formats import PLATFORM_CHOICES
from marketing.models.base import (
    CreatedRecord,
    JobRecord,
    erasable_customer_link,
    optional_link,
    user_link,
)


class Audience(CreatedRecord):
    """A segment, optionally cut by model score, frozen into a list of members.

    Building an audience is a draft (segment, scores and cut); freezing it writes who was in
    it at that moment and why (``AudienceMember``), its size and a consent snapshot. Exports
    are made only from frozen audiences, and each export applies the consent gate again.
    """

    class Cut(models.TextChoices):
        ALL = "all", _("Everyone in the segment")
        TOP_N = "top_n", _("Top N by score")
        TOP_PERCENT = "top_percent", _("Top % by score")
        THRESHOLD = "threshold", _("Score at least")

    class Status(models.TextChoices):
        DRAFT = "draft", _("Draft")
        FROZEN = "frozen", _("Frozen")

    name = models.CharField(max_length=200)
    # The segment may change or go later; its name and rules as frozen are kept below.
    segment = optional_link("marketing.Segment", related_name="audiences")
    segment_name = models.CharField(max_length=120, blank=True)
    segment_rules = models.JSONField(default=dict, blank=True)
    # Scores that rank the members; empty: no score cut.
    scoring_run = optional_link("marketing.ScoringRun", related_name="audiences")
    # The offer whose score ranks a multi-offer scoring run; empty: each customer's best offer.
    offer = optional_link("marketing.Offer", related_name="+")
    cut = models.CharField(max_length=12, choices=Cut.choices, default=Cut.ALL)
    # N for top N, a percentage for top %, the lowest score kept for a threshold.
    cut_value = models.FloatField(null=True, blank=True)
    status = models.CharField(max_length=8, choices=Status.choices, default=Status.DRAFT)
    size = models.PositiveIntegerField(default=0)
    # At freezing: who in the audience could then be used for ad targeting, by reason.
    consent_snapshot = models.JSONField(default=dict, blank=True)
    frozen_at = models.DateTimeField(null=True, blank=True)
    frozen_by = user_link(blank=True)
    # Control group: the share of the members held back at freezing (never exported), drawn
    # from ``control_seed`` and stratified by score decile; empty: no control group.
    control_share = models.FloatField(null=True, blank=True)
    control_seed = models.PositiveIntegerField(null=True, blank=True)
    control_size = models.PositiveIntegerField(default=0)
    # Responses after freezing, contacted members against the control (a "audience_results"
    # job): {"at", "offer", "since", "treated": {...}, "control": {...}, "lift": {...}}.
    results = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return self.name

    @property
    def is_frozen(self) -> bool:
        return self.status == self.Status.FROZEN


class AudienceMember(models.Model):
    """One customer in a frozen audience, with the score and rank that put them there.

    The frozen members are also the record of who every export of the audience held (minus
    its ``ExportExclusion`` rows). So the row outlives an erasure of the customer, keeping
    only the pseudonym: an erasure can still be traced to the files that held the person.
    """

    audience = models.ForeignKey(Audience, on_delete=models.CASCADE, related_name="members")
    customer = erasable_customer_link(related_name="audience_memberships")
    pseudonym = models.CharField(max_length=64)
    score = models.FloatField(null=True, blank=True)
    # 1 = highest score; empty without a scoring run.
    rank = models.PositiveIntegerField(null=True, blank=True)
    # Why the customer is in the audience, in words (the segment and the cut).
    why = models.CharField(max_length=255, blank=True)
    # Held back as control: counted in the results, never exported.
    # A database default too: members are written by INSERT ... SELECT in bulk.
    in_control = models.BooleanField(default=False, db_default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["audience", "customer"], name="audience_member_once")
        ]
        # The members of an audience by rank (ties by id), as pages and exports list them.
        indexes = [models.Index(fields=["audience", "rank", "id"], name="audience_member_rank")]

    def __str__(self) -> str:
        return f"{self.pseudonym[:12]} in {self.audience_id}"


class Suppression(CreatedRecord):
    """A customer never to be sent to an ad platform, whatever their consent says (an
    objection, a complaint, an opt-out of sharing)."""

    customer = models.OneToOneField(
        "marketing.Customer", on_delete=models.CASCADE, related_name="suppression"
    )
    reason = models.CharField(max_length=255, blank=True)
    # Declared again only to stay blank, as it was before the base existed.
    created_by = user_link(blank=True)

    def __str__(self) -> str:
        return f"Suppressed {self.customer}"


class Export(JobRecord):
    """One audience file for one platform, made by a Job (kind "export").

    Records who made it, when, from which audience, how many rows went out and how many
    members were left out by reason, the consent snapshot, and the file's SHA-256.
    """

    job = models.OneToOneField("marketing.Job", on_delete=models.PROTECT, related_name="export")
    audience = models.ForeignKey(Audience, on_delete=models.PROTECT, related_name="exports")
    platform = models.CharField(max_length=32, choices=PLATFORM_CHOICES)
    row_count = models.PositiveIntegerField(default=0)
    # Members left out, by reason (see ``marketing.services.exports.LEFT_OUT_REASONS``).
    left_out = models.JSONField(default=dict, blank=True)
    # Relative to MEDIA_ROOT.
    file_path = models.CharField(max_length=300, blank=True)
    file_size = models.PositiveBigIntegerField(default=0)
    checksum = models.CharField(max_length=64, blank=True, help_text="SHA-256 of the file, hex")
    consent_snapshot = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"{self.get_platform_display()} export #{self.pk}"


class ExportExclusion(models.Model):
    """A member of the exported audience whose row is not in the export's file: refused by
    the consent gate or the suppression list, or with nothing the platform can match (the
    export's ``left_out`` counts say how many for each reason).

    Who an export held is its audience's frozen members without these rows, so an export of a
    million members writes only the few it leaves out.
    """

    export = models.ForeignKey(Export, on_delete=models.CASCADE, related_name="exclusions")
    customer = erasable_customer_link(related_name="export_exclusions")
    pseudonym = models.CharField(max_length=64)

    def __str__(self) -> str:
        return f"{self.pseudonym[:12]} left out of export {self.export_id}"
