"""Uplift: the effect of the contact itself, where the data holds a treatment and a control group.

`UpliftModel` fits two response models, one on treated rows and one on control rows, and
estimates uplift = p(convert if contacted) - p(convert if left alone). `cross_fitted_uplift`
gives every row the uplift of models that did not learn from it, so `uplift_evaluation`
(Qini curve, observed uplift by decile) measures the ranking on unseen rows.
`uplift_readiness` says whether the groups are large enough, and why not; the fitting
functions raise `InsufficientData` with those reasons instead of fitting on too little.
`uplift_evaluation` returns a JSON-ready dict.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from recengine.baseline import BaselineConfig, TabularBaseline
from recengine.roi import checked_binary, checked_scores, contacts_at_pct, same_length


def uplift_learner(**changes: Any) -> BaselineConfig:
    """The response model each group gets: small LightGBM models with a fixed number of
    trees (small groups cannot spare validation rows for early stopping), large leaves so
    two noisy models do not invent uplift. ``changes`` overrides any setting."""
    settings: dict[str, Any] = {
        "n_estimators": 200,
        "learning_rate": 0.05,
        "num_leaves": 7,
        "extra": {"min_child_samples": 40},
    }
    return BaselineConfig(**(settings | changes))


@dataclass
class UpliftConfig:
    # Profile columns the models use; None = every column of the frame, less the treatment
    # and outcome columns when those are passed to fit by name.
    columns: list[str] | None = None
    # Fewest rows each group (treatment, control) needs before uplift is estimated.
    min_rows_per_group: int = 200
    # Fewest conversions, and fewest non-conversions, each group needs.
    min_conversions_per_group: int = 20
    # The learner of each of the two response models (its own columns are replaced).
    learner: BaselineConfig = field(default_factory=uplift_learner)


@dataclass
class UpliftReadiness:
    """Whether the data can support an uplift estimate, and if not, why."""

    ok: bool
    # One sentence per problem found (empty when ok).
    reasons: list[str]
    treated_rows: int
    control_rows: int
    treated_conversions: int
    control_conversions: int

    def as_dict(self) -> dict:
        return {"status": "ok" if self.ok else "insufficient_data", **asdict(self)}


class InsufficientData(ValueError):
    """The data cannot support the estimate; `readiness` says why (for the page or API)."""

    def __init__(self, readiness: UpliftReadiness):
        super().__init__("Insufficient data for an uplift estimate: " + " ".join(readiness.reasons))
        self.readiness = readiness


def uplift_readiness(
    treated: Sequence[Any] | np.ndarray,
    converted: Sequence[Any] | np.ndarray,
    config: UpliftConfig | None = None,
) -> UpliftReadiness:
    """Counts per group and every reason the data is insufficient (none means ok)."""
    config = config or UpliftConfig()
    t = checked_binary(treated, "treated")
    y = checked_binary(converted, "converted")
    same_length(t, y, "treated", "converted")
    reasons = []
    groups = {"treatment": t == 1, "control": t == 0}
    if not groups["control"].any():
        reasons.append(
            "No control group: every row is marked as treated, so there is nobody "
            "to compare with; keep a random share of customers uncontacted."
        )
    if not groups["treatment"].any():
        reasons.append("No treatment group: no row is marked as treated.")
    for name, rows in groups.items():
        if not rows.any():
            continue
        count, wins = int(rows.sum()), int(y[rows].sum())
        need_rows, need_wins = config.min_rows_per_group, config.min_conversions_per_group
        if count < need_rows:
            reasons.append(f"Too few {name} rows: {count} (at least {need_rows} needed).")
        if wins < need_wins:
            reasons.append(
                f"Too few conversions in the {name} group: {wins} (at least {need_wins} needed)."
            )
        if count - wins < need_wins:
            reasons.append(
                f"Too few non-conversions in the {name} group: {count - wins} "
                f"(at least {need_wins} needed)."
            )
    return UpliftReadiness(
        ok=not reasons,
        reasons=reasons,
        treated_rows=int(t.sum()),
        control_rows=int(len(t) - t.sum()),
        treated_conversions=int(y[t == 1].sum()),
        control_conversions=int(y[t == 0].sum()),
    )


@dataclass
class UpliftModel:
    """Two-model uplift: one response model on treated rows, one on control rows."""

    config: UpliftConfig = field(default_factory=UpliftConfig)

    def fit(
        self,
        frame: pd.DataFrame,
        treated: str | Sequence[Any] | np.ndarray,
        converted: str | Sequence[Any] | np.ndarray,
    ) -> UpliftModel:
        """`treated` / `converted`: column names of `frame` or one value per row.

        Raises InsufficientData (with the reasons) instead of fitting on too little data.
        """
        t = checked_binary(
            frame[treated] if isinstance(treated, str) else treated,
            treated if isinstance(treated, str) else "treated",
        )
        y = checked_binary(
            frame[converted] if isinstance(converted, str) else converted,
            converted if isinstance(converted, str) else "converted",
        )
        same_length(t, y, "treated", "converted")
        if len(t) != len(frame):
            raise ValueError(f"frame has {len(frame)} rows but treated has {len(t)}.")
        readiness = uplift_readiness(t, y, self.config)
        if not readiness.ok:
            raise InsufficientData(readiness)
        outcome_columns = {c for c in (treated, converted) if isinstance(c, str)}
        self.columns_ = self.config.columns or [
            c for c in frame.columns if c not in outcome_columns
        ]
        self.readiness_ = readiness
        self.treated_model_ = TabularBaseline(self._baseline()).fit(frame[t == 1], y[t == 1])
        self.control_model_ = TabularBaseline(self._baseline()).fit(frame[t == 0], y[t == 0])
        return self

    def _baseline(self) -> BaselineConfig:
        return replace(self.config.learner, columns=self.columns_)

    def predict_treated(self, frame: pd.DataFrame) -> np.ndarray:
        """P(convert) if contacted."""
        return self.treated_model_.predict_proba(frame)

    def predict_control(self, frame: pd.DataFrame) -> np.ndarray:
        """P(convert) if left alone."""
        return self.control_model_.predict_proba(frame)

    def predict_uplift(self, frame: pd.DataFrame) -> np.ndarray:
        """The change in P(convert) the contact causes (-1..1); rank and plan by this."""
        return self.predict_treated(frame) - self.predict_control(frame)


@dataclass
class CrossFitConfig:
    # Held-out folds: each row's uplift comes from the models fitted on the other folds.
    folds: int = 2
    # Seed of the fold assignment.
    seed: int = 0
    # The two response models fitted for each fold.
    model: UpliftConfig = field(default_factory=UpliftConfig)

    def fold_readiness(self) -> UpliftConfig:
        """The group sizes the whole data needs so that every fold's models, which learn
        from (folds - 1) / folds of the rows, still get the model's minimum."""
        if self.folds < 2:
            raise ValueError(f"folds must be at least 2, got {self.folds}.")

        def whole(least: int) -> int:
            return least * self.folds // (self.folds - 1)

        return UpliftConfig(
            min_rows_per_group=whole(self.model.min_rows_per_group),
            min_conversions_per_group=whole(self.model.min_conversions_per_group),
        )


