"""Explaining a click model's scores in the marketer's fields, as a Job ("explain").

Two scopes: the global importance of every field (mean |SHAP| over a sample of customers)
and the contributions behind one customer's score. Both are computed for the BERT model of a
training run and for the LightGBM baseline trained beside it, so the page can show whether
the two models rely on the same fields.

Explaining a score is profiling (GDPR Art. 4(4)): the customers explained and the customers
they are compared with (the background rows) all have a valid ``profiling`` consent and
belong to the run's population (its segment, or everyone). Rows are built the way training
built them (``model_inputs.population`` and ``model_inputs.offer_columns``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext_noop

from marketing.errors import ApplicationError
from marketing.models import (
    AuditEvent,
    Customer,
    CustomerScore,
    ExplanationRun,
    Job,
    Offer,
    ProfileField,
    Purpose,
    TrainingRun,
)
from marketing.selectors.consent import customers_with_consent, has_consent, scores_for_use
from marketing.services.audit import Actor, audit_log, stored_user
from marketing.services.jobs import Progress, job_create, register_runner
from marketing.services.model_inputs import (
    known_values_only,
    model_text_values,
    offer_columns,
    population,
)
from marketing.services.training_params import message

if TYPE_CHECKING:
    import pandas as pd

    from recengine.explain import ExplainConfig

# Customers explained for the global importance unless the marketer asks otherwise; 200 keeps
# the mean |SHAP| of the strongest fields stable to a few per cent at a minute or two on a CPU.
DEFAULT_SAMPLE_SIZE = 200
SAMPLE_LIMITS = (10, 5000)
# Customers a score is compared with (the background of SHAP); each explanation costs this
# many model evaluations per field.
BACKGROUND_SIZE = 20
# Customers explained per step of the progress bar.
CHUNK_ROWS = 20
SEED = 0
MODEL_KEYS = ("bert", "baseline")
# Progress bar: loading, then BERT (the slow part), then the baseline.
LOADED, BERT_DONE = 5.0, 90.0


class ExplanationSetupError(ApplicationError, ValueError):
    """The requested explanation cannot be computed; the message says why."""


# What the pages and the API read of a request or a run (English, translated where shown).
NOT_FINISHED = gettext_noop("Only a finished training run has a model to explain.")
GLOBAL_WITH_CUSTOMER = gettext_noop(
    "Global importance is computed over a sample, not one customer; leave the customer out."
)
SAMPLE_SIZE = gettext_noop(
    "The sample must hold between %(low)s and %(high)s customers, not %(size)s."
)
NO_CUSTOMER = gettext_noop("Name the customer whose score should be explained.")
UNKNOWN_SCOPE = gettext_noop("Unknown scope %(scope)s; use global or customer.")
NO_CONSENT = gettext_noop(
    "Customer %(customer)s has no valid profiling consent: explaining their score is "
    "profiling, so it is not computed."
)
OUTSIDE_SEGMENT = gettext_noop(
    "Customer %(customer)s is outside segment “%(segment)s” that this model was trained for."
)
NOBODY_TO_COMPARE = gettext_noop(
    "No customer of this model's population has a valid profiling consent, so there is "
    "nobody to compare scores with."
)
ERASED = gettext_noop("The customer to explain has been erased.")
NO_BASELINE = gettext_noop(
    "Model %(model)s was saved without its LightGBM baseline (trained before baselines were "
    "kept); train it again to compare explanations."
)
NO_ACTIVE_OFFER = gettext_noop(
    "A model of every offer is explained for an active offer; there is none."
)
GLOBAL_TITLE = gettext_noop("Field importance of “%(name)s”")
CUSTOMER_TITLE = gettext_noop("Explain one customer's score with “%(name)s”")
LOADING = gettext_noop("Loading model %(model)s and its baseline")
COMPARING = gettext_noop("Comparing with %(count)s customers")
EXPLAINING_BERT = gettext_noop("Explaining the score of BERT")
EXPLAINING_BASELINE = gettext_noop("Explaining the score of the baseline")
MESSAGES = (
    NOT_FINISHED,
    GLOBAL_WITH_CUSTOMER,
    SAMPLE_SIZE,
    NO_CUSTOMER,
    UNKNOWN_SCOPE,
    NO_CONSENT,
    OUTSIDE_SEGMENT,
    NOBODY_TO_COMPARE,
    ERASED,
    NO_BASELINE,
    NO_ACTIVE_OFFER,
    GLOBAL_TITLE,
    CUSTOMER_TITLE,
    LOADING,
    COMPARING,
    EXPLAINING_BERT,
    EXPLAINING_BASELINE,
)


def explanation_run_create(
    *,
    training_run: TrainingRun,
    scope: str,
    customer: Customer | None = None,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
    by: Actor,
) -> ExplanationRun:
    """Check the request, then create the run and its Job (enqueued once committed)."""
    if training_run.job.status != Job.Status.SUCCEEDED or not training_run.model_id:
        raise ExplanationSetupError(NOT_FINISHED)
    if scope == ExplanationRun.Scope.GLOBAL:
        if customer is not None:
            raise ExplanationSetupError(GLOBAL_WITH_CUSTOMER)
        low, high = SAMPLE_LIMITS
        if not low <= sample_size <= high:
            raise ExplanationSetupError(message(SAMPLE_SIZE, low=low, high=high, size=sample_size))
        title = message(GLOBAL_TITLE, name=training_run.name)
    elif scope == ExplanationRun.Scope.CUSTOMER:
        if customer is None:
            raise ExplanationSetupError(NO_CUSTOMER)
        check_customer(training_run, customer)
        sample_size = 1
        # No customer identifier in the title: job rows outlive an erasure.
        title = message(CUSTOMER_TITLE, name=training_run.name)
    else:
        raise ExplanationSetupError(message(UNKNOWN_SCOPE, scope=repr(scope)))
    creator = stored_user(by)
    with transaction.atomic():
        job = job_create(
            kind=Job.Kind.EXPLAIN,
            title=title,
            params={"training_run": training_run.pk, "scope": scope, "sample_size": sample_size},
            by=by,
        )
        run = ExplanationRun.objects.create(
            job=job,
            training_run=training_run,
            scope=scope,
            customer=customer,
            sample_size=sample_size,
            background_size=BACKGROUND_SIZE,
            created_by=creator,
        )
        audit_log(
            actor=by,
            action=AuditEvent.Action.JOB,
            target_type="explanation_run",
            target_ref=run.pk,
            details={"job": job.pk, "purpose": Purpose.PROFILING},
        )
    return ExplanationRun.objects.select_related("job", "training_run", "customer").get(pk=run.pk)


def check_customer(training_run: TrainingRun, customer: Customer) -> None:
    """Refuse a customer without a valid profiling consent or outside the run's population."""
    if not has_consent(customer, Purpose.PROFILING):
        raise ExplanationSetupError(message(NO_CONSENT, customer=customer.external_id))
    segment = training_run.segment  # None: every customer
    if segment is not None and not population(segment).filter(pk=customer.pk).exists():
        raise ExplanationSetupError(
            message(OUTSIDE_SEGMENT, customer=customer.external_id, segment=segment.name)
        )


