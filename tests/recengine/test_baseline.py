import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from recengine.baseline import BaselineConfig, TabularBaseline


@pytest.mark.parametrize("kind", ["lightgbm", "logistic"])
def test_it_learns_the_tabular_signal(customers, kind):
    frame, y = customers
    config = BaselineConfig(kind=kind, n_estimators=50, threads=1)
    model = TabularBaseline(config).fit(frame.iloc[:200], y[:200], frame.iloc[200:], y[200:])
    p = model.predict_proba(frame.iloc[200:])
    assert p.shape == (100,) and roc_auc_score(y[200:], p) > 0.7


def test_it_scores_an_unseen_category(customers):
    frame, y = customers
    model = TabularBaseline(BaselineConfig(n_estimators=20, threads=1)).fit(frame, y)
    new = frame.iloc[:1].assign(job="astronaut")
    assert np.isfinite(model.predict_proba(new)).all()
