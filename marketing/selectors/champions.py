"""Reading which model each use case (an offer and a target) uses, and its history."""

from __future__ import annotations

from django.db.models import BooleanField, Case, QuerySet, Value, When

from marketing.models import ModelPromotion, Offer, ScoringRun, TrainingRun


def use_case_promotions(offer: Offer | int | None, target: str) -> QuerySet[ModelPromotion]:
    """The use case's promotions and rollbacks, newest first."""
    offer_id = offer.pk if isinstance(offer, Offer) else offer
    rows = ModelPromotion.objects.filter(target=target)
    rows = rows.filter(offer__isnull=True) if offer_id is None else rows.filter(offer_id=offer_id)
    return rows.select_related("training_run", "training_run__job", "previous", "by").order_by(
        "-at", "-id"
    )


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
