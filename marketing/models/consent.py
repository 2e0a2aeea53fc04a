from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


class Purpose(models.TextChoices):
    EMAIL_MARKETING = "email_marketing", _("Email marketing")
    AD_TARGETING = "ad_targeting", _("Ad targeting")
    AD_USER_DATA = "ad_user_data", _("Ad user data (Google EEA)")
    AD_PERSONALIZATION = "ad_personalization", _("Ad personalisation (Google EEA)")
    MODEL_TRAINING = "model_training", _("Model training")
    PROFILING = "profiling", _("Profiling")


class LawfulBasis(models.TextChoices):
    CONSENT = "a", _("6(1)(a) consent")
    CONTRACT = "b", _("6(1)(b) contract")
    LEGAL_OBLIGATION = "c", _("6(1)(c) legal obligation")
    VITAL_INTERESTS = "d", _("6(1)(d) vital interests")
    PUBLIC_TASK = "e", _("6(1)(e) public task")
    LEGITIMATE_INTERESTS = "f", _("6(1)(f) legitimate interests")


# What is shown of a consent record wherever its history is read (the console's inline
# history and record page, the API), after its customer.
CONSENT_HISTORY_FIELDS = (
    "purpose",
    "status",
    "lawful_basis",
    "effective_at",
    "expires_at",
    "source",
    "notice_version",
    "note",
    "recorded_at",
    "recorded_by",
)


class ConsentRecord(models.Model):
    """One event in a customer's consent history for one purpose.

    Records are appended, never changed: withdrawing is a new record with status
    ``withdrawn``. The latest record per (customer, purpose) by ``effective_at`` is the
    current state; ``marketing.selectors.consent`` is the one place that reads it.
    """

    class Status(models.TextChoices):
        GRANTED = "granted", _("Granted")
        DENIED = "denied", _("Denied")
        WITHDRAWN = "withdrawn", _("Withdrawn")

    class Source(models.TextChoices):
        FORM = "form", _("Web form")
        CSV_IMPORT = "csv_import", _("CSV import")
        API = "api", _("API")
        ADMIN = "admin", _("Admin console")
        DEMO = "demo", _("Demo data")

    # No index of its own: consent_latest_idx starts with the customer and serves every
    # lookup by customer, including the cascade when a customer is erased.
    customer = models.ForeignKey(
        "marketing.Customer", on_delete=models.CASCADE, related_name="consents", db_index=False
    )
    purpose = models.CharField(max_length=32, choices=Purpose.choices)
    status = models.CharField(max_length=10, choices=Status.choices)
    lawful_basis = models.CharField(
        max_length=1, choices=LawfulBasis.choices, default=LawfulBasis.CONSENT
    )
    # When the grant, denial or withdrawal took effect (given_at / withdrawn_at).
    effective_at = models.DateTimeField()
    expires_at = models.DateTimeField(null=True, blank=True)
    source = models.CharField(max_length=16, choices=Source.choices)
    notice_version = models.CharField(max_length=32, blank=True)
    note = models.CharField(max_length=255, blank=True, help_text="How it was given/withdrawn")
    recorded_at = models.DateTimeField(auto_now_add=True)
    # Indexed only where set (consent_recorded_by_idx): deleting a user finds their records
    # by it, while imports and API calls without a user add no entry for every record.
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        db_index=False,
    )

    class Meta:
        ordering = ["customer_id", "purpose", "-effective_at", "-id"]
        indexes = [
            models.Index(
                fields=["customer", "purpose", "-effective_at", "-id"], name="consent_latest_idx"
            ),
            # Filters by purpose and status (admin, API) for denials and withdrawals. Grants,
            # most records, are left out: a filter on them reads a large share of the table,
            # done as well without an index, and every imported grant would update it.
            models.Index(
                fields=["purpose", "status"],
                name="consent_not_granted_idx",
                condition=~models.Q(status="granted"),
            ),
            models.Index(
                fields=["recorded_by"],
                name="consent_recorded_by_idx",
                condition=models.Q(recorded_by__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} {self.status} @ {self.effective_at:%Y-%m-%d}"

    def save(self, *args, **kwargs):
        if self.pk is not None:
            raise ValidationError("Consent records are append-only; add a new record instead.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise ValidationError("Consent records are history and cannot be deleted one by one.")

    @property
    def given_at(self):
        return self.effective_at if self.status == self.Status.GRANTED else None

    @property
    def withdrawn_at(self):
        return self.effective_at if self.status == self.Status.WITHDRAWN else None


class CurrentConsent(models.Model):
    """The state in effect of one (customer, purpose): the latest history record effective
    now, kept as data so that "who may be used for P now" is an indexed join.

    Written only by ``marketing.services.current_consent``, in the transaction that appends
    to the history, and recomputable from it (``manage.py rebuild_current_consent``). The
    selector compares ``expires_at`` and ``pending_at`` with the time it is asked, so a grant
    stops counting the moment it expires or a later-dated record takes effect, whether or not
    the scheduled refresh has run yet.
    """

    class Status(models.TextChoices):
        GRANTED = "granted", _("Granted")
        DENIED = "denied", _("Denied")
        WITHDRAWN = "withdrawn", _("Withdrawn")
        # A grant past its expiry when the row was last written.
        EXPIRED = "expired", _("Expired")
        # Only records that take effect later: nothing is in effect yet.
        PENDING = "pending", _("Not yet in effect")

    # No index of its own: the unique (customer, purpose) constraint serves lookups by
    # customer and the cascade when a customer is erased.
    customer = models.ForeignKey(
        "marketing.Customer",
        on_delete=models.CASCADE,
        related_name="current_consents",
        db_index=False,
    )
    purpose = models.CharField(max_length=32, choices=Purpose.choices)
    status = models.CharField(max_length=10, choices=Status.choices)
    # The record in effect (null while pending). History goes only with its customer, and
    # this row with it, so no database constraint (nor the index one would need) is kept.
    record = models.ForeignKey(
        ConsentRecord,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        db_index=False,
        null=True,
        related_name="+",
    )
    effective_at = models.DateTimeField(null=True)
    expires_at = models.DateTimeField(null=True)
    # When the earliest record dated later than the last write takes effect; from then on
    # the row is out of date until the scheduled refresh recomputes it.
    pending_at = models.DateTimeField(null=True)
    updated_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["customer", "purpose"], name="current_consent_pair")
        ]
        indexes = [
            # "Customers with a valid grant for P now": a range of this index per purpose,
            # joined to customers in id order; the times are checked in the index.
            models.Index(
                fields=["purpose", "customer", "expires_at", "pending_at"],
                name="current_consent_granted_idx",
                condition=models.Q(status="granted"),
            ),
            # The scheduled refresh: grants that expire, rows whose next record is due.
            models.Index(
                fields=["expires_at"],
                name="current_consent_expiry_idx",
                condition=models.Q(status="granted", expires_at__isnull=False),
            ),
            models.Index(
                fields=["pending_at"],
                name="current_consent_pending_idx",
                condition=models.Q(pending_at__isnull=False),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.purpose} {self.status}"
