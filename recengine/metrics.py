"""Test-set metrics of a click model: ranking, probability quality, calibration, lift/gains."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import (
    average_precision_score,
    brier_score_loss,
    log_loss,
    roc_auc_score,
    roc_curve,
)

TOP_SHARES = (0.05, 0.10, 0.20)


@dataclass
class ClickMetrics:
    roc_auc: float
    pr_auc: float
    log_loss: float
    brier: float
    base_rate: float
    # Mean predicted vs observed click rate per probability bin (bins without rows left out).
    calibration: dict[str, list[float]]
    # Click rate in the top share of scores divided by the overall rate, keyed "5%", "10%"...
    lift: dict[str, float]
    # Share of all clicks found in the top share of scores.
    gains: dict[str, float]
    # ROC curve points (thinned) for charts.
    roc: dict[str, list[float]]

    def as_dict(self) -> dict:
        return asdict(self)


def click_metrics(y: np.ndarray, p: np.ndarray, n_bins: int = 10) -> ClickMetrics:
    y = np.asarray(y).astype(int)
    p = np.clip(np.asarray(p, dtype=float), 1e-7, 1 - 1e-7)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=n_bins, strategy="quantile")
    fpr, tpr, _ = roc_curve(y, p)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(len(fpr), 200)).astype(int))
    lift, gains = lift_and_gains(y, p)
    return ClickMetrics(
        roc_auc=float(roc_auc_score(y, p)),
        pr_auc=float(average_precision_score(y, p)),
        log_loss=float(log_loss(y, p, labels=[0, 1])),
        brier=float(brier_score_loss(y, p)),
        base_rate=float(y.mean()),
        calibration={"predicted": prob_pred.tolist(), "observed": prob_true.tolist()},
        lift=lift,
        gains=gains,
        roc={"fpr": fpr[keep].tolist(), "tpr": tpr[keep].tolist()},
    )


def lift_and_gains(
    y: np.ndarray, p: np.ndarray, shares: tuple[float, ...] = TOP_SHARES
) -> tuple[dict[str, float], dict[str, float]]:
    """Lift and cumulative gains in the top `share` of rows ranked by score."""
    order = np.argsort(-np.asarray(p), kind="stable")
    y_sorted = np.asarray(y)[order]
    total, rate = y_sorted.sum(), y_sorted.mean()
    lift, gains = {}, {}
    for share in shares:
        top = y_sorted[: max(1, int(round(len(y_sorted) * share)))]
        key = f"{round(share * 100)}%"
        lift[key] = float(top.mean() / rate) if rate else float("nan")
        gains[key] = float(top.sum() / total) if total else float("nan")
    return lift, gains


def auc_standard_error(auc: float, positives: int, negatives: int) -> float:
    """The standard error of an AUC measured on `positives` and `negatives` rows (Hanley and
    McNeil, 1982): how much the same model's AUC moves from one sample of rows to another."""
    if positives < 1 or negatives < 1:
        return float("nan")
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (
        auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)
    ) / (positives * negatives)
    return float(np.sqrt(max(variance, 0.0)))


@dataclass(frozen=True)
class AucComparison:
    """Two models' AUCs on the same rows, and the 95 % interval of their difference."""

    rows: int
    positives: int
    auc_a: float
    auc_b: float
    # auc_b - auc_a, and its 95 % paired-bootstrap interval.
    difference: float
    low: float
    high: float

    @property
    def verdict(self) -> str:
        """ "better" or "worse" (b against a) when the interval leaves out zero, else "tie"."""
        if self.low > 0:
            return "better"
        if self.high < 0:
            return "worse"
        return "tie"

    def as_dict(self) -> dict:
        return {**asdict(self), "verdict": self.verdict}


def compare_aucs(
    y: np.ndarray, p_a: np.ndarray, p_b: np.ndarray, *, resamples: int = 200, seed: int = 0
) -> AucComparison:
    """Model b against model a on the same labelled rows: both AUCs and a paired bootstrap of
    their difference (each resample draws rows with replacement and scores both models on
    it, so what the rows share does not count as a difference). Needs both classes."""
    y = np.asarray(y, dtype=int)
    p_a, p_b = np.asarray(p_a, dtype=float), np.asarray(p_b, dtype=float)
    positives = int(y.sum())
    if positives == 0 or positives == len(y):
        raise ValueError("comparing AUCs needs rows of both classes")
    auc_a, auc_b = float(roc_auc_score(y, p_a)), float(roc_auc_score(y, p_b))
    rng = np.random.default_rng(seed)
    differences = []
    for _ in range(resamples):
        rows = rng.integers(0, len(y), len(y))
        drawn = y[rows]
        if 0 < drawn.sum() < len(drawn):
            differences.append(roc_auc_score(drawn, p_b[rows]) - roc_auc_score(drawn, p_a[rows]))
    low, high = np.quantile(differences, [0.025, 0.975]) if differences else (float("nan"),) * 2
    return AucComparison(
        rows=len(y),
        positives=positives,
        auc_a=auc_a,
        auc_b=auc_b,
        difference=auc_b - auc_a,
        low=float(low),
        high=float(high),
    )
