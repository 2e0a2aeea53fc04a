from django.conf import settings
from django.db import models
from django.utils import translation
from django.utils.translation import gettext_lazy as _

from marketing.stored_texts import translated


class Job(models.Model):
    """Every long operation (import, training, scoring, explaining, export) is a Job.

    Pages and the API read progress from this row; the worker only updates it.
    """

    class Kind(models.TextChoices):
        IMPORT = "import", _("CSV import")
        TRAIN = "train", _("Model training")
        SCORE = "score", _("Scoring")
        EXPLAIN = "explain", _("Explanations")
        RECOMMEND = "recommend", _("Recommendations")
        PLAN = "plan", _("Campaign planning")
        EXPORT = "export", _("Audience export")
        ERASE = "erase", _("Erasure")
        AUDIENCE_PREVIEW = "audience_preview", _("Audience counts")
        AUDIENCE_FREEZE = "audience_freeze", _("Audience freeze")
        SEGMENT_COUNT = "segment_count", _("Segment counts")
        OVERVIEW = "overview", _("Overview counts")
        AUDIENCE_DIVERSITY = "diversity", _("Audience diversity")
        AUDIENCE_RESULTS = "audience_results", _("Campaign results")
        DRIFT = "drift", _("Drift check")
        COMPARE = "compare", _("Model comparison")

    class Status(models.TextChoices):
        QUEUED = "queued", _("Queued")
        RUNNING = "running", _("Running")
        SUCCEEDED = "succeeded", _("Succeeded")
        FAILED = "failed", _("Failed")
        CANCELLED = "cancelled", _("Cancelled")

    FINISHED = (Status.SUCCEEDED, Status.FAILED, Status.CANCELLED)

    kind = models.CharField(max_length=16, choices=Kind.choices)
    title = models.CharField(max_length=200, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    progress = models.PositiveSmallIntegerField(default=0)
    message = models.CharField(max_length=255, blank=True)
    params = models.JSONField(default=dict, blank=True)
    result = models.JSONField(default=dict, blank=True)
    error = models.TextField(blank=True)
    cancel_requested = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="jobs"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # The lease: the worker running the job marks it alive; a job whose mark is older than
    # settings.JOB_LEASE_SECONDS has lost its worker (marketing.services.jobs.jobs_reconcile).
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # How many times a worker has taken the job (a restart after a lost worker adds one).
    attempts = models.PositiveSmallIntegerField(default=0)
    # When the job was last handed to the queue (sent again when no worker takes it).
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["status", "-created_at"], name="job_status_created")]

    def __str__(self) -> str:
        """The title as pages show it, in the reader's language."""
        return translated(self.stored_title)

    @property
    def stored_title(self) -> str:
        """The title as stored and as the API answers it (English); the kind and number of a
        job without one."""
        if self.title:
            return self.title
        with translation.override("en"):
            return f"{self.get_kind_display()} #{self.pk}"

    @property
    def shown_message(self) -> str:
        """The progress or failure message (stored in English) in the reader's language."""
        return translated(self.message)

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED
