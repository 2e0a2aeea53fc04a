"""What a training run may be asked for: its hyper-parameters, their limits (the one
definition the training form and the API serializer build their bounds from) and the check
of form or API data against them."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypedDict

from django.utils import translation
from django.utils.translation import gettext_noop

from marketing.errors import ApplicationError
from marketing.models import TrainingRun


class TrainingSetupError(ApplicationError, ValueError):
    """The requested training cannot start; the message says what to change."""


# ---- messages stored or answered in English, translated where a page shows them ---------------
def message(msgid: str, **params: Any) -> str:
    """The English text of a message (marked with ``gettext_noop`` and listed in its module's
    ``MESSAGES``) with its named placeholders filled in: what the API answers and what a job
    stores. Pages show it in the reader's language (``marketing.stored_texts.translated``)."""
    if not params:
        return msgid
    with translation.override("en"):  # a lazy label among the params reads in English too
        return msgid % {k: str(v) for k, v in params.items()}


UNKNOWN_PARAMETERS = gettext_noop("Unknown training parameter(s): %(parameters)s")
NOT_A_NUMBER = gettext_noop("%(name)s must be a number, not %(value)s")
NOT_WHOLE = gettext_noop("%(name)s must be a whole number, not %(value)s")
OUT_OF_BOUNDS = gettext_noop("%(name)s must be between %(low)s and %(high)s")
KEEP_FIELDS_LIST = gettext_noop("keep_fields must be a list of profile field names")
KEEP_FIELDS_SIZE = gettext_noop("keep_fields names at most 200 fields of 64 characters")
MESSAGES = (
    UNKNOWN_PARAMETERS,
    NOT_A_NUMBER,
    NOT_WHOLE,
    OUT_OF_BOUNDS,
    KEEP_FIELDS_LIST,
    KEEP_FIELDS_SIZE,
)


@dataclass
class TrainParams:
    """Hyper-parameters a marketer may change.

    The marketer chooses a time budget; the settings left empty (None) are picked for that
    budget and the hardware the job runs on, when it starts (`for_budget`), from what
    `bench/click_model.py` and `bench/train_default.py` measured. Anything set here wins.
    """

    # Training stops after this many seconds and keeps the best model so far.
    time_budget_s: int = 600
    # Passes over the training rows at most (early stopping on validation AUC and the time
    # budget usually end sooner); None = picked for the budget.
    epochs: int | None = None
    # Rows per optimisation step.
    batch_size: int = 64
    # Learning rate of the encoder or its adapters; None = the usual rate for the mode.
    learning_rate: float | None = None
    # Longest input text in tokens; a compact customer text is about 30-50.
    max_length: int = 64
    # Encoder layers kept, from the bottom (a shallower encoder trains and scores faster);
    # None = picked for the hardware.
    num_layers: int | None = None
    # Lowest encoder layers kept frozen and computed once (much faster; full and LoRA);
    # None = picked for the hardware.
    frozen_layers: int | None = None
    # Training rows at most (a stratified sample when there are more); None = picked for
    # the budget.
    max_rows: int | None = None
    # Test rows scored for the metrics at most.
    max_test_rows: int = 20000
    # Training stops after this many validations (2 an epoch) without a better validation AUC.
    patience: int = 12
    # Seed of the split, the samples and the training.
    seed: int = 0
    # CPU threads for torch and LightGBM (None = the worker's share of the machine's cores).
    threads: int | None = None
    # Profile fields the leakage check flags that the marketer keeps knowingly (the others
    # it flags are left out).
    keep_fields: list[str] = field(default_factory=list)


# Settings picked when a run leaves them empty, per hardware. On a CPU, 3 of MiniLM's 6
# layers with the lowest 2 frozen and cached train about 4x faster than all six and reached
# the best test AUC on the bank data within 10 minutes on 2 cores (bench/click_model.py);
# on a GPU all six layers train, none frozen (README: 60-80 s budgets on one H200).
AUTO_LAYERS = {"cpu": (3, 2), "gpu": (None, 0)}
# Training rows per second of budget per CPU thread the CPU path can use: with about three
# passes in the budget, early stopping has room to find the best epoch. 10 minutes on 2
# threads covers the bank data's 28,831 training rows.
CPU_ROWS_PER_BUDGET_S_PER_THREAD = 30
GPU_ROWS_PER_BUDGET_S = 2000
AUTO_MIN_ROWS = 2000
AUTO_EPOCHS = 20


