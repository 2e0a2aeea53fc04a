from django.db import models
from django.utils.translation import gettext_lazy as _

from marketing.models.base import JobRecord, optional_link, user_link


class TrainingRun(JobRecord):
    """One training of a click model: what it learned from, how, and how well it did.

    The work runs as a Job (kind "train"); this row keeps what outlives the job: the
    configuration, the consent lineage of the rows, the metrics beside the baseline, the
    training curves and the id of the model in the registry.
    """

    class Target(models.TextChoices):
        CONVERSION = "conversion", _("Conversion")
        CLICK = "click", _("Click (or conversion)")

    class Start(models.TextChoices):
        SCRATCH = "scratch", _("From scratch")
        INCREMENTAL = "incremental", _("Incremental (continued fine-tuning)")

    class Mode(models.TextChoices):
        LORA = "lora", _("LoRA adapters")
        FULL = "full", _("Full fine-tuning")
        FROZEN = "frozen", _("Frozen encoder + head")

    job = models.OneToOneField(
        "marketing.Job", on_delete=models.PROTECT, related_name="training_run"
    )
    name = models.CharField(max_length=200)
    # Empty: every customer.
    segment = optional_link("marketing.Segment", related_name="+")
    # Set: a single-offer campaign (one example per customer). Empty: every offer, with the
    # offer's fields in the model's input.
    offer = optional_link("marketing.Offer", related_name="+")
    target = models.CharField(max_length=12, choices=Target.choices, default=Target.CONVERSION)
    base_model = models.CharField(max_length=300)
    mode = models.CharField(max_length=8, choices=Mode.choices, default=Mode.LORA)
    # What was asked (TrainParams; an empty setting is picked for the budget when it runs),
    # and the fields the marketer kept although the leakage check flags them ("keep_fields").
    params = models.JSONField(default=dict, blank=True)
    # Every setting the run used, the picked ones included (filled when it starts).
    settings = models.JSONField(default=dict, blank=True)
    # Fields the leakage check flagged: [{"field", "reason", "single_field_auc" or
    # "after_response_share", "left_out"}].
    leakage = models.JSONField(default=list, blank=True)

    # Filled while and after the job runs.
    # {"loss": [[step, loss], ...], "val_auc": [[step, auc], ...], "total_steps", "epochs"}
    curves = models.JSONField(default=dict, blank=True)
    # {"bert": {...}, "baseline": {...}}: recengine.metrics.ClickMetrics on the same test rows.
    metrics = models.JSONField(default=dict, blank=True)
    model_id = models.CharField(max_length=64, blank=True)
    # Examples found and used: {"examples", "positives", "train", "val", "test"}.
    rows = models.JSONField(default=dict, blank=True)
    # One training row as the model reads it (pseudonymous profile values, never identifiers).
    example_text = models.TextField(blank=True)
    customers_used = models.PositiveIntegerField(null=True, blank=True)
    # Customers with responses left out for lack of a valid model_training consent, by reason:
    # no_record, denied, withdrawn, expired.
    customers_excluded = models.JSONField(default=dict, blank=True)
    fingerprint = models.CharField(max_length=64, blank=True)
    consent_snapshot = models.JSONField(default=dict, blank=True)
    # A customer whose data trained this model was erased afterwards: retrain without them.
    flagged_erasure = models.BooleanField(default=False)
    erased_customers = models.PositiveIntegerField(default=0)
    # A re-training: the run it re-trains, and whether it went on from that model's weights
    # ("incremental": the adapters and head fine-tuned further on the responses since) or
    # started over ("scratch").
    parent = optional_link("marketing.TrainingRun", related_name="retrainings")
    start = models.CharField(max_length=12, choices=Start.choices, default=Start.SCRATCH)
    # Incremental: the responses it learned from are those since this moment.
    data_since = models.DateTimeField(null=True, blank=True)
    # Against the parent: customers it learned from that were erased or withdrew their
    # training consent since, and were left out ({"erased": n, "withdrawn": n}).
    left_out_since_parent = models.JSONField(default=dict, blank=True)
    # The training rows' profile for drift checks (recengine.drift.Reference.as_dict()).
    reference = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return self.name

    @property
    def base_model_label(self) -> str:
        """The base model's short name ("all-MiniLM-L6-v2" for the packaged one or a path)."""
        return self.base_model.removeprefix("packaged:").rstrip("/").rsplit("/", 1)[-1]