@dataclass
class CrossFittedUplift:
    # Each row's uplift (-1..1) from the models that did not learn from it.
    uplift: np.ndarray
    # Group counts of the whole data, checked against `CrossFitConfig.fold_readiness`.
    readiness: UpliftReadiness
    # Fold (0..folds - 1) each row was held out in.
    fold: np.ndarray


def stratified_folds(
    treated: np.ndarray, converted: np.ndarray, folds: int, seed: int
) -> np.ndarray:
    """A fold per row, dealt round-robin within each (group, outcome) cell in random order,
    so every fold keeps its share of treated, control, converted and not converted rows."""
    rng = np.random.default_rng(seed)
    fold = np.empty(len(treated), dtype=np.int64)
    for cell in range(4):
        rows = np.flatnonzero(treated * 2 + converted == cell)
        fold[rng.permutation(rows)] = np.arange(len(rows)) % folds
    return fold


def cross_fitted_uplift(
    frame: pd.DataFrame,
    treated: Sequence[Any] | np.ndarray,
    converted: Sequence[Any] | np.ndarray,
    config: CrossFitConfig | None = None,
    on_fold: Callable[[int, int], None] | None = None,
) -> CrossFittedUplift:
    """Uplift of every row of `frame` from two-model uplift fitted without that row.

    Rows are split into stratified folds; each fold is scored by an `UpliftModel` fitted on
    the other folds. `on_fold(k, folds)` is called before fold k (0-based) is fitted.
    Raises InsufficientData (with the reasons) when the groups are too small for the folds.
    """
    config = config or CrossFitConfig()
    t = checked_binary(treated, "treated")
    y = checked_binary(converted, "converted")
    same_length(t, y, "treated", "converted")
    if len(t) != len(frame):
        raise ValueError(f"frame has {len(frame)} rows but treated has {len(t)}.")
    readiness = uplift_readiness(t, y, config.fold_readiness())
    if not readiness.ok:
        raise InsufficientData(readiness)
    fold = stratified_folds(t, y, config.folds, config.seed)
    uplift = np.zeros(len(y))
    for k in range(config.folds):
        if on_fold is not None:
            on_fold(k, config.folds)
        learn = fold != k
        model = UpliftModel(config.model).fit(
            frame[learn].reset_index(drop=True), t[learn], y[learn]
        )
        uplift[~learn] = model.predict_uplift(frame[~learn].reset_index(drop=True))
    return CrossFittedUplift(uplift, readiness, fold)


