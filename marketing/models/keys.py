from django.db import models
from django.utils.translation import gettext_lazy as _


class PseudonymKeyRotation(models.Model):
    """One re-keying of every stored pseudonym from one PSEUDONYM_KEY to the next.

    The row is the rotation's progress, committed with each batch: the step it is in and the
    last row (or model) of that step already re-keyed. A rerun with the same keys continues
    after it, so nothing is hashed twice. The keys are named by fingerprint only.
    """

    class Status(models.TextChoices):
        RUNNING = "running", _("Running (unfinished)")
        FINISHED = "finished", _("Finished")

    old_key_fingerprint = models.CharField(max_length=32)
    new_key_fingerprint = models.CharField(max_length=32)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.RUNNING)
    # The step being worked on (see ``marketing.services.pseudonym_keys.STEPS``) and the last
    # primary key (or model id) of that step already re-keyed; "" = none yet.
    step = models.CharField(max_length=32, blank=True)
    cursor = models.CharField(max_length=64, blank=True)
    # Rows (or model files) re-keyed so far, by step.
    counts = models.JSONField(default=dict, blank=True)
    started_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at", "-id"]
        constraints = [
            models.UniqueConstraint(
                fields=["status"],
                condition=models.Q(status="running"),
                name="one_pseudonym_key_rotation_running",
            )
        ]

    def __str__(self) -> str:
        return (
            f"Pseudonym key {self.old_key_fingerprint} -> {self.new_key_fingerprint} "
            f"({self.get_status_display()})"
        )