class ScoringRun(JobRecord):
    """Scores of one trained model for the consented customers of a segment (a Job "score")."""

    class Scorer(models.TextChoices):
        # The model the training run serves: BERT, or its blend with the baseline.
        SERVED = "served", _("Served model")
        # The same with BERT's linear layers in int8 (CPU).
        INT8 = "int8", _("Served model, int8")
        # A LightGBM student that learnt the served model's scores from the profile columns.
        FAST = "fast", _("Fast path (distilled)")

    job = models.OneToOneField(
        "marketing.Job", on_delete=models.PROTECT, related_name="scoring_run"
    )
    training_run = models.ForeignKey(
        TrainingRun, on_delete=models.CASCADE, related_name="scoring_runs"
    )
    # Empty: every customer.
    segment = optional_link("marketing.Segment", related_name="+")
    rows_scored = models.PositiveIntegerField(default=0)
    customers_scored = models.PositiveIntegerField(default=0)
    # Customers of the segment left out for lack of a valid profiling consent, by reason.
    customers_excluded = models.JSONField(default=dict, blank=True)
    # {"edges": [...], "counts": [...], "mean": ..., "quantiles": {...}}
    distribution = models.JSONField(default=dict, blank=True)
    scorer = models.CharField(max_length=8, choices=Scorer.choices, default=Scorer.SERVED)

    def __str__(self) -> str:
        return f"Scores of {self.training_run} #{self.pk}"


class ScoringChunk(models.Model):
    """One share of a scoring run: the consented customers whose ids lie in
    ``first_customer``..``last_customer``. Any worker may take a queued chunk (the run's own
    job takes them too); its scores are written in one transaction with the chunk's "done",
    and only by the attempt that holds it, so a rerun writes each row once."""

    class Status(models.TextChoices):
        QUEUED = "queued", _("Waiting")
        RUNNING = "running", _("Scoring")
        DONE = "done", _("Done")
        # Its last attempt failed; taken again while it has attempts left.
        FAILED = "failed", _("Failed")
        # The run was cancelled or failed: nothing of it is kept.
        CANCELLED = "cancelled", _("Cancelled")

    scoring_run = models.ForeignKey(ScoringRun, on_delete=models.CASCADE, related_name="chunks")
    number = models.PositiveIntegerField()
    first_customer = models.BigIntegerField()
    last_customer = models.BigIntegerField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveSmallIntegerField(default=0)
    heartbeat_at = models.DateTimeField(null=True, blank=True)
    # Rows scored so far by the current attempt (its final count once done).
    rows_scored = models.PositiveIntegerField(default=0)
    customers_scored = models.PositiveIntegerField(default=0)
    score_sum = models.FloatField(default=0.0)
    # Counts of the chunk's scores in the run's fine histogram bins (sparse: {bin: count}).
    histogram = models.JSONField(default=dict, blank=True)
    # The process that scored it ("host:pid"), and why its last attempt failed.
    worker = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    # When its current attempt started, and when it was done.
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["scoring_run", "number"], name="scoring_chunk_number")
        ]

    def __str__(self) -> str:
        return f"Chunk {self.number} of scoring run {self.scoring_run_id}"


class CustomerScore(models.Model):
    """P(response) of one customer (for one offer) from one scoring run."""

    # No index of their own: the two below start with each.
    scoring_run = models.ForeignKey(
        ScoringRun, on_delete=models.CASCADE, related_name="scores", db_index=False
    )
    customer = models.ForeignKey(
        "marketing.Customer", on_delete=models.CASCADE, related_name="scores", db_index=False
    )
    offer = optional_link("marketing.Offer", related_name="+", on_delete=models.CASCADE)
    score = models.FloatField()

    class Meta:
        indexes = [
            # A run's scores best first, ties by customer: top scores, downloads, ranking.
            models.Index(fields=["scoring_run", "-score", "customer"], name="score_run_rank"),
            # One customer's score in a run (freezing and previews look it up per customer),
            # a customer's scores (their page, erasure), read from the index alone.
            models.Index(fields=["customer", "scoring_run", "score"], name="score_customer_run"),
        ]

    def __str__(self) -> str:
        return f"{self.score:.3f} for {self.customer_id}"