# ---- the runner -------------------------------------------------------------------------------
@register_runner(Job.Kind.EXPLAIN)
def run_explanation(job: Job, progress: Progress) -> dict[str, Any]:
    from recengine.config import json_ready

    run = ExplanationRun.objects.select_related(
        "training_run__segment", "training_run__offer", "customer"
    ).get(job=job)
    training = run.training_run
    progress(1, message(LOADING, model=training.model_id))
    models = load_models(training)
    config = explain_config()
    offer = explanation_offer(run)
    # Global: the sample explained is also where the background rows come from.
    reference_size = (
        run.sample_size if run.scope == ExplanationRun.Scope.GLOBAL else BACKGROUND_SIZE
    )
    known = model_text_values(training)
    reference = customer_frame(sample_customers(training, reference_size), training, offer, known)
    if not len(reference):
        raise ExplanationSetupError(NOBODY_TO_COMPARE)
    progress(LOADED, message(COMPARING, count=min(config.background_size, len(reference))))
    if run.scope == ExplanationRun.Scope.GLOBAL:
        result = explain_global(models, config, reference, progress)
    else:
        customer = run.customer
        if customer is None:
            raise ExplanationSetupError(ERASED)
        check_customer(training, customer)  # consent may have changed since the request
        row = customer_frame([customer], training, offer, known)
        result = explain_customer(models, config, reference, row, progress)
        served = served_blend(training)
        if served is not None:
            result["served"] = blend_explanation(result, *served)
        result["learned_from"] = learned_from(training, customer)
    if offer is not None:
        result["offer"] = {"id": offer.pk, "title": offer.title}
    ExplanationRun.objects.filter(pk=run.pk).update(result=json_ready(result))
    return {
        "explanation_run": run.pk,
        "scope": run.scope,
        "customers_explained": len(reference) if run.scope == ExplanationRun.Scope.GLOBAL else 1,
        "local_accuracy_error": {k: result[k]["local_accuracy_error"] for k in MODEL_KEYS},
    }


def load_models(training: TrainingRun) -> dict[str, Any]:
    from marketing.filestore import model_registry
    from recengine.config import pick_device

    registry = model_registry(training.model_id)
    try:
        baseline = registry.load_part(training.model_id, "baseline")
    except KeyError:
        raise ExplanationSetupError(message(NO_BASELINE, model=training.model_id)) from None
    # On a GPU worker ("gpu" queue) the BERT model runs on the accelerator.
    return {"bert": registry.load(training.model_id, device=pick_device()), "baseline": baseline}


def learned_from(training: TrainingRun, customer: Customer) -> bool:
    """Whether the model learned from this customer: their scores then come from the
    cross-fitted baselines (out of sample), which the page says beside the explanation."""
    from marketing.filestore import model_registry
    from marketing.services.scorers import CROSSFIT_PART

    registry = model_registry(training.model_id)
    if CROSSFIT_PART not in registry.record(training.model_id).manifest.get("parts", []):
        return False
    return customer.pseudonym in registry.customers(training.model_id)


def served_blend(training: TrainingRun) -> tuple[dict[str, float], float] | None:
    """(weight per member, intercept) of the blend the run serves, or None when it serves
    BERT alone (or is a model saved before the blend was kept)."""
    from marketing.filestore import model_registry

    if not (training.metrics.get("blend") or {}).get("served"):
        return None
    try:
        blend = model_registry(training.model_id).load_part(training.model_id, "blend")
    except KeyError:
        return None
    return dict(blend.weights), float(blend.intercept_)


# The blend's member names -> the keys of their explanations.
BLEND_MEMBERS = {"model": "bert", "baseline": "baseline"}


def blend_explanation(
    result: dict[str, Any], weights: dict[str, float], intercept: float
) -> dict[str, Any]:
    """The served blend's explanation from its members': the blend's log-odds is
    ``intercept + sum(weight * member log-odds)``, and SHAP values add up the same way, so
    each field's contribution is the weighted sum of its contributions to the members."""
    import math

    parts = {BLEND_MEMBERS[name]: (w, result[BLEND_MEMBERS[name]]) for name, w in weights.items()}
    contributions: dict[str, dict[str, Any]] = {}
    for weight, part in parts.values():
        for item in part["contributions"]:
            entry = contributions.setdefault(item["field"], {**item, "contribution": 0.0})
            entry["contribution"] += weight * item["contribution"]
    base = intercept + sum(w * part["base_value"] for w, part in parts.values())
    logit = intercept + sum(w * part["logit"] for w, part in parts.values())
    total = base + sum(c["contribution"] for c in contributions.values())
    return {
        "row_id": next(iter(parts.values()))[1]["row_id"],
        "base_value": base,
        "base_probability": 1 / (1 + math.exp(-base)),
        "logit": logit,
        "probability": 1 / (1 + math.exp(-logit)),
        "contributions": sorted(contributions.values(), key=lambda c: -abs(c["contribution"])),
        "method": "weighted sum of the members' "
        + " and ".join(sorted({part["method"] for _, part in parts.values()})),
        "tolerance": sum(abs(w) * part["tolerance"] for w, part in parts.values()),
        "local_accuracy_error": abs(total - logit),
        "weights": {BLEND_MEMBERS[n]: w for n, w in weights.items()},
    }


def explain_config() -> ExplainConfig:
    from recengine.explain import ExplainConfig

    labels = dict(ProfileField.objects.exclude(label="").values_list("name", "label"))
    return ExplainConfig(background_size=BACKGROUND_SIZE, seed=SEED, labels=labels)


