"""Campaign plans: what contacting the top of a scoring run's ranking is expected to earn,
what it did earn once the responses are in, and what the contact itself caused (uplift).

Planning on a customer's score is profiling, so only customers who hold a valid ``profiling``
consent when the plan is computed count; the others are counted and left out. The plan itself
is a few sorts and sums over one score per customer (well under a second for 50,000 scores),
so it is computed in the request; the uplift models learn from every customer's profile and
run as a Job ("plan").
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_noop

from marketing.errors import ApplicationError
from marketing.models import (
    AuditEvent,
    CampaignPlan,
    Customer,
    Interaction,
    Job,
    Offer,
    Purpose,
    ScoringRun,
)
from marketing.selectors.consent import consent_q
from marketing.selectors.plans import consented_scores, run_scores
from marketing.services.audit import Actor, audit_log, stored_user
from marketing.services.jobs import Progress, job_create, register_runner
from marketing.stored_texts import english
from recengine.economics import (
    ECONOMICS_DEFAULTS,
    ECONOMICS_FIELDS,
    CampaignEconomics,
    economics_problems,
)

# Held-out folds of the uplift estimate: each customer's uplift comes from the models that
# did not learn from them, so the Qini curve is measured on unseen rows.
UPLIFT_FOLDS = 2

# What the plan services say, in English: errors (pages and the API), the uplift's reasons,
# job title and progress (stored). The English is what is stored and what the API answers;
# pages show it in the reader's language (``marketing.stored_texts``).
_TEXT = {
    "economics_object": gettext_noop("Economics must be an object with %(fields)s."),
    "unknown_fields": gettext_noop("Unknown field(s): %(fields)s."),
    "required": gettext_noop("This field is required."),
    "not_a_number": gettext_noop("%(value)s is not a number."),
    "only_offer": gettext_noop("This scoring run only has scores for “%(offer)s”."),
    "choose_offer": gettext_noop(
        "This scoring run scored every offer: choose the offer the campaign is for."
    ),
    "no_offer_scores": gettext_noop("This scoring run has no scores for “%(offer)s”."),
    "nobody": gettext_noop(
        "No customer of this scoring run holds a valid profiling consent now, so there is "
        "nobody to plan for."
    ),
    "too_many_contacts": gettext_noop(
        "Only %(available)s customers can be contacted (consented and scored); %(asked)s asked."
    ),
    "no_name": gettext_noop("Give the plan a name."),
    "unfinished": gettext_noop("Only a finished scoring run has scores to plan with."),
    "no_contacts": gettext_noop("Contact at least one customer (leave empty for the best depth)."),
    "no_campaign": gettext_noop("Enter the campaign name the responses were recorded under."),
    "no_plan_offer": gettext_noop("The plan's offer no longer exists."),
    "no_responses": gettext_noop(
        "No responses to “%(offer)s” are recorded under the campaign “%(campaign)s”."
    ),
    "contacts_nobody": gettext_noop(
        "The plan contacts nobody (the budget pays for no contact): there is no forecast to "
        "compare with."
    ),
    "none_consented": gettext_noop(
        "None of the targeted customers holds a valid profiling consent now."
    ),
    "no_attribute": gettext_noop("Name the attribute that marks the treated customers."),
    "no_value": gettext_noop("Enter the value that marks a customer as treated."),
    "attribute_missing": gettext_noop("No scored customer has the attribute “%(attribute)s”."),
    "uplift_title": gettext_noop("Uplift of “%(plan)s” by %(attribute)s = %(value)s"),
    "reading": gettext_noop("Reading the customers' profiles and responses"),
    "fitting": gettext_noop("Fitting the treated and control models (fold %(fold)s of %(folds)s)"),
    "measuring": gettext_noop("Measuring the uplift on held-out customers"),
}
# The engine's words the plan stores (recengine.economics, .roi and .uplift), as it words them.
ENGINE_MESSAGES = (
    gettext_noop("Must be a number."),
    gettext_noop("Must be a finite number."),
    gettext_noop("Cannot be negative."),
    gettext_noop("Must be above 0: a conversion that earns nothing cannot pay for any contact."),
    gettext_noop(
        "Scores are used as calibrated probabilities (uplift: calibrated changes in "
        "probability); expected conversions are their sums, so miscalibrated scores shift "
        "every money figure."
    ),
    gettext_noop("No budget given: every customer is affordable."),
    gettext_noop("The budget does not cover the fixed cost."),
    gettext_noop("The budget left after the fixed cost does not pay for one contact."),
    gettext_noop(
        "No control group: every row is marked as treated, so there is nobody to compare "
        "with; keep a random share of customers uncontacted."
    ),
    gettext_noop("No treatment group: no row is marked as treated."),
    gettext_noop("Too few treatment rows: %(count)s (at least %(need)s needed)."),
    gettext_noop("Too few control rows: %(count)s (at least %(need)s needed)."),
    gettext_noop(
        "Too few conversions in the treatment group: %(count)s (at least %(need)s needed)."
    ),
    gettext_noop("Too few conversions in the control group: %(count)s (at least %(need)s needed)."),
    gettext_noop(
        "Too few non-conversions in the treatment group: %(count)s (at least %(need)s needed)."
    ),
    gettext_noop(
        "Too few non-conversions in the control group: %(count)s (at least %(need)s needed)."
    ),
)
MESSAGES = (*_TEXT.values(), *ENGINE_MESSAGES)


class PlanError(ApplicationError, ValueError):
    """The plan cannot be made as asked. ``errors`` maps a field name to what is wrong with it
    (``"__all__"`` for the plan as a whole), for forms and the API."""

    def __init__(self, errors: dict[str, str]):
        super().__init__(errors=errors)


# ---- economics --------------------------------------------------------------------------------
def checked_economics(raw: dict[str, Any]) -> dict[str, float | None]:
    """The four economics as floats (budget may be None); PlanError names each bad field.

    Text is read as a number here; the rules the numbers obey are the engine's."""
    if not isinstance(raw, dict):
        raise PlanError(
            {"economics": _TEXT["economics_object"] % {"fields": ", ".join(ECONOMICS_FIELDS)}}
        )
    unknown = sorted(set(raw) - set(ECONOMICS_FIELDS))
    if unknown:
        raise PlanError({"economics": _TEXT["unknown_fields"] % {"fields": ", ".join(unknown)}})
    values: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for name in ECONOMICS_FIELDS:
        value = raw.get(name)
        if value in (None, ""):
            if name not in ECONOMICS_DEFAULTS:
                errors[name] = _TEXT["required"]
            values[name] = ECONOMICS_DEFAULTS.get(name)
            continue
        values[name] = _number(value)
        if values[name] is None:
            errors[name] = _TEXT["not_a_number"] % {"value": repr(value)}
    problems = economics_problems(values)
    errors.update(
        {
            name: problem[0].upper() + problem[1:] + "."
            for name, problem in problems.items()
            if name not in errors
        }
    )
    if errors:
        raise PlanError(errors)
    return values


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float | Decimal):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value.strip().replace(",", ""))
        except ValueError:
            return None
    return None


