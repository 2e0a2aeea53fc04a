"""Target leakage: fields that give the answer away before a model is trained.

A profile column that is the outcome under another name (a "purchased" flag uploaded with the
customers), or a value recorded after the response (the date of the purchase), makes a model
that scores perfectly in testing and is useless on the next campaign. `leaking_fields` looks
at each field alone on the training rows:

- how well the field alone ranks the rows (AUC). Numbers rank by value, with a missing value
  tried as both the lowest and the highest (a field filled only for buyers leaks by being
  there); text ranks by each value's response rate learnt on the other fold (two folds), so a
  value seen once cannot score itself. A field at or above `max_single_field_auc` is flagged.
- for date fields and a response date per row: the share of the rows holding a date that
  lies after their response. At or above `max_after_response_share` the field is flagged.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.metrics import roc_auc_score


@dataclass
class LeakageConfig:
    # A field that alone ranks the training rows at least this well is flagged.
    max_single_field_auc: float = 0.98
    # A date field holding, on this share of its rows or more, a date after the response.
    max_after_response_share: float = 0.5
    # Folds of the out-of-fold response rate of text values.
    folds: int = 2
    seed: int = 0
    # Rows with a value needed before a field is judged (fewer cannot show a leak).
    min_rows: int = 20


@dataclass
class Leak:
    field: str
    # "predicts_outcome" or "after_response"
    reason: str
    # Single-field AUC (predicts_outcome) or share of dated rows after the response.
    value: float

    def as_dict(self) -> dict[str, object]:
        return {"field": self.field, "reason": self.reason, "value": round(self.value, 4)}


def leaking_fields(
    frame: pd.DataFrame,
    y: np.ndarray,
    fields: list[str],
    *,
    date_fields: list[str] = (),  # type: ignore[assignment]
    response_dates: pd.Series | np.ndarray | list | None = None,
    config: LeakageConfig | None = None,
) -> list[Leak]:
    """The fields of `frame` (training rows, labels `y`) that leak the outcome."""
    cfg = config or LeakageConfig()
    y = np.asarray(y)
    if len(np.unique(y)) < 2:
        return []
    leaks: list[Leak] = []
    for name in fields:
        if name not in frame:
            continue
        column = frame[name]
        if name in date_fields and response_dates is not None:
            share = after_response_share(column, response_dates, cfg.min_rows)
            if share is not None and share >= cfg.max_after_response_share:
                leaks.append(Leak(name, "after_response", share))
                continue
        auc = single_field_auc(column, y, cfg)
        if auc is not None and auc >= cfg.max_single_field_auc:
            leaks.append(Leak(name, "predicts_outcome", auc))
    return leaks


def single_field_auc(column: pd.Series, y: np.ndarray, cfg: LeakageConfig) -> float | None:
    """How well the field alone ranks the rows, as an AUC folded to 0.5-1."""
    if column.notna().sum() < cfg.min_rows:
        return None
    numeric = pd.api.types.is_numeric_dtype(column) and not pd.api.types.is_bool_dtype(column)
    if numeric:
        values = column.to_numpy(dtype=float)
        missing = np.isnan(values)
        if missing.all():
            return None
        low, high = np.nanmin(values), np.nanmax(values)
        scores = [
            np.where(missing, low - 1.0, values),
            np.where(missing, high + 1.0, values),
        ]
    else:
        scores = [_out_of_fold_rates(column, y, cfg)]
    best = 0.5
    for score in scores:
        auc = float(roc_auc_score(y, score))
        best = max(best, auc, 1.0 - auc)
    return best


def _out_of_fold_rates(column: pd.Series, y: np.ndarray, cfg: LeakageConfig) -> np.ndarray:
    """Each row's value scored by that value's response rate on the other fold(s)."""
    values = column.astype("string").fillna("\x00missing").to_numpy()
    rng = np.random.default_rng(cfg.seed)
    fold = rng.integers(0, cfg.folds, len(values))
    overall = float(y.mean())
    scores = np.full(len(values), overall)
    for k in range(cfg.folds):
        fit, apply = fold != k, fold == k
        rates = pd.Series(y[fit]).groupby(values[fit]).mean()
        scores[apply] = pd.Series(values[apply]).map(rates).fillna(overall).to_numpy()
    return scores


def after_response_share(
    column: pd.Series, response_dates: pd.Series | np.ndarray | list, min_rows: int
) -> float | None:
    """Share of the rows holding a date whose date lies after the row's response date."""
    dates = pd.to_datetime(column, errors="coerce", utc=True)
    responses = pd.to_datetime(pd.Series(np.asarray(response_dates)), errors="coerce", utc=True)
    dates, responses = dates.reset_index(drop=True), responses.reset_index(drop=True)
    held = dates.notna() & responses.notna()
    if held.sum() < min_rows:
        return None
    # Calendar days: a date recorded on the day of the response is not after it.
    after = dates[held].dt.normalize() > responses[held].dt.normalize()
    return float(after.mean())
