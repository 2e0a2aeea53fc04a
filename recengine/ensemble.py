"""A stacked click model: fitted members (BERT, LightGBM, ...) combined by a small logistic
regression on their logits.

The members are trained on the training rows; the stacker is fitted on the validation rows
only, so it learns how far to trust each member on rows none of them was fitted to (the test
rows are never seen). Only the stacker's few numbers are pickled: the members are saved on
their own (a registry keeps the BERT model and the baseline beside each other) and bound
again with `bind` after loading, so the BERT weights are never stored twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from recengine.score import Scorer

EPS = 1e-6


@dataclass
class BlendConfig:
    # Inverse regularisation strength of the logistic stacker (a few hundred clicks fit it).
    C: float = 1.0
    # Folds of the out-of-fold check on the validation rows (fewer when a class is rarer).
    folds: int = 5
    # Seed of the fold assignment.
    seed: int = 0


@dataclass
class StackedModel:
    """`fit(val_frame, y_val)` on fitted members, then `predict_proba(frame)` -> P(click)."""

    members: dict[str, Scorer]
    config: BlendConfig = field(default_factory=BlendConfig)

    def fit(self, val_frame: pd.DataFrame, y_val: np.ndarray) -> StackedModel:
        """Fit the stacker on validation rows (rows the members were not trained on)."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import roc_auc_score

        if not self.members:
            raise ValueError("A stacked model needs at least one fitted member.")
        y_val = np.asarray(y_val)
        if len(np.unique(y_val)) < 2:
            raise ValueError("The validation rows need both clicks and non-clicks to fit on.")
        self.names_ = sorted(self.members)
        logits = self.member_logits(val_frame)
        stacker = LogisticRegression(C=self.config.C).fit(logits, y_val)
        self.coef_ = stacker.coef_[0].astype(float).tolist()
        self.intercept_ = float(stacker.intercept_[0])
        self.val_rows_ = len(y_val)
        # In sample (the stacker saw these rows), from the logits already computed: scoring
        # the validation rows again would run every member (BERT) a second time.
        self.in_sample_auc_ = float(roc_auc_score(y_val, stacker.decision_function(logits)))
        self.out_of_fold_auc_ = self._out_of_fold_auc(logits, y_val)
        return self

    def _out_of_fold_auc(self, logits: np.ndarray, y_val: np.ndarray) -> float | None:
        """AUC of the blend on validation rows its stacker was not fitted to: each fold
        scored by a stacker fitted on the other folds. The stacker's in-sample AUC flatters
        it when validation rows are few; this is the fair figure to compare with a member's
        validation AUC. None when a class has fewer than 2 rows."""
        from sklearn.linear_model import LogisticRegression
        from sklearn.metrics import roc_auc_score
        from sklearn.model_selection import StratifiedKFold, cross_val_predict

        folds = min(self.config.folds, int(np.bincount(y_val.astype(int)).min()))
        if folds < 2:
            return None
        split = StratifiedKFold(folds, shuffle=True, random_state=self.config.seed)
        held_out = cross_val_predict(
            LogisticRegression(C=self.config.C), logits, y_val, cv=split, method="decision_function"
        )
        return float(roc_auc_score(y_val, held_out))

    def member_logits(self, frame: pd.DataFrame) -> np.ndarray:
        """Each member's logit per row, shape (rows, members), columns in `names_` order."""
        names = getattr(self, "names_", sorted(self.members))
        missing = [n for n in names if n not in self.members]
        if missing:
            raise ValueError(f"Members {missing} are not bound; call bind() after loading.")
        columns = []
        for name in names:
            p = np.clip(np.asarray(self.members[name].predict_proba(frame), float), EPS, 1 - EPS)
            columns.append(np.log(p) - np.log1p(-p))
        return np.column_stack(columns)

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """P(click) per row (1-D)."""
        z = self.member_logits(frame) @ np.asarray(self.coef_) + self.intercept_
        return 1.0 / (1.0 + np.exp(-z))

    @property
    def weights(self) -> dict[str, float]:
        """The stacker's weight per member (on the logit scale)."""
        return dict(zip(self.names_, self.coef_, strict=True))

    def bind(self, members: dict[str, Scorer]) -> StackedModel:
        """Attach the (loaded) members this stacker was fitted on; returns self."""
        unknown = sorted(set(self.names_) - set(members))
        if unknown:
            raise ValueError(f"Members {unknown} are needed to score; got {sorted(members)}.")
        self.members = {n: members[n] for n in self.names_}
        return self

    def __getstate__(self) -> dict[str, Any]:
        # The members are stored on their own; pickling them here would copy the BERT weights.
        return {**self.__dict__, "members": {}}
