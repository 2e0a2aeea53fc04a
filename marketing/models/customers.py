from django.db import models
from django.utils.translation import gettext_lazy as _


class Customer(models.Model):
    """A person in the team's customer base, known by the source system's id.

    ``attributes`` holds the typed profile (numbers stay numbers); identifying data lives
    apart in ``CustomerIdentity`` so that most of the product never touches it.
    """

    # Both are unique through constraints in Meta rather than ``unique=True``: on PostgreSQL
    # that flag adds a second, pattern-matching index to text columns, which no query here
    # uses (searches are case-insensitive) and every imported row would have to update.
    external_id = models.CharField(max_length=128)
    # Keyed HMAC-SHA256 of the external id: the stable internal handle used in models,
    # exports of scores and audit trails.
    pseudonym = models.CharField(max_length=64)
    attributes = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        # The orders the lists offer, each with the id as tiebreaker (``marketing.keyset``).
        # Searches by prefix of external id or pseudonym use case-insensitive pattern indexes
        # that exist on PostgreSQL only (migration 0015, ``customer_*_prefix_idx``).
        indexes = [
            models.Index(fields=["created_at", "id"], name="customer_created_idx"),
        ]
        constraints = [
            models.UniqueConstraint(fields=["external_id"], name="customer_external_id_unique"),
            models.UniqueConstraint(fields=["pseudonym"], name="customer_pseudonym_unique"),
        ]
        permissions = [
            ("view_pii", "Can read personal identifiers (email, phone, name, address)"),
            ("erase_customer", "Can erase a customer and all their data"),
        ]

    def __str__(self) -> str:
        return f"Customer {self.pseudonym[:12]}"


class CustomerIdentity(models.Model):
    """Personal identifiers, readable only with the ``view_pii`` permission."""

    customer = models.OneToOneField(Customer, on_delete=models.CASCADE, related_name="identity")
    email = models.EmailField(blank=True)
    phone = models.CharField(max_length=32, blank=True)
    first_name = models.CharField(max_length=100, blank=True)
    last_name = models.CharField(max_length=100, blank=True)
    country = models.CharField(max_length=2, blank=True, help_text="ISO 3166-1 alpha-2")
    postal_code = models.CharField(max_length=20, blank=True)
    # With HASH_IDENTIFIERS_ON_UPLOAD: the identifiers as each ad platform matches them, keyed
    # "<platform>:<identifier>" (``marketing.exporters.hashing``), in place of the plain
    # fields above, which stay blank. "" = stated, but nothing the platform can match.
    digests = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    PII_FIELDS = ("email", "phone", "first_name", "last_name", "country", "postal_code")

    class Meta:
        verbose_name_plural = "customer identities"

    def __str__(self) -> str:
        return f"Identity of {self.customer}"

    def is_hashed(self, field: str) -> bool:
        """Whether ``field`` is kept only as platform digests."""
        return any(key.partition(":")[2] == field for key in self.digests or {})


class ProfileField(models.Model):
    """The catalogue of profile attributes seen in uploads, with their type.

    Segments and the model read it to know how to compare and serialise a field.
    """

    class DataType(models.TextChoices):
        NUMBER = "number", _("Number")
        # A code: values are names, even when they are written as numbers (region 12).
        CATEGORY = "category", _("Category")
        DATE = "date", _("Date")
        BOOLEAN = "boolean", _("Yes/No")
        TEXT = "text", _("Text")
        # Unique per customer (an account number): stored, never learned from or segmented.
        IDENTIFIER = "identifier", _("Identifier")

    name = models.CharField(max_length=64, unique=True)
    label = models.CharField(max_length=100, blank=True)
    data_type = models.CharField(max_length=10, choices=DataType.choices)
    # A few observed values for text fields, to offer in the segment builder.
    sample_values = models.JSONField(default=list, blank=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.label or self.name