class ModelPromotion(models.Model):
    """One change of the champion of a use case (an offer, or every offer, and a target).

    The champion is the model that scoring and campaigns use for the use case: the training
    run of the use case's latest promotion. A rollback is a promotion too (its action says
    so), back to the champion before; the rows are the use case's history of who put which
    model in use, when and why.
    """

    class Action(models.TextChoices):
        PROMOTE = "promote", _("Promoted")
        ROLLBACK = "rollback", _("Rolled back")

    # Empty: the use case of models trained on every offer. An offer's history goes with it.
    offer = optional_link("marketing.Offer", related_name="+", on_delete=models.CASCADE)
    target = models.CharField(max_length=12, choices=TrainingRun.Target.choices)
    training_run = models.ForeignKey(
        TrainingRun, on_delete=models.PROTECT, related_name="promotions"
    )
    # The champion it replaced (empty for the use case's first).
    previous = models.ForeignKey(
        TrainingRun, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    action = models.CharField(max_length=10, choices=Action.choices, default=Action.PROMOTE)
    note = models.CharField(max_length=300, blank=True)
    # The two models' test figures when it happened: {"champion": {...}, "previous": {...}}.
    figures = models.JSONField(default=dict, blank=True)
    by = user_link(blank=True)
    at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["offer", "target", "at"], name="promotion_use_case_idx")]

    def __str__(self) -> str:
        return f"{self.get_action_display()}: {self.training_run_id} ({self.target})"


class RetrainSchedule(models.Model):
    """Re-train a use case's model in use every so often (celery beat starts the due ones).

    Edited in the admin. Each run re-trains the champion of the use case at that moment, by
    continued fine-tuning ("incremental") or from scratch, with the same consent gating,
    lineage and leakage check as any training run.
    """

    offer = optional_link("marketing.Offer", related_name="+", on_delete=models.CASCADE)
    target = models.CharField(
        max_length=12, choices=TrainingRun.Target.choices, default=TrainingRun.Target.CONVERSION
    )
    start = models.CharField(
        max_length=12, choices=TrainingRun.Start.choices, default=TrainingRun.Start.INCREMENTAL
    )
    every_days = models.PositiveSmallIntegerField(default=30)
    enabled = models.BooleanField(default=True)
    next_at = models.DateTimeField()
    last_run = optional_link("marketing.TrainingRun", related_name="+")
    last_message = models.CharField(max_length=300, blank=True)
    created_by = user_link(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["next_at", "id"]

    def __str__(self) -> str:
        return f"Re-train {self.offer or 'every offer'} · {self.target} every {self.every_days} d"


class DriftCheck(JobRecord):
    """One comparison of a model in use with the data it was trained on (a "drift" job):
    recent scoring inputs and scores against the training rows' profile (PSI per field and
    for the score) and, where responses arrived since, the live AUC and calibration."""

    job = models.OneToOneField("marketing.Job", on_delete=models.PROTECT, related_name="drift")
    training_run = models.ForeignKey(
        TrainingRun, on_delete=models.CASCADE, related_name="drift_checks"
    )
    # recengine.drift.DriftReport.as_dict(): {"fields": [...], "score": {...}, "moved": [...]}.
    report = models.JSONField(default=dict, blank=True)
    # recengine.drift.LiveQuality.as_dict() on responses since training, or {}.
    live = models.JSONField(default=dict, blank=True)
    # A threshold was crossed: the overview and the model page show it.
    alert = models.BooleanField(default=False)
    recent_rows = models.PositiveIntegerField(default=0)

    def __str__(self) -> str:
        return f"Drift check of {self.training_run_id}"