def _economics(values: dict[str, Any]) -> CampaignEconomics:
    fields: dict[str, Any] = {k: values.get(k) for k in ECONOMICS_FIELDS}
    return CampaignEconomics(**fields)


# ---- which scores a plan reads ----------------------------------------------------------------
def plan_offer(scoring_run: ScoringRun, offer: Offer | None) -> Offer | None:
    """The offer whose scores the plan reads; PlanError when the run has none for it."""
    trained_for = scoring_run.training_run.offer
    if trained_for is not None:
        if offer is not None and offer.pk != trained_for.pk:
            raise PlanError({"offer": _TEXT["only_offer"] % {"offer": trained_for}})
        return trained_for
    if offer is None:
        raise PlanError({"offer": _TEXT["choose_offer"]})
    if not scoring_run.scores.filter(offer=offer).exists():
        raise PlanError({"offer": _TEXT["no_offer_scores"] % {"offer": offer}})
    return offer


@dataclass
class _Scores:
    values: list[float]
    in_run: int
    at: datetime


def _read_scores(scoring_run: ScoringRun, offer: Offer | None) -> _Scores:
    at = timezone.now()
    values = list(consented_scores(scoring_run, offer).values_list("score", flat=True))
    return _Scores(values=values, in_run=run_scores(scoring_run, offer).count(), at=at)


