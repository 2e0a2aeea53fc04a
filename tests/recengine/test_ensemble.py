import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from recengine.baseline import BaselineConfig, TabularBaseline
from recengine.ensemble import StackedModel
from recengine.registry import ModelRegistry
from recengine.train import ClickModel

from .conftest import make_customers


@pytest.fixture
def members(customers, serializer, tiny_config):
    frame, y = customers
    tiny_config.epochs = 1
    return {
        "model": ClickModel(tiny_config, serializer).fit(frame, y),
        "baseline": TabularBaseline(BaselineConfig(kind="logistic")).fit(frame, y),
    }


class _Fixed:
    """A member whose scores are given in advance, row by row."""

    def __init__(self, p: np.ndarray):
        self.p = p

    def predict_proba(self, frame) -> np.ndarray:
        return self.p[frame.index.to_numpy()]


def test_it_judges_the_blend_out_of_fold_where_in_sample_flatters_it():
    # Members that are pure noise: a stacker fitted to 60 rows finds some ranking in them
    # in sample, which rows it was not fitted to do not bear out.
    rng = np.random.default_rng(0)
    n = 60
    frame = pd.DataFrame({"row": np.arange(n)})
    y = np.tile([0, 1], n // 2)
    members = {f"noise{i}": _Fixed(rng.uniform(0.05, 0.95, n)) for i in range(4)}
    blend = StackedModel(members).fit(frame, y)
    in_sample = roc_auc_score(y, blend.predict_proba(frame))
    assert in_sample > 0.6
    assert blend.out_of_fold_auc_ < in_sample - 0.1


def test_it_gives_no_out_of_fold_figure_with_a_single_click():
    frame = pd.DataFrame({"row": np.arange(10)})
    y = np.array([1] + [0] * 9)
    blend = StackedModel({"a": _Fixed(np.linspace(0.1, 0.9, 10))}).fit(frame, y)
    assert blend.out_of_fold_auc_ is None


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def test_it_fits_the_stacker_on_the_validation_rows_it_is_given(members):
    val, y_val = make_customers(200, seed=1)
    blend = StackedModel(members).fit(val, y_val)
    features = np.column_stack([_logit(members[n].predict_proba(val)) for n in blend.names_])
    expected = LogisticRegression().fit(features, y_val)
    np.testing.assert_allclose(blend.coef_, expected.coef_[0], rtol=1e-4, atol=1e-6)
    assert blend.val_rows_ == 200
    other, y_other = make_customers(200, seed=2)
    assert not np.allclose(StackedModel(members).fit(other, y_other).coef_, blend.coef_)


def test_it_ranks_better_than_a_weak_member(members):
    val, y_val = make_customers(300, seed=1)
    test, y_test = make_customers(300, seed=3)
    from sklearn.metrics import roc_auc_score

    blend = StackedModel(members).fit(val, y_val)
    aucs = {n: roc_auc_score(y_test, m.predict_proba(test)) for n, m in members.items()}
    assert roc_auc_score(y_test, blend.predict_proba(test)) >= min(aucs.values())


def test_it_pickles_without_its_members_and_scores_the_same_once_bound(members):
    val, y_val = make_customers(200, seed=1)
    blend = StackedModel(members).fit(val, y_val)
    loaded = pickle.loads(pickle.dumps(blend))
    assert loaded.members == {}
    with pytest.raises(ValueError, match="not bound"):
        loaded.predict_proba(val)
    np.testing.assert_allclose(loaded.bind(members).predict_proba(val), blend.predict_proba(val))
    with pytest.raises(ValueError, match="baseline"):
        pickle.loads(pickle.dumps(blend)).bind({"model": members["model"]})


def test_it_refuses_validation_rows_of_one_class(members):
    val, _ = make_customers(50, seed=1)
    with pytest.raises(ValueError, match="both clicks and non-clicks"):
        StackedModel(members).fit(val, np.zeros(50))


def test_it_serves_the_blend_from_the_registry_with_identical_scores(members, tmp_path):
    val, y_val = make_customers(200, seed=1)
    blend = StackedModel(members).fit(val, y_val)
    registry = ModelRegistry(tmp_path)
    model_id = registry.save(
        members["model"],
        name="a",
        fingerprint="f",
        pseudonyms=["p1"],
        consent_snapshot={},
        parts={"baseline": members["baseline"], "blend": blend},
        served="blend",
    )
    plain = registry.save(
        members["model"],
        name="b",
        fingerprint="f",
        pseudonyms=["p1"],
        consent_snapshot={},
        parts={"baseline": members["baseline"]},
    )
    np.testing.assert_allclose(
        registry.load_served(model_id, device=members["model"].device_).predict_proba(val),
        blend.predict_proba(val),
        atol=1e-6,
    )
    np.testing.assert_allclose(
        registry.load_served(plain, device=members["model"].device_).predict_proba(val),
        members["model"].predict_proba(val),
        atol=1e-6,
    )
    with pytest.raises(ValueError, match="Cannot serve"):
        registry.save(
            members["model"],
            name="c",
            fingerprint="f",
            pseudonyms=[],
            consent_snapshot={},
            served="blend",
        )
