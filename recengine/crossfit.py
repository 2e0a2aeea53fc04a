"""Out-of-sample scores for the customers a model learned from.

A model ranks the rows it was trained on better than new ones, so a campaign forecast summed
over scores of training customers is optimistic. `CrossFitted` trains `folds` copies of the
baseline, each without one fold of the training customers; the fold of a customer is a hash
of a stable key (the customer's id), so it is known again when the model scores.
`OutOfSample` wraps any scorer: a row marked with its customer's fold (column `FOLD_COLUMN`,
-1 for customers the model never learned from) is scored by the fold model that did not see
that customer, the other rows by the wrapped scorer.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recengine.baseline import BaselineConfig, TabularBaseline

FOLD_COLUMN = "_crossfit_fold"
NOT_LEARNED = -1


def fold_of(key: Any, folds: int, seed: int = 0) -> int:
    """The fold of a customer key (stable across processes and machines)."""
    return zlib.crc32(f"{seed}:{key}".encode()) % folds


@dataclass
class CrossFitConfig:
    # Fold models; each learns from (folds - 1) / folds of the training customers.
    folds: int = 5
    seed: int = 0
    baseline: BaselineConfig = field(default_factory=BaselineConfig)


@dataclass
class CrossFitted:
    config: CrossFitConfig = field(default_factory=CrossFitConfig)

    def fit(self, frame: pd.DataFrame, y: np.ndarray, keys: list[Any]) -> CrossFitted:
        """Fold models on the training rows `frame` whose customers have `keys` (one per
        row); each picks its number of trees on the fold it leaves out (early stopping), so
        no other rows (the validation rows of a stacker, say) are spent on it."""
        cfg = self.config
        folds = np.array([fold_of(k, cfg.folds, cfg.seed) for k in keys])
        self.models_: list[TabularBaseline] = []
        self.best_iterations_: list[int] = []
        for k in range(cfg.folds):
            kept, left_out = folds != k, folds == k
            if len(set(y[kept].tolist())) < 2 or len(set(y[left_out].tolist())) < 2:
                raise ValueError(f"fold {k} holds only one class")
            model = TabularBaseline(cfg.baseline).fit(
                frame[kept], y[kept], frame[left_out], y[left_out]
            )
            self.models_.append(model)
            self.best_iterations_.append(int(getattr(model.model_, "best_iteration_", 0) or 0))
        # Every training row scored by the model that did not see its customer; then a
        # logistic recalibration of those honest scores against the labels (fold models
        # trained on fewer rows are overconfident), applied to every fold model's score.
        self.calibration_ = (1.0, 0.0)
        raw = self.predict_by_fold(frame, folds)
        self.calibration_ = _platt(raw, y)
        self.out_of_fold_ = calibrated(raw, self.calibration_)
        return self

    def trees_for_all_rows(self) -> int:
        """Trees for a model of every training row: the fold models' mean, a tenth more for
        the fifth more rows it learns from."""
        found = [n for n in self.best_iterations_ if n > 0]
        if not found:
            return self.config.baseline.n_estimators
        return max(1, round(1.1 * sum(found) / len(found)))

    def predict_by_fold(self, frame: pd.DataFrame, folds: np.ndarray) -> np.ndarray:
        scores = np.zeros(len(frame))
        for k, model in enumerate(self.models_):
            rows = np.flatnonzero(folds == k)
            if len(rows):
                scores[rows] = model.predict_proba(frame.iloc[rows])
        return calibrated(scores, getattr(self, "calibration_", (1.0, 0.0)))


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p) - np.log1p(-p)


def _platt(p: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(slope, intercept) of the logistic regression of the labels on the scores' logits."""
    from sklearn.linear_model import LogisticRegression

    fit = LogisticRegression(C=1e6).fit(_logit(p).reshape(-1, 1), y)
    return float(fit.coef_[0, 0]), float(fit.intercept_[0])


def calibrated(p: np.ndarray, calibration: tuple[float, float]) -> np.ndarray:
    """The scores ``p`` through the logistic recalibration ``calibration`` (slope, intercept)."""
    """Scores `p` through the logistic recalibration `calibration` (slope, intercept)."""
    slope, intercept = calibration
    if (slope, intercept) == (1.0, 0.0):
        return p
    return 1.0 / (1.0 + np.exp(-(slope * _logit(p) + intercept)))


@dataclass
class OutOfSample:
    """`scorer` for customers the model never learned from; the fold models of `crossfit`
    for those it did (rows whose `FOLD_COLUMN` is a fold number)."""

    scorer: Any
    crossfit: CrossFitted

    @property
    def members(self) -> dict[str, Any]:
        # limit_threads reaches every LightGBM model through this.
        parts = {"scorer": self.scorer, **getattr(self.scorer, "members", {})}
        parts.update({f"fold{k}": m for k, m in enumerate(self.crossfit.models_)})
        return parts

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        if FOLD_COLUMN not in frame:
            return np.asarray(self.scorer.predict_proba(frame), dtype=float)
        folds = frame[FOLD_COLUMN].fillna(NOT_LEARNED).to_numpy(dtype=int)
        rest = frame.drop(columns=[FOLD_COLUMN])
        scores = np.zeros(len(frame))
        new = np.flatnonzero(folds == NOT_LEARNED)
        if len(new):
            scores[new] = self.scorer.predict_proba(rest.iloc[new])
        learned = np.flatnonzero(folds != NOT_LEARNED)
        if len(learned):
            scores[learned] = self.crossfit.predict_by_fold(rest.iloc[learned], folds[learned])
        return scores
