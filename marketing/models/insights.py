"""Insight before spending: explanations, campaign plans (ROI) and diversity-aware
recommendations, each tied to the trained model or scoring run it describes."""

from django.db import models
from django.utils.translation import gettext_lazy as _

from marketing.models.base import CreatedRecord, JobRecord, optional_link


class ExplanationRun(JobRecord):
    """Field-level SHAP explanations computed by a Job ("explain"): a model's global
    importance on a sample of customers, or the contributions behind one customer's score.

    ``result`` holds the numbers behind the charts, one entry per model of the training run
    ("bert" and "baseline"), as ``recengine.explain`` returns them.
    """

    class Scope(models.TextChoices):
        GLOBAL = "global", _("Global importance")
        CUSTOMER = "customer", _("One customer")

    job = models.OneToOneField(
        "marketing.Job", on_delete=models.PROTECT, related_name="explanation_run"
    )
    training_run = models.ForeignKey(
        "marketing.TrainingRun", on_delete=models.CASCADE, related_name="explanation_runs"
    )
    scope = models.CharField(max_length=10, choices=Scope.choices)
    # Set for scope "customer"; an erasure deletes the customer's explanations with them.
    customer = optional_link(
        "marketing.Customer", related_name="explanation_runs", on_delete=models.CASCADE
    )
    # Customers explained (global) and background rows the contributions are measured against.
    sample_size = models.PositiveIntegerField(default=0)
    background_size = models.PositiveIntegerField(default=0)
    result = models.JSONField(default=dict, blank=True)

    class Meta(JobRecord.Meta):
        indexes = [models.Index(fields=["training_run", "scope", "customer"])]

    def __str__(self) -> str:
        return f"{self.get_scope_display()} of run {self.training_run_id}"


class CampaignPlan(CreatedRecord):
    """The economics of a campaign over a scoring run's scores: expected conversions,
    revenue, cost, profit and ROI by targeting depth, the best depth, the same for random
    targeting, and, once responses are uploaded under ``campaign``, the realised figures."""

    name = models.CharField(max_length=200)
    scoring_run = models.ForeignKey(
        "marketing.ScoringRun", on_delete=models.CASCADE, related_name="campaign_plans"
    )
    # The offer whose scores are planned (a multi-offer run has one score per offer).
    offer = optional_link("marketing.Offer", related_name="+")
    # What the marketer entered: cost per contact, fixed cost, value per conversion, budget.
    economics = models.JSONField(default=dict)
    # The contacts the marketer chose to target (empty = the profit-maximising depth).
    contacts = models.PositiveIntegerField(null=True, blank=True)
    # The plan: curves, table, best and budget-limited depth (``recengine.roi``).
    result = models.JSONField(default=dict, blank=True)
    # Interactions recorded with this campaign name are the campaign's actual responses.
    campaign = models.CharField(max_length=200, blank=True)
    # Realised figures beside the forecast, when responses exist.
    actual = models.JSONField(default=dict, blank=True)
    # Two-model uplift by a treatment/control attribute, or why the data did not allow it.
    uplift = models.JSONField(default=dict, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return self.name


class RecommendationRun(JobRecord):
    """Each customer's top offers from a multi-offer scoring run, re-ranked for diversity
    (maximal marginal relevance with the marketer's ``diversity`` weight, optional per-offer
    cap), with the list metrics and the accuracy-vs-diversity curve. A Job ("recommend")."""

    job = models.OneToOneField(
        "marketing.Job", on_delete=models.PROTECT, related_name="recommendation_run"
    )
    scoring_run = models.ForeignKey(
        "marketing.ScoringRun", on_delete=models.CASCADE, related_name="recommendation_runs"
    )
    # Offers per customer.
    k = models.PositiveSmallIntegerField(default=5)
    # 0 = pure relevance; larger values trade relevance for diversity.
    diversity = models.FloatField(default=0.0)
    # At most this many customers per offer (empty = no cap).
    offer_cap = models.PositiveIntegerField(null=True, blank=True)
    # Metrics, curve and exposure per offer (``recengine.list_metrics``).
    result = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"Recommendations from scoring run {self.scoring_run_id}"


class CustomerRecommendation(models.Model):
    """One offer in a customer's re-ranked list (rank 1 = shown first)."""

    recommendation_run = models.ForeignKey(
        RecommendationRun, on_delete=models.CASCADE, related_name="items"
    )
    customer = models.ForeignKey(
        "marketing.Customer", on_delete=models.CASCADE, related_name="recommendations"
    )
    offer = models.ForeignKey("marketing.Offer", on_delete=models.CASCADE, related_name="+")
    rank = models.PositiveSmallIntegerField()
    score = models.FloatField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["recommendation_run", "customer", "rank"], name="recommendation_rank_once"
            )
        ]
        indexes = [models.Index(fields=["customer", "recommendation_run"])]

    def __str__(self) -> str:
        return f"#{self.rank} for customer {self.customer_id}"
