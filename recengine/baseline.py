"""Classical baselines on the tabular columns: LightGBM and logistic regression."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler


@dataclass
class BaselineConfig:
    # "lightgbm" (gradient boosted trees) or "logistic" (one-hot + standardised numbers).
    kind: Literal["lightgbm", "logistic"] = "lightgbm"
    # Columns used; None = every column of the training frame.
    columns: list[str] | None = None
    # LightGBM: most trees (early stopping on the validation rows picks fewer).
    n_estimators: int = 2000
    # LightGBM: shrinkage per tree.
    learning_rate: float = 0.03
    # LightGBM: leaves per tree.
    num_leaves: int = 15
    # LightGBM: rounds without validation improvement before stopping.
    early_stopping_rounds: int = 100
    # Logistic regression: inverse regularisation strength.
    C: float = 1.0
    # Seed for LightGBM's sampling.
    seed: int = 0
    # Threads (None = library default).
    threads: int | None = None
    # Extra LightGBM parameters.
    extra: dict = field(default_factory=dict)


@dataclass
class TabularBaseline:
    config: BaselineConfig = field(default_factory=BaselineConfig)

    def fit(
        self,
        frame: pd.DataFrame,
        y: np.ndarray,
        val_frame: pd.DataFrame | None = None,
        y_val: np.ndarray | None = None,
    ) -> TabularBaseline:
        cfg = self.config
        self.columns_ = cfg.columns or list(frame.columns)
        x = frame[self.columns_]
        self.categorical_ = [c for c in self.columns_ if not pd.api.types.is_numeric_dtype(x[c])]
        self.categories_ = {
            c: sorted(x[c].dropna().astype(str).unique()) for c in self.categorical_
        }
        if cfg.kind == "logistic":
            self.model_ = self._logistic().fit(x, y)
            return self
        import lightgbm as lgb

        self.model_ = lgb.LGBMClassifier(
            n_estimators=cfg.n_estimators,
            learning_rate=cfg.learning_rate,
            num_leaves=cfg.num_leaves,
            random_state=cfg.seed,
            verbose=-1,
            n_jobs=cfg.threads or 0,
            **cfg.extra,
        )
        fit_args: dict = {}
        if val_frame is not None:
            fit_args["eval_set"] = [(self._typed(val_frame), y_val)]
            fit_args["callbacks"] = [lgb.early_stopping(cfg.early_stopping_rounds, verbose=False)]
        with warnings.catch_warnings():
            # eval_set is renamed in LightGBM 4.7; the old name keeps older versions working.
            warnings.simplefilter("ignore", category=FutureWarning)
            warnings.filterwarnings("ignore", message=".*eval_set.*")
            self.model_.fit(self._typed(frame), y, **fit_args)
        return self

    def _logistic(self) -> Pipeline:
        numeric = [c for c in self.columns_ if c not in self.categorical_]
        prep = ColumnTransformer(
            [
                ("num", StandardScaler(), numeric),
                ("cat", OneHotEncoder(handle_unknown="ignore"), self.categorical_),
            ]
        )
        return Pipeline(
            [("prep", prep), ("model", LogisticRegression(C=self.config.C, max_iter=2000))]
        )

    def _typed(self, frame: pd.DataFrame) -> pd.DataFrame:
        """Categorical columns with the training categories (unseen values become missing)."""
        x = frame[self.columns_].copy()
        for c in self.categorical_:
            x[c] = pd.Categorical(x[c].astype(str), categories=self.categories_[c])
        return x

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """P(click) per row (1-D)."""
        x = frame[self.columns_] if self.config.kind == "logistic" else self._typed(frame)
        return self.model_.predict_proba(x)[:, 1]
