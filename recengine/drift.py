"""Model monitoring: has the data moved since training, and do the scores still hold?

`fit_reference(train_frame)` profiles the training data once (bin edges and shares per field,
JSON-ready through `as_dict` / `from_dict`), so a job can keep the profile beside the model
and compare later rows with it without the training rows. `drift_report` gives each field's
population stability index (PSI) between training and recent rows, and the score's;
`psi` and `psi_categorical` do the same for one array. `live_quality` measures the model on
recent outcomes: AUC and calibration.

PSI = sum over bins of (actual share - expected share) * ln(actual share / expected share).
Numbers are binned at the training sample's quantiles, categories by value; missing values
get a bin of their own in both, so a field that starts arriving empty shows as drift. The
usual reading: below 0.1 stable, 0.1 to 0.25 moderate, 0.25 and above a major shift.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score

from recengine.roi import checked_binary, checked_scores, same_length

FieldKind = Literal["number", "category"]
Level = Literal["stable", "moderate", "major"]

# Floor of every share: a bin empty on one side would otherwise make ln(a / e) infinite.
EPSILON = 1e-4
# (moderate, major): PSI at or above the first is worth watching, at or above the second is
# an alert. The common industry reading of PSI.
THRESHOLDS = (0.1, 0.25)
# Categories beyond the most frequent ones share the "other" bin, so an id-like text column
# does not become thousands of one-row bins that all look like drift.
MAX_CATEGORIES = 50
OTHER = "(other)"
MISSING = "(missing)"


# ---- one field's profile ------------------------------------------------------------------
@dataclass
class FieldProfile:
    """Where one field's training values fell: the bins and each bin's share."""

    field: str
    kind: FieldKind
    # Numbers: inner bin edges, ascending; bin i holds edges[i-1] < x <= edges[i], with open
    # ends below the first and above the last edge. Empty for categories.
    edges: list[float]
    # Categories: the values that have their own bin (as text). Empty for numbers.
    categories: list[str]
    # Training share of each bin: numbers len(edges) + 1 bins, categories one per category
    # then OTHER; the last share is always the missing values'. Sums to 1 (before flooring).
    shares: list[float]

    def bin_shares(self, values: Any) -> np.ndarray:
        """The share of `values` in each of this profile's bins (same order as `shares`)."""
        counts = (
            _number_counts(values, self.edges)
            if self.kind == "number"
            else _category_counts(values, self.categories)
        )
        total = counts.sum()
        if total == 0:
            raise ValueError(f"No values to compare for field '{self.field}'.")
        return counts / total

    def psi(self, values: Any) -> float:
        """PSI of `values` against this profile."""
        return population_stability(np.asarray(self.shares), self.bin_shares(values))

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> FieldProfile:
        return cls(**data)


