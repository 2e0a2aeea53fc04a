"""The scorers a scoring run can use, each measured when its model is trained.

- ``served``: the model the training run serves (BERT, or its blend with the baseline);
- ``int8``: the same with BERT's linear layers in dynamic int8, on the CPU;
- ``fast``: a LightGBM student that learnt the served model's logits from the profile
  columns (``recengine.score.DistilledScorer``): many times faster, at some cost in AUC.

Training measures each on the validation rows (AUC, and rows scored per second on the
machine that trained) and stores the figures in ``metrics["scorers"]`` and the student with
the model, so the scoring form can show what each choice gives and costs before it starts.
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, NamedTuple

from marketing.models import ScoringRun, TrainingRun
from marketing.services.model_inputs import known_values_only, model_text_values

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

Scorer = ScoringRun.Scorer
# Training rows whose served-model scores the student learns from (a seeded sample).
STUDENT_ROWS = 5000
STUDENT_PART = "student"
# The cross-fitted baselines that score the customers a model learned from.
CROSSFIT_PART = "crossfit"


def int8_copy(served: Any) -> Any:
    """The served model with BERT's linear layers in int8 (a blend keeps its other members)."""
    from recengine.ensemble import StackedModel
    from recengine.score import quantized_for_cpu

    if isinstance(served, StackedModel):
        blend = copy.copy(served)
        return blend.bind({**served.members, "model": quantized_for_cpu(served.members["model"])})
    return quantized_for_cpu(served)


def measure_scorers(
    *,
    frame: pd.DataFrame,
    y: np.ndarray,
    train: np.ndarray,
    val: np.ndarray,
    served: Any,
    seed: int,
    threads: int | None,
) -> tuple[dict[str, dict[str, Any]], Any]:
    """``({scorer: {"val_auc", "rows_per_s"}}, student)``: each scorer's AUC on the
    validation rows and its speed on them."""
    import numpy as np

    from recengine.score import DistilledScorer, StudentConfig

    rng = np.random.default_rng(seed)
    sample = np.sort(rng.choice(train, min(len(train), STUDENT_ROWS), replace=False))
    taught = np.clip(np.asarray(served.predict_proba(frame.iloc[sample]), float), 1e-6, 1 - 1e-6)
    student = DistilledScorer(StudentConfig(threads=threads, seed=seed)).fit(
        frame.iloc[sample], np.log(taught) - np.log1p(-taught)
    )
    scorers = {Scorer.SERVED: served, Scorer.INT8: int8_copy(served), Scorer.FAST: student}
    return {
        str(name): _measure(model, frame.iloc[val], y[val]) for name, model in scorers.items()
    }, student


def _measure(model: Any, frame: pd.DataFrame, y: np.ndarray) -> dict[str, Any]:
    """AUC on the validation rows, and the speed of scoring them (one pass for both)."""
    from recengine.metrics import click_metrics

    started = time.perf_counter()
    scores = model.predict_proba(frame)
    seconds = max(time.perf_counter() - started, 1e-6)
    auc = click_metrics(y, scores).roc_auc if len(set(y.tolist())) > 1 else None
    return {"val_auc": auc, "rows_per_s": round(len(frame) / seconds, 1)}


def available_scorers(metrics: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The scorers a training run's model offers, with their measured figures. A model
    trained before the choice existed offers the served model alone, without figures."""
    measured = metrics.get("scorers") or {}
    return {
        choice.value: {"label": choice.label, **measured.get(choice.value, {})}
        for choice in Scorer
        if choice == Scorer.SERVED or choice.value in measured
    }


def scorer_model(registry: Any, model_id: str, scorer: str, *, device: str) -> Any:
    """The model that scores for ``scorer``: the served one, its int8 copy (CPU), or the
    student stored with it."""
    if scorer == Scorer.FAST:
        return registry.load_part(model_id, STUDENT_PART)
    if scorer == Scorer.INT8:
        return int8_copy(registry.load_served(model_id, device="cpu"))
    return registry.load_served(model_id, device=device)


@dataclass
class Learned:
    """Which customers a model learned from and how to find the fold model that did not
    see each of them (models trained before cross-fitting have none: ``None``)."""

    pseudonyms: set[str]
    folds: int
    seed: int


def out_of_sample(registry: Any, model_id: str, model: Any) -> tuple[Any, Learned | None]:
    """``model`` wrapped so that the customers it learned from are scored by the cross-fitted
    baselines, and who those customers are; the model as it is when it has no cross-fit."""
    from recengine.crossfit import OutOfSample

    try:
        crossfit = registry.load_part(model_id, CROSSFIT_PART)
    except KeyError:
        return model, None
    learned = Learned(registry.customers(model_id), crossfit.config.folds, crossfit.config.seed)
    return OutOfSample(model, crossfit), learned


class ScoringModel(NamedTuple):
    """A trained model as scoring reads it: the scorer (the customers it learned from scored
    out of sample), the text values it learned, and who it learned from."""

    model: Any
    known: dict[str, set[str]] | None
    learned: Learned | None


def scoring_model(training: TrainingRun, scorer: str, *, device: str) -> ScoringModel:
    """The model of ``training`` that scores for ``scorer``, as scoring jobs use it."""
    from marketing.filestore import model_registry

    registry = model_registry(training.model_id)
    model = scorer_model(registry, training.model_id, scorer, device=device)
    model, learned = out_of_sample(registry, training.model_id, model)
    return ScoringModel(model, model_text_values(training), learned)


def customer_row(
    attributes: Any, loaded: ScoringModel, *, customer_id: int | None, pseudonym: str | None
) -> dict[str, Any]:
    """A customer's profile (stored JSON, or already read) as the model's input row: text
    values it never learned as missing, and the fold of a customer it learned from (a
    visitor, with no id, is new to it)."""
    from recengine.crossfit import FOLD_COLUMN, NOT_LEARNED, fold_of

    profile = json.loads(attributes) if isinstance(attributes, str) else attributes
    row = known_values_only(profile or {}, loaded.known)
    learned = loaded.learned
    if learned is not None:
        row[FOLD_COLUMN] = (
            fold_of(customer_id, learned.folds, learned.seed)
            if customer_id is not None and pseudonym in learned.pseudonyms
            else NOT_LEARNED
        )
    return row
