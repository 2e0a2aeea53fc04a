"""One person against every item: the factored scores equal the model's own on the joined
rows, for every LightGBM model the product serves, with missing and unseen values."""

import numpy as np
import pandas as pd
import pytest

from recengine.baseline import BaselineConfig, TabularBaseline
from recengine.crossfit import FOLD_COLUMN, NOT_LEARNED, CrossFitConfig, CrossFitted, OutOfSample
from recengine.factored import factored
from recengine.score import DistilledScorer, StudentConfig

ITEMS = 60


def _frame(rng: np.random.Generator, n: int) -> pd.DataFrame:
    def some(choices: list[str], missing: float = 0.1) -> np.ndarray:
        values = rng.choice(choices, n).astype(object)
        values[rng.random(n) < missing] = None
        return values

    return pd.DataFrame(
        {
            "age": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 80, n)).astype(float),
            "gender": some(["F", "M", "X"]),
            "occupation": some([f"job {i}" for i in range(12)]),
            "balance": np.where(rng.random(n) < 0.2, 0.0, rng.normal(size=n)),
            "offer_title": rng.choice([f"Title {i}" for i in range(ITEMS)], n),
            "offer_category": some([f"genre {i}" for i in range(8)]),
            "offer_price": rng.random(n) * 20,
        }
    )


def _labels(frame: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    signal = (
        frame["age"].fillna(40).to_numpy() / 20
        + (frame["gender"] == "F")
        + frame["offer_title"].str.len() % 3
        + (frame["offer_category"] == "genre 2") * (frame["occupation"] == "job 3")
        + frame["offer_price"] / 10 * frame["balance"]
        + rng.normal(size=len(frame))
    )
    return np.asarray(signal, dtype=float)


def _items(rng: np.random.Generator) -> pd.DataFrame:
    titles = [f"Title {i}" for i in range(ITEMS)] + ["A title never seen"]
    categories = rng.choice([f"genre {i}" for i in range(8)], len(titles)).astype(object)
    categories[::7] = None
    prices = rng.random(len(titles)) * 20
    prices[3] = np.nan
    return pd.DataFrame(
        {"offer_title": titles, "offer_category": categories, "offer_price": prices}
    )


PEOPLE = [
    {"age": 33.0, "gender": "F", "occupation": "job 3", "balance": 1.2},
    {"age": np.nan, "gender": np.nan, "occupation": "a job never seen", "balance": 0.0},
    {"age": 0.0, "gender": "M", "occupation": np.nan, "balance": -0.4},
    {"age": 79.0, "gender": "X"},  # a column the person lacks is missing
]


def _joined(items: pd.DataFrame, person: dict) -> pd.DataFrame:
    columns = {"age": np.nan, "gender": np.nan, "occupation": np.nan, "balance": np.nan}
    return items.assign(**{**columns, **person})


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    frame = _frame(rng, 3000)
    return frame, _labels(frame, rng), _items(rng)


def test_a_student_scores_every_item_as_on_the_joined_rows(data):
    frame, y, items = data
    student = DistilledScorer(StudentConfig(n_estimators=60, threads=1)).fit(frame, y)

    scorer = factored(student, items)

    assert scorer is not None
    for person in PEOPLE:
        expected = student.predict_proba(_joined(items, person))
        np.testing.assert_allclose(scorer.predict_proba(person), expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("extra", [{}, {"zero_as_missing": True}])
def test_a_lightgbm_baseline_with_early_stopping_scores_as_on_the_joined_rows(data, extra):
    frame, y, items = data
    labels = (y > np.median(y)).astype(int)
    config = BaselineConfig(n_estimators=300, early_stopping_rounds=10, threads=1, extra=extra)
    model = TabularBaseline(config).fit(frame[:2400], labels[:2400], frame[2400:], labels[2400:])
    assert 0 < model.model_.best_iteration_ < 300  # stopped early: fewer trees than it grew

    scorer = factored(model, items)

    assert scorer is not None
    for person in PEOPLE:
        expected = model.predict_proba(_joined(items, person))
        np.testing.assert_allclose(scorer.predict_proba(person), expected, rtol=0, atol=1e-12)


def test_out_of_sample_scores_learned_customers_by_their_fold_model(data):
    frame, y, items = data
    labels = (y > np.median(y)).astype(int)
    baseline = BaselineConfig(n_estimators=80, early_stopping_rounds=10, threads=1)
    crossfit = CrossFitted(CrossFitConfig(folds=3, seed=1, baseline=baseline)).fit(
        frame, labels, keys=list(range(len(frame)))
    )
    assert crossfit.calibration_ != (1.0, 0.0)
    student = DistilledScorer(StudentConfig(n_estimators=40, threads=1)).fit(frame, y)
    model = OutOfSample(student, crossfit)

    scorer = factored(model, items)

    assert scorer is not None
    for fold in (NOT_LEARNED, 0, 2, np.nan):
        person = {**PEOPLE[0], FOLD_COLUMN: fold}
        expected = model.predict_proba(_joined(items, person))
        np.testing.assert_allclose(scorer.predict_proba(person), expected, rtol=0, atol=1e-12)
    # The fold models differ from the student: the fold decides who scores.
    assert not np.allclose(
        scorer.predict_proba({**PEOPLE[0], FOLD_COLUMN: 0}),
        scorer.predict_proba({**PEOPLE[0], FOLD_COLUMN: NOT_LEARNED}),
    )


def test_a_model_it_cannot_split_is_left_to_the_joined_rows(data):
    frame, y, items = data
    logistic = TabularBaseline(BaselineConfig(kind="logistic")).fit(
        frame.fillna({"age": 0}).drop(columns=["offer_price"]).fillna("none"),
        (y > np.median(y)).astype(int),
    )

    assert factored(logistic, items) is None
    assert factored(object(), items) is None
