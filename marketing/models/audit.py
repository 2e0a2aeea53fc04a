from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _


class AuditEvent(models.Model):
    """Who did what to which data. Written by services, never edited."""

    class Action(models.TextChoices):
        UPLOAD = "upload", _("Upload")
        IMPORT = "import", _("Import")
        CONSENT_CHANGE = "consent_change", _("Consent change")
        PII_VIEW = "pii_view", _("PII viewed")
        # A data steward downloaded everything held about a customer (access, portability).
        DATA_ACCESS = "data_access", _("Data access download")
        EXPORT = "export", _("Export")
        ERASURE = "erasure", _("Erasure")
        SEGMENT_CHANGE = "segment_change", _("Segment change")
        JOB = "job", _("Job")
        RETENTION = "retention", _("Retention purge")
        # A model put in use for a use case (promoted or rolled back).
        PROMOTION = "promotion", _("Model promotion")

    actor = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    action = models.CharField(max_length=20, choices=Action.choices)
    # What was touched, e.g. "customer", "upload", "segment"; the ref survives erasure because
    # it is a pseudonym or an id, never a personal identifier.
    target_type = models.CharField(max_length=40)
    target_ref = models.CharField(max_length=128, blank=True)
    details = models.JSONField(default=dict, blank=True)
    at = models.DateTimeField(auto_now_add=True, db_index=True)

    class Meta:
        ordering = ["-at", "-id"]

    def __str__(self) -> str:
        return f"{self.at:%Y-%m-%d %H:%M} {self.actor} {self.action} {self.target_type}"