def _compute(
    scoring_run: ScoringRun, offer: Offer | None, economics: dict[str, Any], contacts: int | None
) -> dict[str, Any]:
    from recengine.roi import plan_from_curve, profit_curve

    scores = _read_scores(scoring_run, offer)
    if not scores.values:
        raise PlanError({"__all__": _TEXT["nobody"]})
    if contacts is not None and contacts > len(scores.values):
        raise PlanError(
            {
                "contacts": _TEXT["too_many_contacts"]
                % {"available": f"{len(scores.values):,}", "asked": f"{contacts:,}"}
            }
        )
    eco = _economics(economics)
    curve = profit_curve(scores.values, eco)
    result = plan_from_curve(curve)
    # Without the marketer's choice: the best depth the budget pays for.
    within = result["budget"]["best_within_budget"]["contacts"]
    if contacts is not None:
        chosen, set_by = contacts, "marketer"
    elif within != result["best"]["contacts"]:
        chosen, set_by = within, "budget"
    else:
        chosen, set_by = within, "best"
    result["chosen"] = {**curve.at(chosen), "set_by": set_by}
    result["forecast"] = forecast_basis(scoring_run)
    result["consent"] = {
        "purpose": Purpose.PROFILING,
        "at": scores.at.isoformat(),
        "scores_in_run": scores.in_run,
        "used": len(scores.values),
        "left_out": scores.in_run - len(scores.values),
    }
    return result


def forecast_basis(scoring_run: ScoringRun) -> dict[str, Any]:
    """How the scores a plan sums were made: out of sample for every customer (the model's
    training customers scored by cross-fitted baselines that did not see them), or, for a
    model trained before cross-fitting, in sample for its training customers."""
    training = scoring_run.training_run
    crossfit = (training.metrics or {}).get("out_of_sample")
    return {
        "out_of_sample": bool(crossfit),
        "folds": crossfit.get("folds") if crossfit else None,
        "learned_customers": training.customers_used,
        "scorer": english(ScoringRun.Scorer(scoring_run.scorer).label),
        "model": training.name,
        "served_auc_training_rows": crossfit.get("served_auc_training_rows") if crossfit else None,
        "served_auc_test_rows": crossfit.get("served_auc_test_rows") if crossfit else None,
    }


# ---- writing plans ----------------------------------------------------------------------------
def _log(plan: CampaignPlan, change: str, by: Actor, **details: Any) -> None:
    audit_log(
        actor=by,
        action=AuditEvent.Action.JOB,
        target_type="campaign_plan",
        target_ref=plan.pk,
        details={
            "change": change,
            "purpose": Purpose.PROFILING,
            "name": plan.name,
            "scoring_run": plan.scoring_run_id,
            **details,
        },
    )


def campaign_plan_create(
    *,
    scoring_run: ScoringRun,
    name: str,
    economics: dict[str, Any],
    offer: Offer | None = None,
    contacts: int | None = None,
    by: Actor,
) -> CampaignPlan:
    """A plan over the scoring run's scores; raises PlanError with field errors."""
    errors: dict[str, str] = {}
    if not (name or "").strip():
        errors["name"] = _TEXT["no_name"]
    if scoring_run.job.status != Job.Status.SUCCEEDED:
        errors["scoring_run"] = _TEXT["unfinished"]
    try:
        values = checked_economics(economics)
    except PlanError as exc:
        errors.update(exc.errors)
    if errors:
        raise PlanError(errors)
    offer = plan_offer(scoring_run, offer)
    result = _compute(scoring_run, offer, values, contacts)
    with transaction.atomic():
        plan = CampaignPlan.objects.create(
            name=name.strip(),
            scoring_run=scoring_run,
            offer=offer,
            economics=values,
            contacts=contacts,
            result=result,
            created_by=stored_user(by),
        )
        _log(plan, "create", by, customers=result["consent"]["used"], economics=values)
    return plan


_UNSET: Any = object()


def campaign_plan_update(
    *,
    plan: CampaignPlan,
    economics: dict[str, Any] | None = None,
    contacts: int | None = _UNSET,
    name: str | None = None,
    by: Actor,
) -> CampaignPlan:
    """Re-plan with new economics and/or the contacts the marketer chose (None = best depth).

    Realised figures stay beside the new forecast only if they were measured on the same
    targeted customers; otherwise they are cleared and must be measured again.
    """
    values = checked_economics(economics) if economics is not None else plan.economics
    chosen = plan.contacts if contacts is _UNSET else contacts
    if contacts is not _UNSET and contacts is not None and contacts < 1:
        raise PlanError({"contacts": _TEXT["no_contacts"]})
    if name is not None and not name.strip():
        raise PlanError({"name": _TEXT["no_name"]})
    result = _compute(plan.scoring_run, plan.offer, values, chosen)
    with transaction.atomic():
        plan.economics, plan.contacts, plan.result = values, chosen, result
        if name is not None:
            plan.name = name.strip()
        if plan.actual and plan.actual.get("contacts") != result["chosen"]["contacts"]:
            plan.actual = {}
        plan.save()
        _log(
            plan,
            "update",
            by,
            customers=result["consent"]["used"],
            economics=values,
            contacts=chosen,
        )
    if plan.actual and plan.campaign:
        # Same customers, new economics: the money figures follow the new economics.
        plan = campaign_plan_actuals(plan=plan, campaign=plan.campaign, by=by)
    return plan