def uplift_evaluation(
    uplift: Sequence[float] | np.ndarray,
    treated: Sequence[Any] | np.ndarray,
    converted: Sequence[Any] | np.ndarray,
    *,
    n_bins: int = 10,
) -> dict:
    """Qini curve and observed uplift by decile of predicted uplift (best decile first).

    Use rows the uplift models did not learn from. The Qini value at depth k is the
    incremental conversions among the top k: treated conversions minus control conversions
    scaled to the treated count. `qini_coefficient` is the mean gap between that curve and
    the random line over depths 1..100 %, per customer (0 = no better than random).
    """
    u = checked_scores(uplift, "uplift", column="uplift")
    t = checked_binary(treated, "treated")
    y = checked_binary(converted, "converted")
    same_length(u, t, "uplift", "treated")
    same_length(u, y, "uplift", "converted")
    readiness = uplift_readiness(
        t, y, UpliftConfig(min_rows_per_group=1, min_conversions_per_group=0)
    )
    if not readiness.ok:
        raise InsufficientData(readiness)
    order = np.argsort(-u, kind="stable")
    t_sorted, y_sorted = t[order], y[order]
    n_t, n_c = np.cumsum(t_sorted), np.cumsum(1 - t_sorted)
    y_t, y_c = np.cumsum(y_sorted * t_sorted), np.cumsum(y_sorted * (1 - t_sorted))
    with np.errstate(divide="ignore", invalid="ignore"):
        qini = np.where(n_c > 0, y_t - y_c * n_t / np.maximum(n_c, 1), y_t)
    contacts = [contacts_at_pct(len(u), pct) for pct in range(1, 101)]
    model_curve = np.array([qini[k - 1] for k in contacts])
    random_curve = qini[-1] * np.array(contacts) / len(u)
    deciles = []
    for number, rows in enumerate(np.array_split(order, min(n_bins, len(u))), start=1):
        in_t, in_c = rows[t[rows] == 1], rows[t[rows] == 0]
        observed = float(y[in_t].mean() - y[in_c].mean()) if len(in_t) and len(in_c) else None
        deciles.append(
            {
                "decile": number,
                "customers": len(rows),
                "treated": len(in_t),
                "control": len(in_c),
                "predicted_uplift": float(u[rows].mean()),
                "observed_uplift": observed,
            }
        )
    return {
        "customers": len(u),
        "depth_pct": [float(p) for p in range(1, 101)],
        "contacts": contacts,
        "qini": model_curve.tolist(),
        "qini_random": random_curve.tolist(),
        "qini_coefficient": float((model_curve - random_curve).mean() / len(u)),
        "deciles": deciles,
    }