def for_budget(params: TrainParams, *, gpu: bool, threads: int) -> TrainParams:
    """The run's settings with every empty one picked for its time budget and hardware."""
    layers, frozen = AUTO_LAYERS["gpu" if gpu else "cpu"]
    rate = GPU_ROWS_PER_BUDGET_S if gpu else CPU_ROWS_PER_BUDGET_S_PER_THREAD * max(1, threads)
    picked: dict[str, Any] = {
        "epochs": AUTO_EPOCHS,
        "num_layers": layers,
        "frozen_layers": frozen,
        "max_rows": max(AUTO_MIN_ROWS, int(params.time_budget_s * rate)),
    }
    return replace(params, **{k: v for k, v in picked.items() if getattr(params, k) is None})


# (lowest, highest) accepted value per parameter.
PARAM_LIMITS: dict[str, tuple[float, float]] = {
    "epochs": (1, 50),
    "batch_size": (2, 1024),
    "learning_rate": (1e-7, 0.1),
    "max_length": (8, 512),
    "num_layers": (1, 48),
    "frozen_layers": (0, 48),
    "max_rows": (50, 10_000_000),
    "max_test_rows": (50, 10_000_000),
    "time_budget_s": (10, 7 * 24 * 3600),
    "patience": (1, 10_000),
    "seed": (0, 2**31 - 1),
    "threads": (1, 256),
}


class FieldBounds(TypedDict):
    # Any: an int for the integer parameters, a float for learning_rate.
    min_value: Any
    max_value: Any


def param_bounds(name: str, *, unit: int = 1) -> FieldBounds:
    """``min_value`` and ``max_value`` of a form or serializer field for the parameter, from
    PARAM_LIMITS; ``unit=60`` gives whole minutes of a parameter in seconds (rounded inwards).
    """
    low, high = PARAM_LIMITS[name]
    if unit == 1:
        return {"min_value": low, "max_value": high}
    return {"min_value": math.ceil(low / unit), "max_value": math.floor(high / unit)}


DEFAULT_LEARNING_RATES = {
    TrainingRun.Mode.FULL: 1e-4,
    TrainingRun.Mode.LORA: 1e-3,
    TrainingRun.Mode.FROZEN: 1e-3,
}


def train_params(data: dict[str, Any] | None) -> TrainParams:
    """Checked hyper-parameters from form or API data (missing keys get the defaults)."""
    data = {k: v for k, v in (data or {}).items() if v is not None and v != ""}
    known = {f.name: f for f in fields(TrainParams)}
    unknown = sorted(set(data) - set(known))
    if unknown:
        raise TrainingSetupError(message(UNKNOWN_PARAMETERS, parameters=", ".join(unknown)))
    values: dict[str, Any] = {}
    if "keep_fields" in data:
        values["keep_fields"] = _field_names(data.pop("keep_fields"))
    for name, value in data.items():
        cast = float if name == "learning_rate" else int
        try:
            number = cast(value)
        except (TypeError, ValueError):
            raise TrainingSetupError(message(NOT_A_NUMBER, name=name, value=repr(value))) from None
        if cast is int and number != float(value):
            raise TrainingSetupError(message(NOT_WHOLE, name=name, value=repr(value)))
        low, high = PARAM_LIMITS[name]
        if not low <= number <= high:
            raise TrainingSetupError(
                message(OUT_OF_BOUNDS, name=name, low=f"{low:g}", high=f"{high:g}")
            )
        values[name] = number
    return TrainParams(**values)


def _field_names(value: Any) -> list[str]:
    """keep_fields: a list of profile field names, or one comma-separated text."""
    if isinstance(value, str):
        value = [v for v in (part.strip() for part in value.split(",")) if v]
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) for v in value):
        raise TrainingSetupError(KEEP_FIELDS_LIST)
    if len(value) > 200 or any(len(v) > 64 for v in value):
        raise TrainingSetupError(KEEP_FIELDS_SIZE)
    return sorted(set(value))
