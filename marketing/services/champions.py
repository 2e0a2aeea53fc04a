"""Champion and challenger: which trained model a use case (an offer and a target) uses.

Scoring and campaigns of a use case use its champion; any other finished run of the same use
case is a challenger. Promoting a challenger and rolling back to the champion before are each
one action by a marketer, kept as a ``ModelPromotion`` row (the use case's history) and in
the audit log.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction
from django.utils.translation import gettext_noop

from marketing.errors import ApplicationError
from marketing.models import AuditEvent, Job, ModelPromotion, Offer, TrainingRun
from marketing.selectors.champions import champion_for, latest_promotion
from marketing.services.audit import Actor, audit_log, stored_user
from marketing.services.training_params import message


class PromotionError(ApplicationError, ValueError):
    """The promotion or rollback cannot be done; the message says why."""


NOT_USABLE = gettext_noop(
    "“%(name)s” cannot be put in use: only a finished run with a saved model can."
)
TRAINED_ON_ERASED = gettext_noop(
    "“%(name)s” learned from customers erased since: retrain it before putting it in use."
)
ALREADY_CHAMPION = gettext_noop("“%(name)s” is already the model in use.")
NOTHING_TO_ROLL_BACK = gettext_noop("There is no earlier model to go back to.")
NO_CHAMPION = gettext_noop(
    "No model is in use for “%(offer)s” (%(target)s) yet: put a finished training run in use first."
)
NO_CHAMPION_EVERY_OFFER = gettext_noop(
    "No model is in use for every offer (%(target)s) yet: put a finished training run in use first."
)
MESSAGES = (
    NOT_USABLE,
    TRAINED_ON_ERASED,
    ALREADY_CHAMPION,
    NOTHING_TO_ROLL_BACK,
    NO_CHAMPION,
    NO_CHAMPION_EVERY_OFFER,
)


def champion_or_error(offer: Offer | None, target: str) -> TrainingRun:
    """The use case's champion, or a PromotionError saying none is in use."""
    champion = champion_for(offer, target)
    if champion is None:
        if offer is None:
            raise PromotionError(message(NO_CHAMPION_EVERY_OFFER, target=target))
        raise PromotionError(message(NO_CHAMPION, offer=offer.title, target=target))
    return champion


def model_promote(*, run: TrainingRun, by: Actor, note: str = "") -> ModelPromotion:
    """Make ``run`` the champion of its use case (its offer and target)."""
    with transaction.atomic():
        run = _locked(run.pk)
        current = latest_promotion(run.offer, run.target)
        champion = current.training_run if current else None
        if champion is not None and champion.pk == run.pk:
            raise PromotionError(message(ALREADY_CHAMPION, name=run.name))
        return _put_in_use(
            run, previous=champion, action=ModelPromotion.Action.PROMOTE, by=by, note=note
        )


def model_rollback(
    *, offer: Offer | None, target: str, by: Actor, note: str = ""
) -> ModelPromotion:
    """Put the use case's champion before the current one back in use."""
    with transaction.atomic():
        current = latest_promotion(offer, target, lock=True)
        if current is None or current.previous_id is None:
            raise PromotionError(message(NOTHING_TO_ROLL_BACK))
        earlier = _locked(current.previous_id)
        return _put_in_use(
            earlier,
            previous=current.training_run,
            action=ModelPromotion.Action.ROLLBACK,
            by=by,
            note=note,
        )


def _locked(pk: int) -> TrainingRun:
    return (
        TrainingRun.objects.select_for_update(of=("self",))
        .select_related("job", "offer")
        .get(pk=pk)
    )


def _put_in_use(
    run: TrainingRun,
    *,
    previous: TrainingRun | None,
    action: str,
    by: Actor,
    note: str,
) -> ModelPromotion:
    if run.job.status != Job.Status.SUCCEEDED or not run.model_id:
        raise PromotionError(message(NOT_USABLE, name=run.name))
    if run.flagged_erasure:
        raise PromotionError(message(TRAINED_ON_ERASED, name=run.name))
    promotion = ModelPromotion.objects.create(
        offer=run.offer,
        target=run.target,
        training_run=run,
        previous=previous,
        action=action,
        note=note.strip()[:300],
        figures={
            "champion": test_figures(run),
            "previous": test_figures(previous) if previous else None,
        },
        by=stored_user(by),
    )
    audit_log(
        actor=by,
        action=AuditEvent.Action.PROMOTION,
        target_type="training_run",
        target_ref=run.pk,
        details={
            "action": action,
            "offer": run.offer_id,
            "target": run.target,
            "previous": previous.pk if previous else None,
            "promotion": promotion.pk,
        },
    )
    return promotion


def test_figures(run: TrainingRun) -> dict[str, Any]:
    """The served model's test figures of a run, as the promotion keeps them."""
    metrics = run.metrics or {}
    served = "blend" if (metrics.get("blend") or {}).get("served") else "bert"
    figures = metrics.get(served) or {}
    return {
        "run": run.pk,
        "served": served,
        "roc_auc": figures.get("roc_auc"),
        "log_loss": figures.get("log_loss"),
        "trained_at": run.created_at.isoformat() if run.created_at else None,
    }