def profile_numbers(values: Any, *, bins: int = 10, name: str = "value") -> FieldProfile:
    """The profile of a numeric training sample: edges at its quantiles (repeated edges of
    a lumpy sample merged, so there may be fewer than `bins` bins)."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}.")
    x = _numbers(values)
    present = x[~np.isnan(x)]
    edges: list[float] = []
    if present.size:
        # Edges at sample values (not interpolated between them), so a lumpy field such as
        # a 0/1 flag gets the edge 0 rather than one halfway to the next value.
        inner = np.quantile(present, np.linspace(0, 1, bins + 1)[1:-1], method="inverted_cdf")
        # The top edge equal to the maximum would leave an empty last bin; drop it.
        edges = [float(e) for e in np.unique(inner) if e < present.max()]
    shares = _counts_to_shares(_number_counts(x, edges), name)
    return FieldProfile(name, "number", edges=edges, categories=[], shares=shares)


def profile_categories(
    values: Any, *, name: str = "value", max_categories: int = MAX_CATEGORIES
) -> FieldProfile:
    """The profile of a categorical training sample: one bin per category (the most frequent
    `max_categories`), one for the rest and one for missing values."""
    text = _texts(values)
    counts = pd.Series(text[~pd.isna(text)], dtype=object).value_counts()
    categories = [str(c) for c in counts.index[:max_categories]]
    shares = _counts_to_shares(_category_counts(text, categories), name)
    return FieldProfile(name, "category", edges=[], categories=categories, shares=shares)


def population_stability(expected: np.ndarray, actual: np.ndarray) -> float:
    """PSI of two arrays of bin shares, each share floored at EPSILON."""
    e = np.maximum(np.asarray(expected, dtype=float), EPSILON)
    a = np.maximum(np.asarray(actual, dtype=float), EPSILON)
    return float(np.sum((a - e) * np.log(a / e)))


def psi(expected: Any, actual: Any, *, bins: int = 10) -> float:
    """PSI of a numeric sample `actual` against the training sample `expected`."""
    return profile_numbers(expected, bins=bins).psi(actual)


def psi_categorical(expected: Any, actual: Any) -> float:
    """PSI of a categorical sample `actual` against the training sample `expected`; values
    unseen in training count in the "other" bin."""
    return profile_categories(expected).psi(actual)


def _numbers(values: Any) -> np.ndarray:
    x = pd.to_numeric(pd.Series(np.asarray(values).ravel()), errors="coerce")
    return x.to_numpy(dtype=float, na_value=np.nan)


def _texts(values: Any) -> np.ndarray:
    """Values as text (so True, 1 and "1" from JSON compare alike), missing ones as None."""
    raw = pd.Series(np.asarray(values, dtype=object).ravel(), dtype=object)
    return np.asarray([None if pd.isna(v) else str(v) for v in raw], dtype=object)


def _number_counts(values: Any, edges: Sequence[float]) -> np.ndarray:
    x = _numbers(values)
    missing = np.isnan(x)
    where = np.searchsorted(np.asarray(edges, dtype=float), x[~missing], side="left")
    counts = np.bincount(where, minlength=len(edges) + 1).astype(float)
    return np.append(counts, missing.sum())


def _category_counts(values: Any, categories: Sequence[str]) -> np.ndarray:
    text = _texts(values)
    missing = pd.isna(text)
    position = {c: i for i, c in enumerate(categories)}
    other = len(categories)
    where = np.asarray([position.get(v, other) for v in text[~missing]], dtype=np.int64)
    counts = np.bincount(where, minlength=other + 1).astype(float)
    return np.append(counts, missing.sum())


def _counts_to_shares(counts: np.ndarray, name: str) -> list[float]:
    if counts.sum() == 0:
        raise ValueError(f"No training values for field '{name}'.")
    return [float(s) for s in counts / counts.sum()]


# ---- a whole frame ------------------------------------------------------------------------
def field_kind(column: pd.Series) -> FieldKind:
    """Booleans, text and categoricals are compared by category, other numbers by bins."""
    if pd.api.types.is_bool_dtype(column) or not pd.api.types.is_numeric_dtype(column):
        return "category"
    return "number"


@dataclass
class Reference:
    """The training data's profile, kept beside the model to compare later rows with."""

    # Rows the profile was built from.
    rows: int
    # One profile per field, in the training frame's column order.
    fields: dict[str, FieldProfile]
    # The model's training (or validation) scores, when given.
    score: FieldProfile | None = None

    def as_dict(self) -> dict:
        return {
            "rows": self.rows,
            "fields": [p.as_dict() for p in self.fields.values()],
            "score": self.score.as_dict() if self.score else None,
        }

    @classmethod
    def from_dict(cls, data: dict) -> Reference:
        profiles = [FieldProfile.from_dict(p) for p in data["fields"]]
        score = data.get("score")
        return cls(
            rows=int(data["rows"]),
            fields={p.field: p for p in profiles},
            score=FieldProfile.from_dict(score) if score else None,
        )


def fit_reference(
    frame: pd.DataFrame,
    *,
    fields: Sequence[str] | None = None,
    scores: Any = None,
    bins: int = 10,
) -> Reference:
    """Profile `fields` of the training frame (all columns when None) and the scores."""
    names = list(frame.columns if fields is None else fields)
    _require_columns(frame, names, "training")
    profiles = {}
    for name in names:
        column = frame[name]
        profiles[name] = (
            profile_numbers(column, bins=bins, name=name)
            if field_kind(column) == "number"
            else profile_categories(column, name=name)
        )
    score = None if scores is None else profile_numbers(scores, bins=bins, name="score")
    return Reference(rows=len(frame), fields=profiles, score=score)


@dataclass
class FieldDrift:
    field: str
    kind: FieldKind
    psi: float
    level: Level


@dataclass
class DriftReport:
    # Per field, largest PSI first.
    fields: list[FieldDrift]
    # The score's PSI (None when no scores were given).
    score: FieldDrift | None
    # Fields whose PSI is at or above the alert threshold (thresholds[1]), largest first.
    moved: list[str]
    thresholds: tuple[float, float]
    train_rows: int
    recent_rows: int

    def as_dict(self) -> dict:
        data = asdict(self)
        data["thresholds"] = list(self.thresholds)
        return data


