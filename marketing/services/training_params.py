"""What a training run may be asked for: its hyper-parameters, their limits (the one
definition the training form and the API serializer build their bounds from) and the check
of form or API data against them."""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from typing import Any, TypedDict

from marketing.errors import ApplicationError
from marketing.models import TrainingRun


class TrainingSetupError(ApplicationError, ValueError):
    """The requested training cannot start; the message says what to change."""


@dataclass
class TrainParams:
    """Hyper-parameters a marketer may change.

    The defaults are the fast ones: LoRA adapters on the top layers of the packaged MiniLM,
    one epoch over at most 6,000 rows, so a run on the 41,188 demo customers ends in a few
    minutes on a 2-core CPU. More rows and epochs give a better model and take longer.
    """

    # Passes over the training rows (early stopping on validation AUC may end sooner).
    epochs: int = 1
    # Rows per optimisation step.
    batch_size: int = 32
    # Learning rate of the encoder or its adapters; None = the usual rate for the mode.
    learning_rate: float | None = None
    # Longest input text in tokens; a compact customer text is about 30-50.
    max_length: int = 64
    # Lowest encoder layers kept frozen and computed once (much faster; full and LoRA).
    frozen_layers: int = 3
    # Training rows at most (a stratified sample when there are more).
    max_rows: int = 6000
    # Test rows scored for the metrics at most.
    max_test_rows: int = 5000
    # Training stops after this many seconds and keeps the best model so far.
    time_budget_s: int = 1200
    # Training stops after this many validations (4 an epoch) without a better validation AUC.
    patience: int = 4
    # Seed of the split, the samples and the training.
    seed: int = 0
    # CPU threads for torch and LightGBM (None = the libraries' default).
    threads: int | None = None


# (lowest, highest) accepted value per parameter.
PARAM_LIMITS: dict[str, tuple[float, float]] = {
    "epochs": (1, 50),
    "batch_size": (2, 1024),
    "learning_rate": (1e-7, 0.1),
    "max_length": (8, 512),
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
        raise TrainingSetupError(f"Unknown training parameter(s): {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for name, value in data.items():
        cast = float if name == "learning_rate" else int
        try:
            number = cast(value)
        except (TypeError, ValueError):
            raise TrainingSetupError(f"{name} must be a number, not {value!r}") from None
        if cast is int and number != float(value):
            raise TrainingSetupError(f"{name} must be a whole number, not {value!r}")
        low, high = PARAM_LIMITS[name]
        if not low <= number <= high:
            raise TrainingSetupError(f"{name} must be between {low:g} and {high:g}")
        values[name] = number
    return TrainParams(**values)
