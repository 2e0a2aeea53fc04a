from django.db import models
from django.utils.translation import gettext_lazy as _


class Offer(models.Model):
    """Something the team can recommend: a product, plan, content piece or deal."""

    external_id = models.CharField(max_length=128, unique=True)
    title = models.CharField(max_length=255)
    category = models.CharField(max_length=100, blank=True)
    description = models.TextField(blank=True)
    price = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    unit_cost = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    active = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["title"]

    def __str__(self) -> str:
        return self.title


class Interaction(models.Model):
    """A customer's response to an offer: shown (impression), clicked or converted."""

    class Kind(models.TextChoices):
        IMPRESSION = "impression", _("Impression")
        CLICK = "click", _("Click")
        CONVERSION = "conversion", _("Conversion")

    customer = models.ForeignKey(
        "marketing.Customer", on_delete=models.CASCADE, related_name="interactions"
    )
    offer = models.ForeignKey(Offer, on_delete=models.CASCADE, related_name="interactions")
    kind = models.CharField(max_length=12, choices=Kind.choices)
    value = models.DecimalField(max_digits=12, decimal_places=2, null=True, blank=True)
    occurred_at = models.DateTimeField()
    campaign = models.CharField(max_length=100, blank=True)

    class Meta:
        ordering = ["-occurred_at", "-id"]
        constraints = [
            # Re-importing the same response file must not double-count.
            models.UniqueConstraint(
                fields=["customer", "offer", "kind", "occurred_at"], name="interaction_natural_key"
            )
        ]
        indexes = [
            # A customer's responses of a kind, and their recent impressions (the frequency
            # cap of the next best offers reads them on every request).
            models.Index(
                fields=["customer", "kind", "occurred_at"], name="interaction_customer_kind_at"
            ),
            # The API's list order (``-occurred_at``, then id).
            models.Index(fields=["occurred_at", "id"], name="interaction_occurred_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.kind} on {self.offer_id} by {self.customer_id}"