# ---- after the campaign -----------------------------------------------------------------------
def targeted_customers(plan: CampaignPlan) -> tuple[list[int], list[float], int]:
    """(customer ids, their scores) of the plan's targeted customers, best first, and how many
    of those were targeted but have since lost their profiling consent (left out).

    The targeted customers are the top ``contacts`` (or the best depth) of the customers who
    were consented when the plan was computed."""
    planned_at = parse_datetime(plan.result.get("consent", {}).get("at") or "") or plan.updated_at
    depth = plan.result["chosen"]["contacts"]
    ranked = consented_scores(plan.scoring_run, plan.offer, at=planned_at)
    top = list(ranked.values_list("customer_id", "score")[:depth])
    still = set(
        Customer.objects.filter(pk__in=[c for c, _ in top])
        .filter(consent_q(Purpose.PROFILING))
        .values_list("pk", flat=True)
    )
    kept = [(c, s) for c, s in top if c in still]
    return [c for c, _ in kept], [s for _, s in kept], len(top) - len(kept)


def campaign_plan_actuals(*, plan: CampaignPlan, campaign: str, by: Actor) -> CampaignPlan:
    """Realised figures of the targeted customers beside the forecast that chose them.

    The responses are the Interactions with the plan's offer recorded under ``campaign``: a
    customer converted when one of them is a conversion; what the conversion earned is the sum
    of those conversions' values where given, else the plan's value per conversion."""
    from recengine.roi import realised_roi

    campaign = (campaign or "").strip()
    if not campaign:
        raise PlanError({"campaign": _TEXT["no_campaign"]})
    if plan.offer is None:
        raise PlanError({"__all__": _TEXT["no_plan_offer"]})
    responses = Interaction.objects.filter(offer=plan.offer, campaign=campaign)
    if not responses.exists():
        raise PlanError(
            {"campaign": _TEXT["no_responses"] % {"offer": plan.offer, "campaign": campaign}}
        )
    if not plan.result["chosen"]["contacts"]:
        raise PlanError({"__all__": _TEXT["contacts_nobody"]})
    ids, forecast, left_out = targeted_customers(plan)
    if not ids:
        raise PlanError({"__all__": _TEXT["none_consented"]})
    conversions = responses.filter(kind=Interaction.Kind.CONVERSION)
    earned: dict[int, Decimal | None] = {}
    for customer_id, value in conversions.filter(customer_id__in=ids).values_list(
        "customer_id", "value"
    ):
        if value is None:
            earned.setdefault(customer_id, None)
        else:
            earned[customer_id] = (earned.get(customer_id) or Decimal(0)) + value
    converted = [1 if c in earned else 0 for c in ids]
    value_per = plan.economics["value_per_conversion"]
    with_value = sum(1 for v in earned.values() if v is not None)
    values = None
    if with_value:
        values = [
            float(v) if (v := earned.get(c)) is not None else (value_per if c in earned else 0.0)
            for c in ids
        ]
    result = realised_roi(forecast, converted, _economics(plan.economics), values=values)
    targeted = set(ids)
    outside = conversions.exclude(customer_id__in=targeted).values("customer_id").distinct()
    result.update(
        campaign=campaign,
        offer=plan.offer.title,
        left_out=left_out,
        conversions_with_value=with_value,
        conversions_without_value=len(earned) - with_value,
        responders_outside_plan=outside.count(),
        measured_at=timezone.now().isoformat(),
    )
    with transaction.atomic():
        plan.campaign, plan.actual = campaign, result
        plan.save(update_fields=["campaign", "actual", "updated_at"])
        _log(plan, "actuals", by, campaign=campaign, contacts=len(ids))
    return plan