def drift_level(value: float, thresholds: tuple[float, float] = THRESHOLDS) -> Level:
    watch, alert = thresholds
    if value >= alert:
        return "major"
    return "moderate" if value >= watch else "stable"


def drift_report(
    train_frame: pd.DataFrame | Reference,
    recent_frame: pd.DataFrame,
    *,
    fields: Sequence[str] | None = None,
    score_train: Any = None,
    score_recent: Any = None,
    thresholds: tuple[float, float] = THRESHOLDS,
    bins: int = 10,
) -> DriftReport:
    """PSI of each field (and of the score) between training and recent rows.

    `train_frame` is the training rows or their `Reference`; `fields` defaults to every field
    of it. The score's PSI needs `score_recent` and either `score_train` or a reference that
    holds the training scores.
    """
    watch, alert = thresholds
    if not 0 <= watch <= alert:
        raise ValueError(
            f"thresholds must be (watch, alert) with watch <= alert, got {thresholds}."
        )
    if isinstance(train_frame, Reference):
        reference = train_frame
        names = list(reference.fields if fields is None else fields)
        unknown = [n for n in names if n not in reference.fields]
        if unknown:
            raise ValueError(f"The reference has no profile for field(s): {', '.join(unknown)}.")
    else:
        reference = fit_reference(train_frame, fields=fields, bins=bins)
        names = list(reference.fields)
    _require_columns(recent_frame, names, "recent")
    if len(recent_frame) == 0:
        raise ValueError("No recent rows to compare with the training data.")
    drifts = []
    for name in names:
        profile = reference.fields[name]
        value = profile.psi(recent_frame[name])
        drifts.append(FieldDrift(name, profile.kind, value, drift_level(value, thresholds)))
    drifts.sort(key=lambda d: d.psi, reverse=True)
    score = None
    if score_recent is not None:
        score_profile = (
            profile_numbers(score_train, bins=bins, name="score")
            if score_train is not None
            else reference.score
        )
        if score_profile is None:
            raise ValueError("score_recent needs score_train or a reference with scores.")
        value = score_profile.psi(score_recent)
        score = FieldDrift("score", "number", value, drift_level(value, thresholds))
    return DriftReport(
        fields=drifts,
        score=score,
        moved=[d.field for d in drifts if d.psi >= alert],
        thresholds=(watch, alert),
        train_rows=reference.rows,
        recent_rows=len(recent_frame),
    )


def _require_columns(frame: pd.DataFrame, names: Sequence[str], which: str) -> None:
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise ValueError(f"The {which} rows have no column(s): {', '.join(missing)}.")


# ---- quality on recent outcomes -----------------------------------------------------------
@dataclass
class LiveQuality:
    rows: int
    # None when the outcomes hold one class only (AUC is undefined then).
    auc: float | None
    mean_predicted: float
    observed_rate: float
    # Expected calibration error: the row-weighted mean |mean predicted - observed rate| over
    # the probability bins.
    ece: float
    # Per bin (lowest probabilities first): mean predicted, observed rate and row count.
    calibration: list[dict[str, float]]

    def as_dict(self) -> dict:
        return asdict(self)


def live_quality(y: Any, p: Any, *, bins: int = 10) -> LiveQuality:
    """How well the probabilities `p` rank and match recent outcomes `y` (0/1).

    Bins hold equal numbers of rows by predicted probability (deciles by default), so the
    low probabilities of a rare response still spread over all bins.
    """
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}.")
    outcome = checked_binary(y, "outcome")
    prob = checked_scores(p, "probability", column="probability")
    same_length(outcome, prob, "outcome", "probability")
    order = np.argsort(prob, kind="stable")
    table = []
    ece = 0.0
    for rows in np.array_split(order, min(bins, len(prob))):
        predicted, observed = float(prob[rows].mean()), float(outcome[rows].mean())
        table.append({"predicted": predicted, "observed": observed, "count": int(len(rows))})
        ece += len(rows) / len(prob) * abs(predicted - observed)
    one_class = outcome.min() == outcome.max()
    return LiveQuality(
        rows=len(prob),
        auc=None if one_class else float(roc_auc_score(outcome, prob)),
        mean_predicted=float(prob.mean()),
        observed_rate=float(outcome.mean()),
        ece=float(ece),
        calibration=table,
    )
