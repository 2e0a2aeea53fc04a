from django.conf import settings
from django.db import models
from django.utils.translation import gettext_lazy as _

# What is shown of an upload wherever one is read (the console, the API); the stored file,
# raw rows that may hold identifiers, is not among them.
UPLOAD_FIELDS = (
    "kind",
    "original_name",
    "size_bytes",
    "encoding",
    "delimiter",
    "headers",
    "mapping",
    "mode",
    "status",
    "row_count",
    "summary",
    "job",
)


class Upload(models.Model):
    """An uploaded CSV on its way in: sniffed, mapped, previewed, then imported as a Job."""

    class Kind(models.TextChoices):
        CUSTOMERS = "customers", _("Customers")
        OFFERS = "offers", _("Offers")
        INTERACTIONS = "interactions", _("Responses (interactions)")

    class Mode(models.TextChoices):
        ALL_OR_NOTHING = "all_or_nothing", _("All or nothing")
        VALID_ROWS = "valid_rows", _("Import the valid rows")

    class Status(models.TextChoices):
        UPLOADED = "uploaded", _("Uploaded")
        MAPPED = "mapped", _("Mapped")
        IMPORTING = "importing", _("Importing")
        IMPORTED = "imported", _("Imported")
        FAILED = "failed", _("Failed")

    kind = models.CharField(max_length=16, choices=Kind.choices)
    file = models.FileField(upload_to="uploads/%Y/%m/")
    original_name = models.CharField(max_length=255)
    size_bytes = models.BigIntegerField(default=0)
    encoding = models.CharField(max_length=20, default="utf-8")
    delimiter = models.CharField(max_length=1, default=",")
    headers = models.JSONField(default=list)
    mapping = models.JSONField(default=dict, blank=True)
    mode = models.CharField(max_length=16, choices=Mode.choices, default=Mode.ALL_OR_NOTHING)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.UPLOADED)
    row_count = models.PositiveIntegerField(null=True, blank=True)
    summary = models.JSONField(default=dict, blank=True)
    error_file = models.FileField(upload_to="upload-errors/%Y/%m/", blank=True)
    job = models.ForeignKey("marketing.Job", null=True, blank=True, on_delete=models.SET_NULL)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="uploads"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.original_name}"
