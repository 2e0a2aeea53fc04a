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
