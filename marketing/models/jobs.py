from django.conf import settings
from django.db import models


class Job(models.Model):
    """Every long operation (import, training, scoring, explaining, export) is a Job.

    Pages and the API read progress from this row; the worker only updates it.
    """

    class Kind(models.TextChoices):
        IMPORT = "import", "CSV import"
        TRAIN = "train", "Model training"
        SCORE = "score", "Scoring"
        EXPLAIN = "explain", "Explanations"
        RECOMMEND = "recommend", "Recommendations"
        PLAN = "plan", "Campaign planning"
        EXPORT = "export", "Audience export"
        ERASE = "erase", "Erasure"
        AUDIENCE_PREVIEW = "audience_preview", "Audience counts"
        AUDIENCE_FREEZE = "audience_freeze", "Audience freeze"
        SEGMENT_COUNT = "segment_count", "Segment counts"
        OVERVIEW = "overview", "Overview counts"
        AUDIENCE_DIVERSITY = "diversity", "Audience diversity"

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        SUCCEEDED = "succeeded", "Succeeded"
        FAILED = "failed", "Failed"
        CANCELLED = "cancelled", "Cancelled"

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
        return self.title or f"{self.get_kind_display()} #{self.pk}"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED
