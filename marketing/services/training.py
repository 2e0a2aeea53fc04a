"""Training a click model as a Job ("train").

The runner is the one place that maps ORM rows to `recengine` inputs: one example per
(customer, offer) pair the customer was shown or responded to, labelled 1 when a conversion
(or, for the click target, a click or conversion) exists; only customers with a valid
``model_training`` consent when the run starts (the others are counted by reason). Then a
stratified split, the LightGBM baseline and the BERT model on the same rows, both evaluated
on the same test rows, and the model saved in the registry with its data fingerprint, the
customers' pseudonyms and the consent snapshot.

`recengine` (torch, transformers, LightGBM) is imported inside the runner only, so that web
processes that never train start fast.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, cast

from django.conf import settings
from django.db import transaction
from django.db.models import (
    Case,
    Count,
    Exists,
    F,
    IntegerField,
    Max,
    Min,
    OuterRef,
    QuerySet,
    When,
)
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.translation import gettext_noop

from marketing.errors import ApplicationError
from marketing.filestore import model_put, model_registry, remote
from marketing.models import (
    AuditEvent,
    Customer,
    Interaction,
    Job,
    Offer,
    ProfileField,
    Purpose,
    Segment,
    TrainingRun,
)
from marketing.pseudonyms import erasure_token
from marketing.selectors.consent import customers_with_consent, valid_consent_records
from marketing.selectors.training import consent_exclusions
from marketing.services.audit import Actor, audit_log, stored_user
from marketing.services.jobs import Progress, job_create_once, job_threads, register_runner
from marketing.services.model_inputs import field_types, learnable, offer_columns, population
from marketing.services.scorers import CROSSFIT_PART, STUDENT_PART, measure_scorers
from marketing.services.training_params import (
    DEFAULT_LEARNING_RATES,
    TrainingSetupError,
    for_budget,
    message,
    train_params,
)

if TYPE_CHECKING:
    from datetime import datetime

    import numpy as np
    import pandas as pd

    from marketing.services.training_params import TrainParams
    from recengine.train import ClickModel, TrainConfig, TrainMode, TrainProgress


class TrainingDataError(ApplicationError, ValueError):
    """The data cannot train a model (e.g. an offer nobody responded to)."""


# Validations per epoch: the page shows a validation AUC while training, and early stopping
# can end a long epoch. Each validation scores every validation row, so more of them take
# training steps from the time budget: at 2 an epoch the default run on the bank demo trains
# 15 % more steps than at 4 (bench/train_default.py).
EVALS_PER_EPOCH = 2
# Width of the hidden head layer: it lets the text and the numbers interact.
HEAD_HIDDEN = 64
# Width of the numeric tower (the piecewise-linear encoding of every number goes through it).
NUMERIC_HIDDEN = 64
# An incremental re-training's learning rates, as a share of a first training's, and its
# passes over the newer responses at most, and its share of the time budget: it starts from
# weights that already fit, and should move them towards the newer responses without
# forgetting what still holds, in a fraction of a first training's time
# (bench/retrain_drift.py).
INCREMENTAL_LEARNING_RATE_SHARE = 0.5
INCREMENTAL_MAX_EPOCHS = 4
INCREMENTAL_TIME_SHARE = 0.25
# Fewer examples of either class than this cannot give a meaningful test AUC.
MIN_CLASS_EXAMPLES = 10
# Share of the non-test rows kept for validation: early stopping, the blend's weights and the
# choice of the served model are all read from these rows, and with 10 % (about 290 clicks
# on the bank demo) the standard error of a validation AUC was 0.016, more than the
# differences they decide; 20 % brings it to about 0.011 (bench/train_default.py).
VALIDATION_SHARE = 0.2
# Baselines cross-fitted over the training customers (out-of-sample scores for them).
CROSSFIT_FOLDS = 5
TEST_SHARE = 0.2
# Seconds between writes of the live training curve.
CURVE_FLUSH_S = 3.0
CURVE_POINTS = 200
# Progress bar: share of the bar per phase (data and baseline, BERT training, evaluation).
TRAIN_START, TRAIN_END, EVAL_END = 10.0, 85.0, 96.0
# Offer columns of multi-offer examples; an empty label shows the title alone.
OFFER_LABELS = {"offer_title": "", "offer_category": "category", "offer_price": "price"}

# What the pages and the API read of a request or a run (English, translated where shown).
UNKNOWN_TARGET = gettext_noop("Unknown target %(target)s")
UNKNOWN_MODE = gettext_noop("Unknown training mode %(mode)s")
UNKNOWN_BASE_MODEL = gettext_noop("Unknown base model %(model)s; choose one of %(choices)s")
NO_ATTRIBUTES = gettext_noop("The customers have no profile attributes to learn from.")
ALL_LEAK = gettext_noop(
    "Every profile attribute gives the outcome away on its own (%(fields)s): upload profile "
    "fields known before the campaign, or keep them knowingly."
)
# (in a segment, one offer) -> nobody to learn from.
NO_EXAMPLES = {
    (False, True): gettext_noop(
        "No customer with a valid model-training consent was shown or responded to “%(offer)s”."
    ),
    (False, False): gettext_noop(
        "No customer with a valid model-training consent was shown or responded to the offers."
    ),
    (True, True): gettext_noop(
        "No customer in segment “%(segment)s” with a valid model-training consent was shown "
        "or responded to “%(offer)s”."
    ),
    (True, False): gettext_noop(
        "No customer in segment “%(segment)s” with a valid model-training consent was shown "
        "or responded to the offers."
    ),
}
# (too few responders, one offer, the target) -> too few examples of a class.
FEW_EXAMPLES = {
    (True, True, "conversion"): gettext_noop(
        "Only %(few)s of %(total)s examples of “%(offer)s” are with a conversion; a model needs "
        "at least %(least)s customers who responded and %(least)s who did not."
    ),
    (True, False, "conversion"): gettext_noop(
        "Only %(few)s of %(total)s examples of the offers are with a conversion; a model needs "
        "at least %(least)s customers who responded and %(least)s who did not."
    ),
    (False, True, "conversion"): gettext_noop(
        "Only %(few)s of %(total)s examples of “%(offer)s” are without a conversion; a model "
        "needs at least %(least)s customers who responded and %(least)s who did not."
    ),
    (False, False, "conversion"): gettext_noop(
        "Only %(few)s of %(total)s examples of the offers are without a conversion; a model "
        "needs at least %(least)s customers who responded and %(least)s who did not."
    ),
    (True, True, "click"): gettext_noop(
        "Only %(few)s of %(total)s examples of “%(offer)s” are with a click; a model needs "
        "at least %(least)s customers who responded and %(least)s who did not."
    ),
    (True, False, "click"): gettext_noop(
        "Only %(few)s of %(total)s examples of the offers are with a click; a model needs "
        "at least %(least)s customers who responded and %(least)s who did not."
    ),
    (False, True, "click"): gettext_noop(
        "Only %(few)s of %(total)s examples of “%(offer)s” are without a click; a model "
        "needs at least %(least)s customers who responded and %(least)s who did not."
    ),
    (False, False, "click"): gettext_noop(
        "Only %(few)s of %(total)s examples of the offers are without a click; a model "
        "needs at least %(least)s customers who responded and %(least)s who did not."
    ),
}
FEW_RESPONDERS = gettext_noop(
    "Too few responders to score the training customers out of sample (%(error)s)."
)
UNKNOWN_START = gettext_noop("Unknown way to re-train %(start)s: scratch or incremental")
NOTHING_TO_CONTINUE = gettext_noop(
    "“%(name)s” has no finished model to go on from: re-train it from scratch."
)
CONTINUE_ERASED = gettext_noop(
    "“%(name)s” learned from customers erased since: re-train it from scratch, so that the "
    "new model forgets them."
)
NO_NEW_RESPONSES = gettext_noop(
    "No response with a valid model-training consent arrived after %(since)s: nothing new "
    "to learn from."
)
PARENT_MODEL_GONE = gettext_noop(
    "The model of run %(run)s is no longer in the registry: re-train from scratch."
)
CONTINUING = gettext_noop("Continuing from the weights of run %(run)s")
# The training job's title, and its progress.
TRAIN_TITLE = gettext_noop("Train “%(name)s”")
READING = gettext_noop("Reading the responses of customers with training consent")
CHECKING_LEAKS = gettext_noop("Checking each field for leaks of the outcome")
MEASURING_SCORERS = gettext_noop("Measuring the scorers (served model, int8, fast path)")
SAVING = gettext_noop("Saving the model in the registry")
TRAINING_BASELINE = gettext_noop("Training the LightGBM baseline on %(rows)s rows")
CROSS_FITTING = gettext_noop("Cross-fitting %(folds)s baselines for out-of-sample scores")
PREPARING = gettext_noop(
    "Preparing %(mode)s on %(model)s: reading %(train)s training and %(val)s validation rows"
)
EPOCH_STEP = gettext_noop("Epoch %(epoch)s/%(epochs)s · step %(step)s/%(steps)s · loss %(loss)s")
EPOCH_STEP_AUC = gettext_noop(
    "Epoch %(epoch)s/%(epochs)s · step %(step)s/%(steps)s · loss %(loss)s · val AUC %(auc)s"
)
SCORING_TEST = gettext_noop("Scoring the test rows: %(done)s of %(total)s")
MESSAGES = (
    UNKNOWN_TARGET,
    UNKNOWN_MODE,
    UNKNOWN_BASE_MODEL,
    NO_ATTRIBUTES,
    ALL_LEAK,
    *NO_EXAMPLES.values(),
    *FEW_EXAMPLES.values(),
    FEW_RESPONDERS,
    UNKNOWN_START,
    NOTHING_TO_CONTINUE,
    CONTINUE_ERASED,
    NO_NEW_RESPONSES,
    PARENT_MODEL_GONE,
    CONTINUING,
    TRAIN_TITLE,
    READING,
    CHECKING_LEAKS,
    MEASURING_SCORERS,
    SAVING,
    TRAINING_BASELINE,
    CROSS_FITTING,
    PREPARING,
    EPOCH_STEP_AUC,
    EPOCH_STEP,
    SCORING_TEST,
)


def base_model_choices() -> list[str]:
    """Base models a run may use: the configured default, CLICK_MODEL_CHOICES and the packaged
    ones. Only these, so nobody can point the server at an arbitrary path."""
    from recengine.models_base import PACKAGED_MODELS, PACKAGED_PREFIX

    choices = [
        settings.CLICK_MODEL_BASE,
        *getattr(settings, "CLICK_MODEL_CHOICES", []),
        *(PACKAGED_PREFIX + name for name in PACKAGED_MODELS),
    ]
    return list(dict.fromkeys(choices))


def training_run_create(
    *,
    name: str,
    segment: Segment | None,
    offer: Offer | None,
    target: str,
    base_model: str,
    mode: str,
    params: dict[str, Any] | None,
    by: Actor,
    parent: TrainingRun | None = None,
    start: str = TrainingRun.Start.SCRATCH,
) -> TrainingRun:
    """Check the request, then create the run and its Job (enqueued once committed).

    A re-training names its ``parent``; an incremental one (``start``) learns from the
    responses after the newest one the parent learned from, going on from its weights."""
    if target not in TrainingRun.Target.values:
        raise TrainingSetupError(message(UNKNOWN_TARGET, target=repr(target)))
    if mode not in TrainingRun.Mode.values:
        raise TrainingSetupError(message(UNKNOWN_MODE, mode=repr(mode)))
    base_model = base_model or settings.CLICK_MODEL_BASE
    if base_model not in base_model_choices():
        raise TrainingSetupError(
            message(
                UNKNOWN_BASE_MODEL,
                model=repr(base_model),
                choices=", ".join(base_model_choices()),
            )
        )
    hyper = train_params(params)
    name = name.strip() or f"{offer.title if offer else 'All offers'} · {target}"
    creator = stored_user(by)
    with transaction.atomic():
        job, created = job_create_once(
            kind=Job.Kind.TRAIN,
            title=message(TRAIN_TITLE, name=name),
            params={
                "segment": segment.pk if segment else None,
                "offer": offer.pk if offer else None,
                "target": target,
                "base_model": base_model,
                "mode": mode,
                "parent": parent.pk if parent else None,
                "start": start,
                **asdict(hyper),
            },
            by=by,
        )
        if not created:  # the same request a moment ago: its run
            return TrainingRun.objects.select_related("job").get(job=job)
        run = TrainingRun.objects.create(
            job=job,
            name=name,
            segment=segment,
            offer=offer,
            target=target,
            base_model=base_model,
            mode=mode,
            params=asdict(hyper),
            created_by=creator,
            parent=parent,
            start=start,
            data_since=parent_data_until(parent)
            if start == TrainingRun.Start.INCREMENTAL
            else None,
        )
        audit_log(
            actor=by,
            action=AuditEvent.Action.JOB,
            target_type="training_run",
            target_ref=run.pk,
            details={"job": job.pk, "purpose": Purpose.MODEL_TRAINING},
        )
    return TrainingRun.objects.select_related("job").get(pk=run.pk)


def training_run_retrain(
    *, run: TrainingRun, by: Actor, start: str = TrainingRun.Start.SCRATCH
) -> TrainingRun:
    """A new run with the same request as ``run`` (segment, offer, target, encoder, mode and
    settings asked for), trained on today's data, so without the customers erased or
    withdrawn since. "scratch" learns from every response again; "incremental" goes on from
    ``run``'s weights on the responses that arrived after the newest one it learned from."""
    if start not in TrainingRun.Start.values:
        raise TrainingSetupError(message(UNKNOWN_START, start=repr(start)))
    if start == TrainingRun.Start.INCREMENTAL and (
        run.job.status != Job.Status.SUCCEEDED or not run.model_id
    ):
        raise TrainingSetupError(message(NOTHING_TO_CONTINUE, name=run.name))
    if start == TrainingRun.Start.INCREMENTAL and run.flagged_erasure:
        # Its weights hold what it learned from the erased: only a new start forgets them.
        raise TrainingSetupError(message(CONTINUE_ERASED, name=run.name))
    # Run names are the marketer's data, kept as written (not translated).
    label = "continued" if start == TrainingRun.Start.INCREMENTAL else "retrained"
    base = run.name.split(" · retrained")[0].split(" · continued")[0]
    return training_run_create(
        name=f"{base} · {label}"[:200],
        segment=run.segment,
        offer=run.offer,
        target=run.target,
        base_model=run.base_model,
        mode=run.mode,
        params=run.params,
        by=by,
        parent=run,
        start=start,
    )


def training_runs_flag_erasure(*, pseudonym: str) -> list[int]:
    """Flag the runs whose model learned from this customer (call before erasing them), and
    put their erasure token in place of the pseudonym in those models' customer lists; the
    ids of the runs flagged.

    The registry is changed first and outside the database transaction: a retried erasure
    finds the models by the token the first try left."""
    from recengine.registry import CUSTOMERS_FILE

    if not remote() and not settings.MODEL_REGISTRY_DIR.exists():
        return []
    # Every model folder, also one whose run row is gone: none may keep the pseudonym.
    registry = model_registry(every=True)
    token = erasure_token(pseudonym)
    for model_id in registry.replace_customer(pseudonym, token):
        model_put(model_id, CUSTOMERS_FILE)
    trained = TrainingRun.objects.exclude(model_id="").filter(
        model_id__in=registry.find_models_using(token)
    )
    ids = sorted(trained.values_list("pk", flat=True))
    TrainingRun.objects.filter(pk__in=ids).update(
        flagged_erasure=True, erased_customers=F("erased_customers") + 1
    )
    return ids


# ---- the runner -------------------------------------------------------------------------------
@register_runner(Job.Kind.TRAIN)
def run_training(job: Job, progress: Progress) -> dict[str, Any]:
    run = TrainingRun.objects.select_related("segment", "offer").get(job=job)
    return _Training(run, progress).execute()


@dataclass
class Examples:
    """Training examples as recengine takes them."""

    frame: pd.DataFrame
    y: np.ndarray
    # Per row: the customer's pseudonym (for the registry and the fingerprint).
    pseudonyms: list[str]
    customer_fields: list[str]
    offer_fields: list[str]
    # Per row: when the customer last responded to (or was shown) the offer.
    responded_at: list[datetime]
    # Per row: the customer's id (the key of its cross-fitting fold).
    customer_ids: list[int]
    # Per row: when the customer was first shown (or first responded to) the offer.
    first_met_at: list[datetime]


class _Training:
    def __init__(self, run: TrainingRun, progress: Progress):
        self.run = run
        self.progress = progress
        self.params = resolved_params(run.params)
        # Consent is read once, at this instant; the snapshot records it.
        self.at = timezone.now()
        self.curves: dict[str, Any] = {"loss": [], "val_auc": []}
        # The test rows' scores by model ("bert", "blend"): the served one's are the score
        # reference of drift checks.
        self.test_scores: dict[str, Any] = {}
        self.last_flush = 0.0
        self.last_val_auc: float | None = None
        self.loss_average: float | None = None

    def execute(self) -> dict[str, Any]:
        import numpy as np

        from recengine.data import fingerprint

        run = self.run
        # What the run will use, the settings picked for its budget included (run page).
        TrainingRun.objects.filter(pk=run.pk).update(settings=asdict(self.params))
        self.progress(1, READING)
        examples = self.examples()
        parts = self.split(examples.y)
        self.progress(3, CHECKING_LEAKS)
        examples = self.leave_out_leaks(examples, parts["train"])
        used = np.sort(np.concatenate([parts["train"], parts["val"], parts["test"]]))
        pseudonyms = [examples.pseudonyms[i] for i in used]
        TrainingRun.objects.filter(pk=run.pk).update(
            rows={
                "examples": len(examples.y),
                "positives": int(examples.y.sum()),
                **{k: len(v) for k, v in parts.items()},
                # Customers with responses and a valid training consent; those not in the
                # sampled rows were left out by the row cap.
                "consented_customers": self.consented_customers,
                # The newest first contact learned from: an incremental re-training learns
                # from the customer-offer pairs first met after it.
                "latest_response_at": max(examples.first_met_at).isoformat(),
            },
            customers_used=len(set(pseudonyms)),
            fingerprint=fingerprint(
                examples.frame.assign(_label=examples.y, _customer=examples.pseudonyms)
            ),
        )
        crossfit = self.train_crossfit(examples, parts)
        baseline, baseline_seconds = self.train_baseline(examples, parts, crossfit)
        model, serializer_config = self.train_bert(examples, parts, crossfit.out_of_fold_)
        metrics = self.evaluate(examples, parts["test"], model, baseline)
        metrics["baseline"]["fit_seconds"] = baseline_seconds
        blend = self.train_blend(examples, parts, model, baseline, metrics)
        metrics["inputs"] = self.inputs
        served = "blend" if metrics["blend"]["served"] else "bert"
        metrics["out_of_sample"] = self.measure_in_sample_gap(
            examples,
            parts,
            blend if served == "blend" else model,
            crossfit,
            # Measured on the test rows already: not scored again.
            served_auc_test_rows=metrics[served]["roc_auc"],
        )
        TrainingRun.objects.filter(pk=run.pk).update(
            reference=training_reference(examples, parts, self.test_scores[served]),
            left_out_since_parent=left_out_since(run.parent) if run.parent else {},
        )
        self.progress(EVAL_END, MEASURING_SCORERS)
        metrics["scorers"], student = measure_scorers(
            frame=examples.frame,
            y=examples.y,
            train=parts["train"],
            val=parts["val"],
            served=blend if metrics["blend"]["served"] else model,
            seed=self.params.seed,
            threads=self.params.threads,
        )
        self.progress(EVAL_END + 2, SAVING)
        return self.save(
            model,
            serializer_config,
            metrics,
            pseudonyms,
            baseline,
            blend,
            text_values(examples.frame, examples.customer_fields),
            student,
            crossfit,
        )

    # ---- data ---------------------------------------------------------------------------------
    def examples(self) -> Examples:
        import numpy as np
        import pandas as pd

        run = self.run
        responses = (
            Interaction.objects.filter(offer=run.offer) if run.offer else Interaction.objects.all()
        )
        candidates = population(run.segment).filter(
            Exists(responses.filter(customer=OuterRef("pk")))
        )
        consented = customers_with_consent(Purpose.MODEL_TRAINING, queryset=candidates)
        excluded = consent_exclusions(Purpose.MODEL_TRAINING, queryset=candidates)
        positive_kinds = (
            [Interaction.Kind.CONVERSION]
            if run.target == TrainingRun.Target.CONVERSION
            else [Interaction.Kind.CLICK, Interaction.Kind.CONVERSION]
        )
        grouped = (
            responses.filter(customer__in=consented.values("pk"))
            .values("customer_id", "offer_id")
            .annotate(
                label=Max(
                    Case(
                        When(kind__in=positive_kinds, then=1),
                        default=0,
                        output_field=IntegerField(),
                    )
                )
            )
            .order_by()
            .annotate(at=Max("occurred_at"), first=Min("occurred_at"))
        )
        if run.data_since is not None:
            # Incremental: the customer-offer pairs first met after the parent's newest (a
            # conversion of a pair the parent learned from is not a new example).
            grouped = grouped.filter(first__gt=run.data_since)
        pairs = list(grouped.values_list("customer_id", "offer_id", "label", "at", "first"))
        types = field_types()
        customers = {
            pk: (pseudonym, learnable(attributes or {}, types))
            for pk, pseudonym, attributes in consented.values_list(
                "pk", "pseudonym", "attributes"
            ).iterator(chunk_size=5000)
        }
        offers = (
            {}
            if run.offer
            else {
                o.pk: offer_columns(o) for o in Offer.objects.filter(pk__in={p[1] for p in pairs})
            }
        )
        # A stable order (by pseudonym) makes the split and the fingerprint reproducible.
        pairs = [p for p in pairs if p[0] in customers]
        pairs.sort(key=lambda p: (customers[p[0]][0], p[1]))
        records = [
            {**customers[customer_id][1], **offers.get(offer_id, {})}
            for customer_id, offer_id, _, _, _ in pairs
        ]
        frame = pd.DataFrame.from_records(records) if records else pd.DataFrame()
        y = np.fromiter((label for _, _, label, _, _ in pairs), dtype=np.int64, count=len(pairs))
        self.record_consent(consented, excluded, len(customers))
        self.consented_customers = len({p[0] for p in pairs})
        self.check_classes(y)
        offer_fields = [c for c in OFFER_LABELS if c in frame.columns]
        customer_fields = [c for c in frame.columns if c not in OFFER_LABELS]
        frame = without_rare_values(
            frame, customer_fields, [p[0] for p in pairs], settings.MIN_GROUP_SIZE
        )
        if not customer_fields:
            raise TrainingDataError(NO_ATTRIBUTES)
        self.field_types = {f: types.get(f, "") for f in customer_fields}
        return Examples(
            frame,
            y,
            [customers[p[0]][0] for p in pairs],
            customer_fields,
            offer_fields,
            [p[3] for p in pairs],
            [p[0] for p in pairs],
            [p[4] for p in pairs],
        )

    def leave_out_leaks(self, examples: Examples, train: np.ndarray) -> Examples:
        """Flag the fields that give the outcome away on the training rows (recengine.leakage)
        and leave them out, except those the marketer chose to keep; the run records both."""
        from recengine.leakage import leaking_fields

        dates = [f for f, t in self.field_types.items() if t == ProfileField.DataType.DATE]
        leaks = leaking_fields(
            examples.frame.iloc[train],
            examples.y[train],
            examples.customer_fields,
            date_fields=dates,
            response_dates=[examples.responded_at[i] for i in train],
        )
        keep = set(self.params.keep_fields)
        flagged = [{**leak.as_dict(), "left_out": leak.field not in keep} for leak in leaks]
        TrainingRun.objects.filter(pk=self.run.pk).update(leakage=flagged)
        dropped = [f["field"] for f in flagged if f["left_out"]]
        if not dropped:
            return examples
        fields = [f for f in examples.customer_fields if f not in dropped]
        if not fields:
            raise TrainingDataError(message(ALL_LEAK, fields=", ".join(str(f) for f in dropped)))
        return replace(examples, frame=examples.frame.drop(columns=dropped), customer_fields=fields)

    def record_consent(
        self, consented: QuerySet[Customer], excluded: dict[str, int], n_consented: int
    ) -> None:
        records = valid_consent_records(Purpose.MODEL_TRAINING).filter(
            customer__in=consented.values("pk")
        )

        def counts(field: str) -> dict[str, int]:
            groups = records.order_by().values(field).annotate(n=Count("id"))
            return {str(g[field] or "—"): g["n"] for g in groups}

        TrainingRun.objects.filter(pk=self.run.pk).update(
            customers_excluded=excluded,
            consent_snapshot={
                "purpose": Purpose.MODEL_TRAINING.value,
                "at": self.at.isoformat(),
                "consented_customers": n_consented,
                "excluded": excluded,
                "notice_versions": counts("notice_version"),
                "lawful_bases": counts("lawful_basis"),
                "sources": counts("source"),
            },
        )

    def check_classes(self, y: np.ndarray) -> None:
        run = self.run
        offer = {"offer": run.offer.title} if run.offer else {}
        if not len(y) and run.data_since is not None:
            raise TrainingDataError(
                message(NO_NEW_RESPONSES, since=f"{run.data_since:%Y-%m-%d %H:%M}")
            )
        if not len(y):
            segment = {"segment": run.segment.name} if run.segment else {}
            raise TrainingDataError(
                message(NO_EXAMPLES[bool(segment), bool(offer)], **segment, **offer)
            )
        positives = int(y.sum())
        negatives = len(y) - positives
        if min(positives, negatives) < MIN_CLASS_EXAMPLES:
            raise TrainingDataError(
                message(
                    FEW_EXAMPLES[positives < MIN_CLASS_EXAMPLES, bool(offer), run.target],
                    few=min(positives, negatives),
                    total=f"{len(y):,}",
                    least=MIN_CLASS_EXAMPLES,
                    **offer,
                )
            )

    def split(self, y: np.ndarray) -> dict[str, np.ndarray]:
        from recengine.data import SplitConfig, split_rows

        p = self.params
        split = split_rows(
            y, SplitConfig(test_size=TEST_SHARE, val_size=VALIDATION_SHARE, seed=p.seed)
        )
        return {
            "train": _stratified_sample(split.train, y, p.max_rows, p.seed),
            "val": _stratified_sample(split.val, y, max(500, p.max_rows // 4), p.seed),
            "test": _stratified_sample(split.test, y, p.max_test_rows, p.seed),
        }

    # ---- models -------------------------------------------------------------------------------
    def train_baseline(self, examples: Examples, parts: dict[str, np.ndarray], crossfit):
        """LightGBM on every training row, with as many trees as the cross-fitted models
        found best on their left-out folds: the validation rows stay unseen by it, so the
        blend's weights, fitted there, see how it does on new customers."""
        from recengine.baseline import BaselineConfig, TabularBaseline

        p, frame, y = self.params, examples.frame, examples.y
        train = parts["train"]
        self.progress(8, message(TRAINING_BASELINE, rows=f"{len(train):,}"))
        started = time.perf_counter()
        config = BaselineConfig(
            kind="lightgbm",
            threads=p.threads,
            seed=p.seed,
            n_estimators=crossfit.trees_for_all_rows(),
        )
        baseline = TabularBaseline(config).fit(frame.iloc[train], y[train])
        return baseline, time.perf_counter() - started

    def train_crossfit(self, examples: Examples, parts: dict[str, np.ndarray]):
        """Baselines that each leave out a fold of the training customers: the customers the
        served model learned from are scored by the one that did not see them, so every
        customer's score (and the plans summed from them) is out of sample."""
        from recengine.baseline import BaselineConfig
        from recengine.crossfit import CrossFitConfig, CrossFitted

        p, frame, y = self.params, examples.frame, examples.y
        train = parts["train"]
        self.progress(5, message(CROSS_FITTING, folds=CROSSFIT_FOLDS))
        config = CrossFitConfig(
            folds=CROSSFIT_FOLDS,
            seed=p.seed,
            baseline=BaselineConfig(kind="lightgbm", threads=p.threads, seed=p.seed),
        )
        try:
            return CrossFitted(config).fit(
                frame.iloc[train], y[train], [examples.customer_ids[i] for i in train]
            )
        except ValueError as exc:  # a fold with one class: too few responders to cross-fit
            raise TrainingDataError(message(FEW_RESPONDERS, error=exc)) from exc

    def measure_in_sample_gap(
        self, examples: Examples, parts, served, crossfit, *, served_auc_test_rows: float
    ) -> dict[str, Any]:
        """How much better the served model ranks its own training rows than the test rows,
        and what the cross-fitted scores of the training rows give instead."""
        import numpy as np

        from recengine.metrics import click_metrics

        y, frame = examples.y, examples.frame
        train = parts["train"]
        picks = np.arange(0, len(train), max(1, len(train) // 5000))
        sample = train[picks]

        def auc(rows, scores):
            return (
                click_metrics(y[rows], scores).roc_auc if len(set(y[rows].tolist())) > 1 else None
            )

        return {
            "method": "cross-fitted",
            "folds": crossfit.config.folds,
            "served_auc_training_rows": auc(sample, served.predict_proba(frame.iloc[sample])),
            "crossfit_auc_training_rows": auc(sample, crossfit.out_of_fold_[picks]),
            "crossfit_mean_training_rows": float(crossfit.out_of_fold_.mean()),
            "response_rate_training_rows": float(y[train].mean()),
            "served_auc_test_rows": served_auc_test_rows,
        }

    def train_bert(self, examples: Examples, parts: dict[str, np.ndarray], teacher: np.ndarray):
        """BERT on the training rows; `teacher` holds the cross-fitted baselines' out-of-fold
        probabilities of the same rows, blended into the targets by the setting
        CLICK_MODEL_TEACHER_WEIGHT: the trees' view of the numbers guides the encoder
        (bench/train_default.py)."""
        from recengine.train import ClickModel

        run, p, frame, y = self.run, self.params, examples.frame, examples.y
        train, val = parts["train"], parts["val"]
        parent = self.parent_model() if run.start == TrainingRun.Start.INCREMENTAL else None
        serializer = (
            parent.serializer if parent is not None else new_serializer(examples, frame.iloc[train])
        )
        config = bert_config(p, mode=run.mode, base_model=run.base_model, train_rows=len(train))
        net = ClickModel(config, serializer) if parent is None else continued_model(parent, config)
        steps_per_epoch = math.ceil(len(train) / p.batch_size)
        total_steps = steps_per_epoch * net.config.epochs
        self.curves.update(total_steps=total_steps, steps_per_epoch=steps_per_epoch)
        TrainingRun.objects.filter(pk=run.pk).update(
            example_text=serializer.texts(frame.iloc[train[:1]])[0]
        )
        self.progress(
            TRAIN_START,
            message(
                PREPARING,
                mode=run.get_mode_display(),
                model=run.base_model_label,
                train=f"{len(train):,}",
                val=f"{len(val):,}",
            ),
        )
        model = net.fit(
            frame.iloc[train],
            y[train],
            frame.iloc[val],
            y[val],
            progress=self.on_step,
            teacher=teacher,
        )
        self.curves.update(
            self.final_curves(model.history_),
            steps=model.steps_,
            stopped_early=model.stopped_early_,
            stop_reason=model.stop_reason_,
        )
        TrainingRun.objects.filter(pk=run.pk).update(curves=self.curves)
        self.inputs = {
            "text_fields": [f for f in serializer.fields_ if f not in serializer.numeric_fields_],
            "numeric_fields": list(serializer.numeric_fields_),
            "offer_fields": list(examples.offer_fields),
            "sentinels": dict(serializer.config.sentinels),
            "numeric_encoding": serializer.config.numeric_encoding,
        }
        return model, serializer.config

    def parent_model(self):
        """The parent run's BERT model, from the registry, to go on from."""
        from recengine.train import ClickModel

        parent = self.run.parent
        if parent is None or not parent.model_id:
            raise TrainingDataError(message(NOTHING_TO_CONTINUE, name=self.run.name))
        self.progress(TRAIN_START, message(CONTINUING, run=parent.pk))
        try:
            model = model_registry(parent.model_id).load(parent.model_id)
        except FileNotFoundError as exc:
            raise TrainingDataError(message(PARENT_MODEL_GONE, run=parent.pk)) from exc
        if not isinstance(model, ClickModel):
            raise TrainingDataError(message(NOTHING_TO_CONTINUE, name=parent.name))
        return model

    def train_blend(
        self,
        examples: Examples,
        parts: dict[str, np.ndarray],
        model,
        baseline,
        metrics: dict[str, Any],
    ):
        """BERT and the baseline stacked by weights fitted on the validation rows (never the
        test rows). It is served unless it ranks the validation rows worse than BERT alone,
        judged out of fold (each validation row scored by a stacker not fitted to it), by more
        than one standard error of BERT's validation AUC: that AUC is the best of the many
        validations early stopping chose from, so it reads high by about that much."""

        from recengine.ensemble import StackedModel
        from recengine.metrics import auc_standard_error, click_metrics

        frame, y = examples.frame, examples.y
        val, test = parts["val"], parts["test"]
        blend = StackedModel({"model": model, "baseline": baseline})
        blend.fit(frame.iloc[val], y[val])
        # None: too few clicks (or non-clicks) to judge the blend fairly; BERT is served.
        val_auc = blend.out_of_fold_auc_
        self.test_scores["blend"] = blend.predict_proba(frame.iloc[test])
        metrics["blend"] = click_metrics(y[test], self.test_scores["blend"]).as_dict()
        positives = int(y[val].sum())
        margin = auc_standard_error(model.best_val_auc_, positives, len(val) - positives)
        metrics["blend"].update(
            weights=blend.weights,
            val_auc=val_auc,
            val_auc_in_sample=blend.in_sample_auc_,
            bert_val_auc_standard_error=margin,
            served=val_auc is not None and val_auc >= model.best_val_auc_ - margin,
        )
        return blend

    def on_step(self, step: TrainProgress) -> None:
        """recengine's progress -> the job's progress bar, message and live curve."""
        self.curves["loss"].append([step.step, round(step.loss, 5)])
        if step.val_auc is not None:
            self.curves["val_auc"].append([step.step, round(step.val_auc, 5)])
            self.last_val_auc = step.val_auc
        now = time.monotonic()
        if step.val_auc is not None or now - self.last_flush > CURVE_FLUSH_S:
            TrainingRun.objects.filter(pk=self.run.pk).update(curves=self.curves)
            self.last_flush = now
        # One batch's loss jumps around; the message shows a moving average.
        self.loss_average = (
            step.loss if self.loss_average is None else 0.8 * self.loss_average + 0.2 * step.loss
        )
        figures = {
            "epoch": step.epoch + 1,
            "epochs": self.params.epochs,
            "step": step.step,
            "steps": step.total_steps,
            "loss": f"{self.loss_average:.3f}",
        }
        if self.last_val_auc is not None:
            text = message(EPOCH_STEP_AUC, **figures, auc=f"{self.last_val_auc:.3f}")
        else:
            text = message(EPOCH_STEP, **figures)
        share = step.step / max(step.total_steps, 1)
        # Raises JobCancelled when the user cancelled: it unwinds out of the training loop.
        self.progress(TRAIN_START + (TRAIN_END - TRAIN_START) * share, text)

    @staticmethod
    def final_curves(history: list[dict[str, Any]]) -> dict[str, list]:
        """The loss as a trailing mean over a tenth of the steps (at most 50; one batch's
        loss is noisy), at most CURVE_POINTS points of it, and every validation AUC."""
        span = max(1, min(50, len(history) // 10))
        stride = max(1, math.ceil(len(history) / CURVE_POINTS))
        losses = [h["loss"] for h in history]
        loss = [
            [
                history[i]["step"],
                round(sum(losses[max(0, i + 1 - span) : i + 1]) / min(span, i + 1), 5),
            ]
            for i in range(len(history) - 1, -1, -stride)
        ][::-1]
        val_auc = [[h["step"], round(h["val_auc"], 5)] for h in history if "val_auc" in h]
        return {"loss": loss, "val_auc": val_auc}

    def evaluate(self, examples: Examples, test: np.ndarray, model, baseline) -> dict[str, Any]:
        import numpy as np

        from recengine.config import device_label
        from recengine.metrics import click_metrics
        from recengine.score import ScoreConfig, score_in_chunks

        y_test = examples.y[test]
        chunk = 1000
        started = time.perf_counter()
        scores = []
        for part in score_in_chunks(
            model, [examples.frame.iloc[test]], ScoreConfig(chunk_size=chunk)
        ):
            scores.append(part)
            done = sum(len(s) for s in scores)
            self.progress(
                TRAIN_END + (EVAL_END - TRAIN_END) * done / len(test),
                message(SCORING_TEST, done=f"{done:,}", total=f"{len(test):,}"),
            )
        bert_seconds = time.perf_counter() - started
        self.test_scores["bert"] = np.concatenate(scores)
        bert = click_metrics(y_test, self.test_scores["bert"]).as_dict()
        bert.update(
            fit_seconds=model.fit_seconds_,
            train_rows_per_s=model.train_rows_per_s_,
            scoring_rows_per_s=len(test) / bert_seconds,
            best_val_auc=model.best_val_auc_,
            steps=model.steps_,
            stopped_early=model.stopped_early_,
            stop_reason=model.stop_reason_,
            trained_on=device_label(model.device_),
        )
        base = click_metrics(y_test, baseline.predict_proba(examples.frame.iloc[test])).as_dict()
        return {"bert": bert, "baseline": base}

    def save(
        self,
        model,
        serializer_config,
        metrics: dict[str, Any],
        pseudonyms: list[str],
        baseline,
        blend,
        known_values: dict[str, list[str]],
        student,
        crossfit,
    ) -> dict[str, Any]:
        from recengine.config import config_to_dict, json_ready
        from recengine.registry import ModelRegistry

        p = self.params
        run = TrainingRun.objects.select_related("segment", "offer").get(pk=self.run.pk)
        metrics = json_ready(metrics)
        model_id = ModelRegistry(settings.MODEL_REGISTRY_DIR).save(
            model,
            name=run.name,
            fingerprint=run.fingerprint,
            pseudonyms=pseudonyms,
            consent_snapshot=run.consent_snapshot,
            metrics=metrics,
            parts={
                "baseline": baseline,
                "blend": blend,
                STUDENT_PART: student,
                CROSSFIT_PART: crossfit,
            },
            served="blend" if metrics["blend"]["served"] else "model",
            config={
                "training_run": run.pk,
                "target": run.target,
                "offer": run.offer.external_id if run.offer else None,
                "segment": {"name": run.segment.name, "rules": run.segment.rules}
                if run.segment
                else None,
                "params": asdict(p),
                "train": config_to_dict(model.config),
                "serialize": config_to_dict(serializer_config),
                "split": {
                    "test_size": TEST_SHARE,
                    "val_size": VALIDATION_SHARE,
                    "seed": p.seed,
                    "method": "stratified",
                },
                "rows": run.rows,
                # The text values the model learned; others are missing when it scores.
                "text_values": known_values,
            },
        )
        # Every worker machine reads it from the store (when there is one).
        model_put(model_id)
        erased = erased_since(self.at, set(pseudonyms))
        TrainingRun.objects.filter(pk=run.pk).update(
            metrics=metrics,
            model_id=model_id,
            flagged_erasure=bool(erased),
            erased_customers=len(erased),
        )
        return {
            "training_run": run.pk,
            "model_id": model_id,
            "training_rows": run.rows.get("train"),
            "test_auc_bert": round(metrics["bert"]["roc_auc"], 4),
            "test_auc_baseline": round(metrics["baseline"]["roc_auc"], 4),
            "test_auc_blend": round(metrics["blend"]["roc_auc"], 4),
            "served": "blend" if metrics["blend"]["served"] else "bert",
        }


def bert_config(p: TrainParams, *, mode: str, base_model: str, train_rows: int) -> TrainConfig:
    """The BERT training settings of a run with the resolved parameters ``p``."""
    from recengine.train import TrainConfig

    if p.epochs is None or p.frozen_layers is None:
        raise ValueError("the parameters are not resolved for the budget (resolved_params)")
    steps_per_epoch = math.ceil(train_rows / p.batch_size)
    eval_every = max(1, math.ceil(steps_per_epoch / EVALS_PER_EPOCH))
    return TrainConfig(
        base_model=base_model,
        mode=cast("TrainMode", mode),  # TrainingRun.Mode has exactly these values
        num_layers=p.num_layers,
        frozen_layers=0 if mode == TrainingRun.Mode.FROZEN else p.frozen_layers,
        max_length=p.max_length,
        batch_size=p.batch_size,
        epochs=p.epochs,
        learning_rate=p.learning_rate or DEFAULT_LEARNING_RATES[TrainingRun.Mode(mode)],
        eval_every=eval_every,
        patience=p.patience,
        # Validate a moving average of the weights over about one validation interval.
        average_decay=1.0 - 1.0 / max(10, eval_every),
        time_budget_s=p.time_budget_s,
        threads=p.threads,
        seed=p.seed,
        progress_every=max(1, min(10, steps_per_epoch * p.epochs // 50)),
        head_hidden=HEAD_HIDDEN,
        numeric_hidden=NUMERIC_HIDDEN,
        teacher_weight=settings.CLICK_MODEL_TEACHER_WEIGHT,
    )


def continued_model(parent: ClickModel, config: TrainConfig) -> ClickModel:
    """A model that goes on from ``parent``'s weights with ``config``'s way of training, at
    INCREMENTAL_LEARNING_RATE_SHARE of the learning rates, INCREMENTAL_MAX_EPOCHS passes and
    INCREMENTAL_TIME_SHARE of the time budget at most: more gently and briefly than a first
    training."""
    from recengine.train import ClickModel

    changes: dict[str, Any] = {
        name: getattr(config, name)
        for name in (
            "batch_size", "epochs", "eval_every", "patience", "average_decay",
            "time_budget_s", "threads", "seed", "progress_every", "teacher_weight",
        )
    }  # fmt: skip
    changes["epochs"] = min(config.epochs, INCREMENTAL_MAX_EPOCHS)
    if config.time_budget_s is not None:
        changes["time_budget_s"] = config.time_budget_s * INCREMENTAL_TIME_SHARE
    changes["learning_rate"] = config.learning_rate * INCREMENTAL_LEARNING_RATE_SHARE
    changes["head_learning_rate"] = (
        parent.config.head_learning_rate * INCREMENTAL_LEARNING_RATE_SHARE
    )
    return ClickModel.continued(parent, **changes)


def new_serializer(examples: Examples, train_rows: pd.DataFrame):
    """The text serialiser of a first training, fitted on its training rows."""
    from recengine.serialize import SerializeConfig, TextSerializer

    return TextSerializer(
        SerializeConfig(
            fields=examples.customer_fields,
            offer_fields=examples.offer_fields,
            labels={k: v for k, v in OFFER_LABELS.items() if k in examples.offer_fields},
            # Numbers go through the numeric tower (piecewise-linear over quantile bins, so any
            # bent response curve can be learnt); text tokens are spent on words.
            numeric_text="omit",
            numeric_encoding="piecewise",
            # "999 = never contacted" gets its own flag instead of bending the bins.
            detect_sentinels=True,
            # One space between fields: a token fewer per field than " | ", and the labels
            # already mark where a field starts (bench/click_model.py).
            separator=" ",
        )
    ).fit(train_rows)


def training_reference(
    examples: Examples, parts: dict[str, np.ndarray], served_test_scores: np.ndarray
) -> dict[str, Any]:
    """The profile drift checks compare recent data with: each customer field on the training
    rows (quantile bins or category shares) and the served model's scores of the test rows
    (customers it did not learn from, as the customers it scores later)."""
    from recengine.config import json_ready
    from recengine.drift import fit_reference

    rows = examples.frame.iloc[parts["train"]][examples.customer_fields]
    reference = fit_reference(rows, scores=served_test_scores)
    return json_ready(reference.as_dict(), allow_nan=False)


def left_out_since(parent: TrainingRun) -> dict[str, int]:
    """Customers ``parent`` learned from that a re-training leaves out: erased since, or
    without a valid model-training consent now (withdrawn, expired)."""
    if not parent.model_id:
        return {"erased": parent.erased_customers, "withdrawn": 0}
    learned = sorted(model_registry(parent.model_id).customers(parent.model_id))
    still, consented = 0, 0
    for start in range(0, len(learned), 5000):
        chunk = learned[start : start + 5000]
        present = Customer.objects.filter(pseudonym__in=chunk)
        still += present.count()
        consented += customers_with_consent(Purpose.MODEL_TRAINING, queryset=present).count()
    return {"erased": len(learned) - still, "withdrawn": still - consented}


def parent_data_until(parent: TrainingRun | None) -> datetime | None:
    """The newest response ``parent`` learned from (when it trained, for runs that did not
    record it): an incremental re-training learns from the responses after it."""
    if parent is None:
        return None
    latest = parse_datetime(parent.rows.get("latest_response_at") or "")
    return latest or parent.created_at


def resolved_params(data: dict[str, Any] | None):
    """A run's settings as it trains: the empty ones picked for its budget and for the
    hardware this worker has (the GPU when torch sees one, else its share of the cores)."""
    from recengine.config import pick_device

    params = train_params(data)
    threads = params.threads or job_threads()
    params = for_budget(params, gpu=pick_device("auto") == "cuda", threads=threads)
    return replace(params, threads=threads)


def erased_since(at: datetime, pseudonyms: set[str]) -> set[str]:
    """Which of these customers were erased after ``at`` (while a run was reading them).
    Erasure events name the person by their erasure token."""
    tokens = {erasure_token(pseudonym): pseudonym for pseudonym in pseudonyms}
    refs = AuditEvent.objects.filter(
        action=AuditEvent.Action.ERASURE, target_type="customer", at__gte=at
    ).values_list("target_ref", flat=True)
    return {tokens[ref] for ref in refs if ref in tokens}


def without_rare_values(
    frame: pd.DataFrame, fields: list[str], owners: list[int], k: int
) -> pd.DataFrame:
    """Text values held by fewer than ``k`` customers become missing.

    A fitted model keeps the categories it saw (the baseline's encoder stores them), so a
    value only one person has would outlive that person's erasure inside every model trained
    on them; values shared by ``k`` people identify no one and are what a model can learn from.
    """
    import pandas as pd

    frame = frame.copy()
    for field in fields:
        column = frame[field]
        if pd.api.types.is_numeric_dtype(column) or pd.api.types.is_bool_dtype(column):
            continue
        holders = (
            pd.DataFrame({"value": column.astype("string"), "owner": owners})
            .dropna()
            .drop_duplicates()
            .groupby("value")["owner"]
            .size()
        )
        rare = set(holders[holders < k].index)
        if rare:
            frame[field] = column.where(~column.astype("string").isin(rare), None)
    return frame


def text_values(frame: pd.DataFrame, fields: list[str]) -> dict[str, list[str]]:
    """The values of each text field a model learned from (after ``without_rare_values``)."""
    import pandas as pd

    return {
        field: sorted(frame[field].dropna().astype(str).unique())
        for field in fields
        if not pd.api.types.is_numeric_dtype(frame[field])
        and not pd.api.types.is_bool_dtype(frame[field])
    }


def _stratified_sample(positions: np.ndarray, y: np.ndarray, n: int, seed: int) -> np.ndarray:
    import numpy as np
    from sklearn.model_selection import train_test_split

    if len(positions) <= n:
        return positions
    kept, _ = train_test_split(positions, train_size=n, stratify=y[positions], random_state=seed)
    return np.sort(kept)