# ---- uplift -----------------------------------------------------------------------------------
def _as_text(value: Any) -> str:
    """An attribute value as the marketer types it: yes/no booleans, 3 for 3.0."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip().lower()


def _same_value(value: Any, wanted: str) -> bool:
    wanted = wanted.strip().lower()
    synonyms = {"yes": "true", "no": "false", "1": "true", "0": "false"}
    text = _as_text(value)
    if isinstance(value, bool):
        return text == synonyms.get(wanted, wanted)
    return text == wanted


def campaign_plan_uplift(
    *, plan: CampaignPlan, treatment_attribute: str, treatment_value: str, by: Actor
) -> Job:
    """Start the two-model uplift estimate of the plan (a Job "plan"): customers whose
    ``treatment_attribute`` equals ``treatment_value`` are the treated group, the others the
    control group; the outcome is a conversion on the plan's offer."""
    errors = {}
    attribute, value = (treatment_attribute or "").strip(), str(treatment_value or "").strip()
    if not attribute:
        errors["treatment_attribute"] = _TEXT["no_attribute"]
    if not value:
        errors["treatment_value"] = _TEXT["no_value"]
    if plan.offer is None:
        errors["__all__"] = _TEXT["no_plan_offer"]
    if errors:
        raise PlanError(errors)
    with transaction.atomic():
        job = job_create(
            kind=Job.Kind.PLAN,
            title=_TEXT["uplift_title"]
            % {"plan": plan.name, "attribute": attribute, "value": value},
            params={"plan": plan.pk, "treatment_attribute": attribute, "treatment_value": value},
            by=by,
        )
        plan.uplift = {
            "status": "queued",
            "job": job.pk,
            "treatment_attribute": attribute,
            "treatment_value": value,
        }
        plan.save(update_fields=["uplift", "updated_at"])
        _log(plan, "uplift", by, job=job.pk, treatment_attribute=attribute, treatment_value=value)
    return job


@register_runner(Job.Kind.PLAN)
def run_uplift(job: Job, progress: Progress) -> dict[str, Any]:
    import numpy as np
    import pandas as pd

    from recengine.roi import plan_campaign
    from recengine.uplift import (
        CrossFitConfig,
        InsufficientData,
        UpliftConfig,
        cross_fitted_uplift,
        uplift_evaluation,
        uplift_learner,
    )

    plan = CampaignPlan.objects.select_related("scoring_run__training_run", "offer").get(
        pk=job.params["plan"]
    )
    attribute, wanted = job.params["treatment_attribute"], job.params["treatment_value"]
    progress(5, _TEXT["reading"])
    ids = list(consented_scores(plan.scoring_run, plan.offer).values_list("customer_id", flat=True))
    profiles = dict(Customer.objects.filter(pk__in=ids).values_list("pk", "attributes"))
    converted_ids = set(
        Interaction.objects.filter(
            offer=plan.offer, kind=Interaction.Kind.CONVERSION, customer_id__in=ids
        ).values_list("customer_id", flat=True)
    )
    with_attribute = [c for c in ids if (profiles.get(c) or {}).get(attribute) is not None]
    treated = np.array(
        [_same_value(profiles[c][attribute], wanted) for c in with_attribute], dtype=np.int64
    )
    y = np.array([int(c in converted_ids) for c in with_attribute], dtype=np.int64)
    base = {
        "status": "insufficient_data",
        "job": job.pk,
        "treatment_attribute": attribute,
        "treatment_value": wanted,
        "customers": len(ids),
        "missing_attribute": len(ids) - len(with_attribute),
    }
    config = CrossFitConfig(
        folds=UPLIFT_FOLDS, model=UpliftConfig(learner=uplift_learner(threads=1))
    )

    def save(uplift: dict[str, Any]) -> dict[str, Any]:
        CampaignPlan.objects.filter(pk=plan.pk).update(uplift=uplift)
        return {"plan": plan.pk, "status": uplift["status"]}

    def on_fold(k: int, folds: int) -> None:
        progress(15 + 70 * k / folds, _TEXT["fitting"] % {"fold": k + 1, "folds": folds})

    if not with_attribute:
        return save(
            {
                **base,
                "reasons": [_TEXT["attribute_missing"] % {"attribute": attribute}],
                "readiness": None,
            }
        )
    frame = pd.DataFrame(
        [{k: v for k, v in (profiles[c] or {}).items() if k != attribute} for c in with_attribute]
    )
    try:
        fitted = cross_fitted_uplift(frame, treated, y, config, on_fold)
    except InsufficientData as exc:
        return save(
            {**base, "reasons": exc.readiness.reasons, "readiness": exc.readiness.as_dict()}
        )
    uplift = fitted.uplift
    progress(90, _TEXT["measuring"])
    evaluation = uplift_evaluation(uplift, treated, y)
    by_uplift = plan_campaign(np.clip(uplift, -1, 1), _economics(plan.economics), kind="uplift")
    return save(
        {
            **base,
            "status": "ok",
            "reasons": [],
            "readiness": fitted.readiness.as_dict(),
            "folds": config.folds,
            "model": config.model.learner.kind,
            "columns": list(frame.columns),
            "evaluation": evaluation,
            "plan": {key: by_uplift[key] for key in ("customers", "base_rate", "table", "best")},
        }
    )