def explanation_offer(run: ExplanationRun) -> Offer | None:
    """The offer a multi-offer model is explained for: the customer's best-scored offer in
    the model's latest scoring, else the first active offer (None for a one-offer model)."""
    training = run.training_run
    if training.offer is not None:
        return None
    if run.customer is not None:
        best = (
            scores_for_use(
                CustomerScore.objects.filter(
                    customer=run.customer,
                    scoring_run__training_run=training,
                    scoring_run__job__status=Job.Status.SUCCEEDED,
                    offer__isnull=False,
                )
            )
            .order_by("-scoring_run__created_at", "-score")
            .select_related("offer")
            .first()
        )
        if best is not None:
            return best.offer
    offer = Offer.objects.filter(active=True).order_by("pk").first()
    if offer is None:
        raise ExplanationSetupError(NO_ACTIVE_OFFER)
    return offer


def sample_customers(training: TrainingRun, n: int) -> list[Customer]:
    """Up to ``n`` customers of the run's population with a valid profiling consent now, drawn
    at random (seeded, so the same data gives the same sample)."""
    import numpy as np

    consented = customers_with_consent(
        Purpose.PROFILING, at=timezone.now(), queryset=population(training.segment)
    )
    ids = np.fromiter(consented.order_by("pk").values_list("pk", flat=True), dtype=np.int64)
    if len(ids) > n:
        ids = np.sort(np.random.default_rng(SEED).choice(ids, n, replace=False))
    return list(Customer.objects.filter(pk__in=ids.tolist()).order_by("pk"))


def customer_frame(
    customers: list[Customer],
    training: TrainingRun,
    offer: Offer | None,
    known: dict[str, set[str]] | None = None,
) -> pd.DataFrame:
    """Model input rows of the customers (index: customer id), as training built them:
    text values outside ``known`` (``model_text_values``) are missing."""
    import pandas as pd

    extra = offer_columns(offer) if offer is not None else {}
    records = [known_values_only({**(c.attributes or {}), **extra}, known) for c in customers]
    return pd.DataFrame.from_records(records, index=[c.pk for c in customers])


def _model_fields(models: dict[str, Any]) -> list[str]:
    from recengine.explain import model_fields

    fields = [*model_fields(models["bert"]), *model_fields(models["baseline"])]
    return list(dict.fromkeys(fields))


def _explainers(models: dict[str, Any], config: ExplainConfig, reference: pd.DataFrame):
    from recengine.explain import field_explainer

    columns = _model_fields(models)
    reference = reference.reindex(columns=columns)
    return columns, {key: field_explainer(models[key], config).fit(reference) for key in MODEL_KEYS}


def explain_global(
    models: dict[str, Any], config: ExplainConfig, sample: pd.DataFrame, progress: Progress
) -> dict[str, Any]:
    from recengine.explain import global_importance

    columns, explainers = _explainers(models, config, sample)
    frame = sample.reindex(columns=columns)
    spans = {"bert": (LOADED, BERT_DONE), "baseline": (BERT_DONE, 99.0)}
    result: dict[str, Any] = {}
    for key in MODEL_KEYS:
        low, high = spans[key]
        name = "BERT" if key == "bert" else "the baseline"

        def report(percent: float, message: str, low=low, high=high, name=name) -> None:
            progress(low + (high - low) * percent / 100, f"{name}: {message}")

        importance = global_importance(
            explainers[key], frame, progress=report, chunk_rows=CHUNK_ROWS
        )
        result[key] = {
            **importance.to_dict(),
            "local_accuracy_error": importance.max_local_accuracy_error,
        }
    return result


def explain_customer(
    models: dict[str, Any],
    config: ExplainConfig,
    reference: pd.DataFrame,
    row: pd.DataFrame,
    progress: Progress,
) -> dict[str, Any]:
    columns, explainers = _explainers(models, config, reference)
    frame = row.reindex(columns=columns)
    result: dict[str, Any] = {}
    for step, key in enumerate(MODEL_KEYS):
        progress(
            LOADED + (99 - LOADED) * step / len(MODEL_KEYS),
            EXPLAINING_BERT if key == "bert" else EXPLAINING_BASELINE,
        )
        explanation = explainers[key].explain(frame)[0]
        result[key] = explanation.to_dict()
    return result
