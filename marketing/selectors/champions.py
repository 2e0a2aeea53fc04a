"""Reading which model each use case (an offer and a target) uses, and its history."""

from __future__ import annotations

from django.db.models import BooleanField, Case, QuerySet, Value, When

from marketing.models import DriftCheck, Job, ModelPromotion, Offer, ScoringRun, TrainingRun
from marketing.prepared import PreparedQuery


def use_case_promotions(offer: Offer | int | None, target: str) -> QuerySet[ModelPromotion]:
    """The use case's promotions and rollbacks, newest first."""
    return _newest_first(offer, target).select_related(
        "training_run", "training_run__job", "previous", "by"
    )


def _newest_first(offer: Offer | int | None, target: str) -> QuerySet[ModelPromotion]:
    offer_id = offer.pk if isinstance(offer, Offer) else offer
    rows = ModelPromotion.objects.filter(target=target)
    rows = rows.filter(offer__isnull=True) if offer_id is None else rows.filter(offer_id=offer_id)
    return rows.order_by("-at", "-id")


def latest_promotion(
    offer: Offer | int | None, target: str, *, lock: bool = False
) -> ModelPromotion | None:
    rows = use_case_promotions(offer, target)
    if lock:
        rows = rows.select_for_update(of=("self",))
    return rows.first()


def champion_for(offer: Offer | int | None, target: str) -> TrainingRun | None:
    """The run whose model the use case uses (None until one is promoted)."""
    promotion = latest_promotion(offer, target)
    return promotion.training_run if promotion else None


def _champion_query(offer: int | None, target: str) -> QuerySet:
    return _newest_first(offer, target).values_list("training_run_id", "training_run__model_id")[:1]


# Built into SQL once per process: asked on every request of the next best offers.
_TARGET = ModelPromotion._meta.get_field("target")
_champion_every_offer = PreparedQuery(lambda target: _champion_query(None, target), target=_TARGET)
_champion_of_offer = PreparedQuery(
    _champion_query, offer=ModelPromotion._meta.get_field("offer").target_field, target=_TARGET
)


def champion_model(offer: Offer | int | None, target: str) -> tuple[int, str] | None:
    """(run id, model id) of the use case's champion, from one read of the promotions'
    index: for callers that ask on every request whether the champion changed."""
    offer_id = offer.pk if isinstance(offer, Offer) else offer
    found = (
        _champion_every_offer.rows(target=target)
        if offer_id is None
        else _champion_of_offer.rows(offer=offer_id, target=target)
    )
    return found[0] if found else None


def is_champion(run: TrainingRun) -> bool:
    champion = champion_for(run.offer_id, run.target)
    return champion is not None and champion.pk == run.pk


def use_case_runs(run: TrainingRun) -> QuerySet[TrainingRun]:
    """Every training run of ``run``'s use case, oldest first (the model's versions)."""
    rows = TrainingRun.objects.filter(target=run.target)
    rows = (
        rows.filter(offer__isnull=True) if run.offer_id is None else rows.filter(offer=run.offer_id)
    )
    return rows.select_related("job", "created_by").order_by("created_at", "id")


def champions() -> dict[tuple[int | None, str], int]:
    """(offer id, target) -> the champion's run id, for every use case with one."""
    out: dict[tuple[int | None, str], int] = {}
    for offer_id, target, run_id in ModelPromotion.objects.order_by("-at", "-id").values_list(
        "offer_id", "target", "training_run_id"
    ):
        out.setdefault((offer_id, target), run_id)
    return out


def in_use_first(scorings: QuerySet[ScoringRun]) -> QuerySet[ScoringRun]:
    """Scoring runs with those of the models in use first (newest first within each), so a
    campaign form offers the champion's scores before a challenger's; ``in_use`` says which."""
    in_use = list(set(champions().values()))
    return scorings.annotate(
        in_use=Case(
            When(training_run_id__in=in_use, then=Value(True)),
            default=Value(False),
            output_field=BooleanField(),
        )
    ).order_by("-in_use", "-created_at", "-id")


def latest_drift_check(run: TrainingRun) -> DriftCheck | None:
    """The run's newest drift check, finished or not."""
    return (
        DriftCheck.objects.filter(training_run=run)
        .select_related("job")
        .order_by("-created_at", "-id")
        .first()
    )


def drift_alerts() -> list[DriftCheck]:
    """For each model in use whose newest finished drift check raised an alert: that check
    (one query per model in use; there are few)."""
    alerts = []
    for run_id in sorted(set(champions().values())):
        check = (
            DriftCheck.objects.filter(training_run_id=run_id, job__status=Job.Status.SUCCEEDED)
            .select_related("training_run", "training_run__offer")
            .order_by("-created_at", "-id")
            .first()
        )
        if check is not None and check.alert:
            alerts.append(check)
    return alerts
